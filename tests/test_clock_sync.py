"""The room's clocks as ``installation status`` reports them: a real chrony server and client.

Both run as ``chronyd -x -d`` (no control of the clock, in the foreground) inside a private
network namespace (``unshare -rn``), so they talk NTP on that namespace's own loopback, on
NTP's own port, and nothing reaches this machine's network or clock. Their configuration is
the drop-in deploy/setup.sh writes (deploy/chrony/), rendered as setup.sh renders it, plus
the lines that give each its own pid file, command socket and drift file in the test's
folder. Command sockets are files, so ``chronyc -h SOCKET`` reaches them from outside the
namespace, the way ``installation status --chrony SOCKET`` does.

Both daemons read the same system clock, so a synchronised client's offset is near zero:
what is checked is that it is chrony's figure, read and worded right, not how good it is.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT
from test_service_parts import record

from installation.service.clock_sync import (
    Tracking,
    Unavailable,
    describe,
    parse_tracking,
    read_tracking,
)
from installation.service.health import format_status, write_status

CHRONY = ROOT / "deploy" / "chrony"
CHRONYD = shutil.which("chronyd") or "/usr/sbin/chronyd"
#: A client whose server never answers (nothing listens on that port): never synchronised.
LOST_SERVER = "server 127.0.0.1 port 1123 iburst minpoll 0 maxpoll 0"
FOLLOWER = {
    "role": "follower",
    "rank": 2,
    "term": 3,
    "leader": {"rank": 0, "address": "10.0.0.5"},
    "members": 4,
    "group": "239.255.70.16:7016",
}


@dataclass(frozen=True)
class Room:
    """The command sockets of the server, its client and a client that finds no server."""

    server: str
    client: str
    lost: str


def rendered(role: str, value: str) -> str:
    """A template as deploy/setup.sh renders it: its placeholder replaced, trailing blanks
    dropped."""
    text = (CHRONY / f"installation-{role}.conf").read_text()
    text = text.replace("@SUBNET@", value).replace("@ADDRESS@", value)
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def own_files(folder: Path, name: str, serves: bool) -> str:
    """What chronyd would otherwise share with this machine's own chrony; a client does not
    serve NTP (port 0), leaving NTP's port to the server."""
    return (
        f"pidfile {folder}/{name}.pid\n"
        f"bindcmdaddress {folder}/{name}.sock\n"
        "cmdport 0\n"
        f"driftfile {folder}/{name}.drift\n" + ("" if serves else "port 0\n")
    )


def answer_of(socket: str, done: Callable[[Tracking | Unavailable], bool]) -> Tracking:
    """What chronyd at ``socket`` says once ``done`` is true of it (generous: a liveness
    wait, not a measure; chrony's first exchange takes a few seconds)."""
    deadline = time.monotonic() + 60
    answer = read_tracking(socket)
    while not done(answer):
        assert time.monotonic() < deadline, f"chronyd at {socket} still says {answer}"
        time.sleep(0.25)
        answer = read_tracking(socket)
    assert isinstance(answer, Tracking)
    return answer


def synchronised(answer: Tracking | Unavailable) -> bool:
    return isinstance(answer, Tracking) and answer.synchronised


def answering(answer: Tracking | Unavailable) -> bool:
    return isinstance(answer, Tracking)


@pytest.fixture
def room(tmp_path: Path) -> Iterator[Room]:
    unshare = shutil.which("unshare")
    if not Path(CHRONYD).is_file():
        pytest.skip("chronyd is not installed (Debian package chrony)")
    if unshare is None or subprocess.run([unshare, "-rn", "true"]).returncode != 0:
        pytest.skip("no private network namespace here (unshare -rn is not allowed)")
    folder = tmp_path / "chrony"
    folder.mkdir(mode=0o700)  # chronyd refuses a command socket others could reach
    configs = {
        "server": own_files(folder, "server", True) + rendered("server", "127.0.0.1"),
        "client": own_files(folder, "client", False) + rendered("client", "127.0.0.1"),
        "lost": own_files(folder, "lost", False) + LOST_SERVER + "\n",
    }
    daemons = []
    for name, text in configs.items():
        (folder / f"{name}.conf").write_text(text)
        # -u root: root of the namespace, this user outside; chronyd would switch to _chrony.
        daemons.append(f"{CHRONYD} -x -d -u root -f {folder}/{name}.conf 2>{folder}/{name}.log &")
    script = "ip link set lo up && " + " ".join(daemons) + " wait"
    with (folder / "namespace.log").open("w") as log:
        namespace = subprocess.Popen(
            [unshare, "-rn", "sh", "-c", script], stdout=log, stderr=log, start_new_session=True
        )
    try:
        yield Room(*(str(folder / f"{name}.sock") for name in configs))
    finally:
        os.killpg(namespace.pid, signal.SIGTERM)
        namespace.wait(timeout=10)


def status(record_file: Path, socket: str) -> subprocess.CompletedProcess[str]:
    """``installation status`` as staff type it, asking the test's chronyd."""
    argv = ["status", "--file", str(record_file), "--chrony", socket]
    return subprocess.run(
        [sys.executable, "-m", "installation", *argv], capture_output=True, text=True, timeout=60
    )


def test_status_reports_the_offset_of_a_client_following_its_server(
    room: Room, tmp_path: Path
) -> None:
    client = answer_of(room.client, synchronised)
    assert (client.source, client.stratum, client.leap) == ("127.0.0.1", 9, "Normal")
    assert abs(client.offset) < 0.01, "one system clock: chrony finds next to no offset"
    assert client.rms_offset >= 0
    server = answer_of(room.server, synchronised)
    assert (server.source, server.stratum) == ("this PC's own clock", 8)

    path = tmp_path / "status.json"
    write_status(path, {**record(os.getpid(), time.time()), "sync": FOLLOWER})
    completed = status(path, room.client)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].startswith(f"installation: playing, pid {os.getpid()}, up ")
    assert lines[0].endswith(" up 1 d 01:01:01"), "the clock is fine: nothing added"
    assert (
        "  sync        follower of rank 0 at 10.0.0.5, term 3, 4 members, group 239.255.70.16:7016"
    ) in lines
    [clock] = [line for line in lines if line.startswith("  clock ")]
    shown = re.fullmatch(
        r"  clock       synchronised to 127\.0\.0\.1 \(stratum 9\), "
        r"(\d+\.\d{3}) ms (ahead|behind) \(rms (\d+\.\d{3}) ms\)",
        clock,
    )
    assert shown is not None, clock
    assert float(shown.group(1)) < 10


def test_status_says_so_when_the_clock_is_not_synchronised(room: Room, tmp_path: Path) -> None:
    lost = answer_of(room.lost, answering)
    assert not lost.synchronised and lost.leap == "Not synchronised"
    path = tmp_path / "status.json"
    write_status(path, {**record(os.getpid(), time.time()), "sync": FOLLOWER})
    completed = status(path, room.lost)
    assert completed.returncode == 0, "the show runs; its clock is another matter"
    lines = completed.stdout.splitlines()
    assert lines[0].endswith(", CLOCK NOT SYNCHRONISED")
    assert (
        "  clock       NOT SYNCHRONISED (chrony follows no source yet; chronyc sources "
        "says why)" in lines
    )
    completed = status(path, str(tmp_path / "no-such.sock"))
    assert completed.stdout.splitlines()[0].endswith(", CLOCK NOT SYNCHRONISED")
    assert "  clock       no answer: chronyc ended with status 1: " in completed.stdout


def test_without_chronyc_or_chronyd_the_answer_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = read_tracking(str(tmp_path / "no-such.sock"))
    assert isinstance(answer, Unavailable) and answer.reason.startswith(
        "no answer: chronyc ended with status 1: "
    ), answer
    monkeypatch.setenv("PATH", str(tmp_path))
    assert read_tracking() == Unavailable("no chrony: chronyc is not installed")


def test_chronyc_lines_are_read_by_position_and_sign() -> None:
    slow = (
        "C0A80005,10.0.0.5,3,1796016748.99,0.000250000,-0.0001,0.000120000,0.1,0,1,0,0,4.1,Normal"
    )
    tracking = parse_tracking(slow)
    assert tracking == Tracking(True, "10.0.0.5", 3, -0.00025, 0.00012, "Normal")
    assert describe(tracking) == (
        "synchronised to 10.0.0.5 (stratum 3), 0.250 ms behind (rms 0.120 ms)"
    )
    for line in ("", "7F000001,127.0.0.1,9", slow.replace(",3,", ",three,")):
        answer = parse_tracking(line)
        assert isinstance(answer, Unavailable)
        assert answer.reason.startswith("chronyc said something unexpected: ")


@pytest.mark.parametrize(
    ("sync", "line"),
    [
        (
            {**FOLLOWER, "role": "leader", "leader": None, "rank": 0, "members": 1},
            "leader (rank 0), term 3, 1 member, group 239.255.70.16:7016",
        ),
        (
            {**FOLLOWER, "role": "joining", "leader": None},
            "joining (rank 2), no leader heard yet, 4 members, group 239.255.70.16:7016",
        ),
        (
            {**FOLLOWER, "role": "joining"},
            "joining, following rank 0 at 10.0.0.5, term 3, 4 members, group 239.255.70.16:7016",
        ),
    ],
)
def test_the_sync_line_names_the_part_this_pc_plays(sync: dict[str, object], line: str) -> None:
    now = time.time()
    report = format_status({**record(os.getpid(), now), "sync": sync}, now)
    assert f"  sync        {line}" in report.splitlines()
    ended = format_status({**record(os.getpid(), now - 60), "sync": sync}, now)
    assert "  sync" not in ended, "a show that stopped follows nobody"


@pytest.mark.parametrize(
    ("role", "value", "parses"),
    [
        ("server", "", True),  # setup.sh --sync-server without a subnet: answer everyone
        ("server", "10.0.0.0/24", True),
        ("client", "10.0.0.5", True),
        ("client", "timeserver.local", True),
        ("server", "10.0.0.0/24/3", False),  # passes setup.sh's own check; chronyd -p catches it
    ],
)
def test_the_drop_ins_parse_as_chronyd_reads_them(
    tmp_path: Path, role: str, value: str, parses: bool
) -> None:
    if not Path(CHRONYD).is_file():
        pytest.skip("chronyd is not installed (Debian package chrony)")
    config = tmp_path / "installation.conf"
    config.write_text(rendered(role, value))
    checked = subprocess.run(
        [CHRONYD, "-p", "-f", str(config)], capture_output=True, text=True, timeout=30
    )
    assert (checked.returncode == 0) == parses, checked.stderr
    if parses:
        last = config.read_text().splitlines()[-1]
        assert last in checked.stdout.splitlines(), "the line setup.sh looks for"
