"""Screens that follow the opening hours: the real switches against fake ``cec-client``,
``wlr-randr`` and ``xset`` programs on PATH that record what they were asked, PJLink against a
small fake projector on 127.0.0.1, and the monitor driven through a closing and an opening
with injected clocks, checking the order: black, then off; on, then the fade."""

from __future__ import annotations

import hashlib
import logging
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from installation.engine.supervisor import WorkerSupervisor
from installation.score.hours import OpeningHours, ScreenPower, Span
from installation.service.dimmer import Dimmer
from installation.service.monitor import POWER_WAIT, Monitor, ServiceSettings, ShowInfo
from installation.service.notify import Notifier
from installation.service.pjlink import PjlinkError, Projector
from installation.service.power import (
    Cec,
    Dpms,
    Pjlink,
    PowerFailed,
    ScreenSwitcher,
    switch_for,
)

# Each fake appends "NAME ARGS [| STDIN]" to $FAKE_LOG. With $FAKE_DIR/fail it fails like
# cec-client without an adapter; with $FAKE_DIR/hold it marks $FAKE_DIR/waiting and waits for
# $FAKE_DIR/gate (at most 10 s), like a screen slow to answer.
FAKE = """#!/bin/sh
if [ -e "$FAKE_DIR/hold" ]; then
    touch "$FAKE_DIR/waiting"
    for i in $(seq 200); do [ -e "$FAKE_DIR/gate" ] && break; sleep 0.05; done
fi
input=""
[ "$1" = "-s" ] && input=" | $(cat)"
echo "$(basename "$0")${*:+ $*}$input" >> "$FAKE_LOG"
[ -e "$FAKE_DIR/fail" ] && { echo "ERROR: no adapter found"; exit 1; }
if [ "$(basename "$0")" = wlr-randr ] && [ $# -eq 0 ]; then
    printf 'HDMI-A-1 "Dell Inc. DELL U2720Q"\\n  Enabled: yes\\n  Modes:\\n'
    printf '    3840x2160 px, 60.000000 Hz (preferred, current)\\nDP-2 "LG"\\n  Enabled: yes\\n'
fi
exit 0
"""


class Fakes:
    """The fake programs in a folder first on PATH, and what they recorded."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.folder = folder
        bin_dir = folder / "bin"
        bin_dir.mkdir()
        for name in ("cec-client", "wlr-randr", "xset"):
            program = bin_dir / name
            program.write_text(FAKE)
            program.chmod(0o755)
        self.log = folder / "calls"
        monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
        monkeypatch.setenv("FAKE_LOG", str(self.log))
        monkeypatch.setenv("FAKE_DIR", str(folder))

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def mark(self, name: str, present: bool = True) -> None:
        if present:
            (self.folder / name).touch()
        else:
            (self.folder / name).unlink()


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fakes:
    return Fakes(tmp_path, monkeypatch)


def test_cec_tells_the_tv_through_cec_client(fakes: Fakes) -> None:
    Cec().power(False)
    Cec().power(True)
    assert fakes.calls() == ["cec-client -s -d 1 | standby 0", "cec-client -s -d 1 | on 0"]
    fakes.mark("fail")
    with pytest.raises(PowerFailed, match="ended with status 1: ERROR: no adapter found"):
        Cec().power(False)


def test_a_missing_or_slow_program_fails_in_bounded_time(
    fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes.mark("hold")
    with pytest.raises(PowerFailed) as slow:
        Cec(timeout=0.3).power(True)
    assert slow.value.kind == "timeout"
    monkeypatch.setenv("PATH", str(fakes.folder / "nowhere"))
    with pytest.raises(PowerFailed) as missing:
        Cec().power(True)
    assert (missing.value.kind, str(missing.value)) == ("missing", "cec-client is not installed")


def test_dpms_switches_every_wayland_output_or_the_x_display(
    fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    monkeypatch.setenv("DISPLAY", ":0")  # Xwayland too: Wayland comes first
    Dpms().power(False)
    assert fakes.calls() == [
        "wlr-randr",
        "wlr-randr --output HDMI-A-1 --off",
        "wlr-randr --output DP-2 --off",
    ]
    monkeypatch.delenv("WAYLAND_DISPLAY")
    Dpms().power(True)
    assert fakes.calls()[-1] == "xset dpms force on"
    monkeypatch.delenv("DISPLAY")
    with pytest.raises(PowerFailed, match="neither WAYLAND_DISPLAY nor DISPLAY"):
        Dpms().power(True)


class FakeProjector(socketserver.ThreadingTCPServer):
    """A PJLink class 1 projector on 127.0.0.1: greets, checks the password's digest,
    answers ``POWR`` with ``answer`` and ``POWR ?`` with ``states`` in turn (then "1")."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, password: str | None = None, answer: str = "OK") -> None:
        self.password = password
        self.answer = answer
        self.states: list[str] = []
        self.commands: list[str] = []
        self.silent = False
        self.spoken = threading.Event()  # ends a silent projector's silence
        self.flood = False
        super().__init__(("127.0.0.1", 0), _ProjectorHandler)
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def port(self) -> int:
        return self.server_address[1]


class _ProjectorHandler(socketserver.StreamRequestHandler):
    server: FakeProjector

    def handle(self) -> None:
        projector = self.server
        if projector.silent:  # holds the connection, whatever the client's time limit
            projector.spoken.wait(10.0)
            return
        if projector.flood:  # a greeting that never ends, as from something broken or hostile
            self.wfile.write(b"PJLINK 1 " + b"7" * 65536)
            return
        random = "498e4a67"
        greeting = "PJLINK 0" if projector.password is None else f"PJLINK 1 {random}"
        self.wfile.write(f"{greeting}\r".encode())
        line = b""
        while not line.endswith(b"\r"):
            chunk = self.rfile.read(1)
            if not chunk:
                return
            line += chunk
        text = line[:-1].decode()
        if projector.password is not None:
            digest = hashlib.md5((random + projector.password).encode()).hexdigest()
            if not text.startswith(digest):
                self.wfile.write(b"PJLINK ERRA\r")
                return
            text = text[len(digest) :]
        body, parameter = text.removeprefix("%1").split(" ", 1)
        projector.commands.append(f"{body} {parameter}")
        if parameter == "?":
            reply = projector.states.pop(0) if projector.states else "1"
        else:
            reply = projector.answer
        self.wfile.write(f"%1{body}={reply}\r".encode())


@pytest.fixture
def projector() -> Iterator[FakeProjector]:
    server = FakeProjector()
    yield server
    server.shutdown()
    server.server_close()


def test_pjlink_switches_a_projector_and_waits_for_its_lamp(projector: FakeProjector) -> None:
    switch = Pjlink(Projector("127.0.0.1", projector.port, None), poll=0.01)
    switch.power(False)
    projector.states = ["3", "3", "1"]  # warming up twice, then on
    switch.power(True)
    assert projector.commands == ["POWR 0", "POWR 1", "POWR ?", "POWR ?", "POWR ?"]


def test_pjlink_with_a_password(projector: FakeProjector) -> None:
    projector.password = "gallery-2026"
    Projector("127.0.0.1", projector.port, "gallery-2026").power(True)
    assert projector.commands == ["POWR 1"]
    for password, kind in (("wrong", "ERRA"), (None, "password")):
        with pytest.raises(PjlinkError) as refused:
            Projector("127.0.0.1", projector.port, password).power(False)
        assert refused.value.kind == kind
        assert str(refused.value).startswith(f"127.0.0.1:{projector.port}: ")
    assert projector.commands == ["POWR 1"], "nothing done without the password"


@pytest.mark.parametrize("code", ["ERR1", "ERR2", "ERR3", "ERR4"])
def test_pjlink_errors_are_named(projector: FakeProjector, code: str) -> None:
    projector.answer = code
    with pytest.raises(PowerFailed) as failed:
        Pjlink(Projector("127.0.0.1", projector.port, None)).power(True)
    assert failed.value.kind == code
    assert f"{code}: the projector" in str(failed.value)


def test_pjlink_gives_up_on_a_silent_or_absent_projector(projector: FakeProjector) -> None:
    projector.silent = True
    with pytest.raises(PjlinkError) as silent:
        Projector("127.0.0.1", projector.port, None, timeout=0.2).power(True)
    assert silent.value.kind == "timeout"
    projector.spoken.set()
    port = projector.port
    projector.shutdown()
    projector.server_close()
    with pytest.raises(PjlinkError) as absent:
        Projector("127.0.0.1", port, None).power(True)
    assert absent.value.kind == "connect"


def test_pjlink_reads_no_line_longer_than_a_projector_sends(projector: FakeProjector) -> None:
    projector.flood = True
    with pytest.raises(PjlinkError, match="a line longer than 256 bytes") as flooded:
        Projector("127.0.0.1", projector.port, "pw").power(True)
    assert flooded.value.kind == "protocol"
    assert projector.commands == []


def test_switch_for_each_screen_setting() -> None:
    assert switch_for(ScreenPower()) is None
    assert isinstance(switch_for(ScreenPower("cec")), Cec)
    assert isinstance(switch_for(ScreenPower("dpms")), Dpms)
    pjlink = switch_for(ScreenPower("pjlink", ("::1", 4352), "pw"))
    assert isinstance(pjlink, Pjlink) and pjlink.projector.where == "[::1]:4352"


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"waited 10 s for {what}"
        time.sleep(0.01)


def test_the_latest_intention_wins_and_a_failure_is_logged_once(
    fakes: Fakes, caplog: pytest.LogCaptureFixture
) -> None:
    switcher = ScreenSwitcher(Cec(), retry=0.02)
    try:
        fakes.mark("hold")
        switcher.request(False)
        wait_for((fakes.folder / "waiting").exists, "the first command")
        for on in (True, False, True):  # while the first command hangs
            switcher.request(on)
        fakes.mark("gate")
        wait_for(switcher.answered, "the latest intention")
        assert fakes.calls() == ["cec-client -s -d 1 | standby 0", "cec-client -s -d 1 | on 0"]
        fakes.mark("hold", False)
        fakes.mark("fail")
        with caplog.at_level(logging.INFO, "installation.service.power"):
            switcher.request(False)
            wait_for(lambda: len(fakes.calls()) >= 6, "tries again")
            fakes.mark("fail", False)
            wait_for(lambda: "screen switched off by cec" in caplog.text, "success at last")
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert (
            warnings[0]
            .getMessage()
            .startswith("screen: switching it off by cec failed: cec-client ended with status 1: ")
        )
    finally:
        switcher.close()


class Clock:
    """A monotonic clock that the test moves on by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Wall:
    def __init__(self, moment: str) -> None:
        self.moment = datetime.fromisoformat(moment)

    def __call__(self) -> datetime:
        return self.moment


class Loop:
    budget = 1 / 60
    shown = 0


class Driven:
    """A monitor on injected clocks, ticked by hand; the screen is switched by the real
    ScreenSwitcher thread running the fake cec-client."""

    def __init__(self, fade: float = 1.0) -> None:
        daily = (Span(10 * 60, 18 * 60),)
        hours = OpeningHours(weekly=(daily,) * 7, fade=fade, screen=ScreenPower("cec"))
        self.clock = Clock()
        self.wall = Wall("2026-06-02 17:59:30")
        settings = ServiceSettings(
            ShowInfo("show.toml", "test"),
            hours,
            Notifier(),
            None,
            lambda: {"backend": "-", "scene": "-"},
            self.wall,
        )
        self.loop = Loop()
        self.dimmer = Dimmer(1.0, clock=self.clock)
        self.power = ScreenSwitcher(switch_for(hours.screen), retry=3600)
        supervisor = WorkerSupervisor(lambda: None)  # type: ignore[arg-type,return-value]
        self.monitor = Monitor(
            settings, self.loop, supervisor, self.dimmer, threading.Event(), self.clock, self.power
        )
        #: (brightness, the screen's intention) after each tick
        self.ticks: list[tuple[float, bool | None]] = []

    def tick(self, seconds: float = 0.25) -> None:
        self.clock.now += seconds
        self.loop.shown += 15
        self.monitor.step()
        self.ticks.append((self.dimmer.level(), self.power.wanted))


@pytest.fixture
def driven(fakes: Fakes) -> Iterator[Driven]:
    show = Driven()
    yield show
    show.power.close()


def test_the_closing_fade_counts_from_the_minute_of_closing(fakes: Fakes) -> None:
    """Two PCs of a room read the hours at different moments of the same second: their
    fades count from 18:00:00 on their (agreeing) wall clocks, so they are equally dark."""
    levels = []
    for noticed in ("18:00:00.200", "18:00:00.900"):
        show = Driven(fade=4.0)
        try:
            show.tick()
            show.wall.moment = datetime.fromisoformat(f"2026-06-02 {noticed}")
            show.tick(1.0)  # the hours are read once a second
            # Read both at 18:00:01 on their wall clocks.
            show.clock.now += 1.0 - float(noticed.rsplit(":", 1)[1])
            levels.append(show.dimmer.level())
        finally:
            show.power.close()
    assert levels == pytest.approx([0.75, 0.75])


def test_black_then_off_at_closing_on_then_fade_at_opening(driven: Driven, fakes: Fakes) -> None:
    driven.tick()
    driven.wall.moment = datetime.fromisoformat("2026-06-02 18:00:00")
    for _ in range(8):
        driven.tick()
    first_off = next(i for i, (_, wanted) in enumerate(driven.ticks) if wanted is False)
    assert driven.ticks[first_off][0] == 0.0, "the fade reached black first"
    assert all(level > 0 and wanted is None for level, wanted in driven.ticks[:first_off])
    assert first_off > 2, "the fade took its time"
    wait_for(driven.power.answered, "the screen off")
    assert fakes.calls() == ["cec-client -s -d 1 | standby 0"]

    fakes.mark("hold")  # the screen takes its time to answer
    driven.wall.moment = datetime.fromisoformat("2026-06-03 10:00:00")
    for _ in range(5):
        driven.tick(1.0)
        assert driven.power.wanted is True
        assert driven.dimmer.target == 0.0 and driven.monitor.state() == "opening"
    fakes.mark("gate")
    wait_for(driven.power.answered, "the screen on")
    assert fakes.calls()[-1] == "cec-client -s -d 1 | on 0"
    driven.tick()
    assert driven.dimmer.target == 1.0 and driven.monitor.state() == "playing"
    driven.tick()
    assert 0 < driven.dimmer.level() < 1, "fading in"


def test_a_screen_that_does_not_answer_delays_the_fade_only_so_long(
    driven: Driven, fakes: Fakes, caplog: pytest.LogCaptureFixture
) -> None:
    driven.wall.moment = datetime.fromisoformat("2026-06-02 09:59:00")
    driven.tick()  # closed: black, then off
    for _ in range(8):
        driven.tick()
    wait_for(driven.power.answered, "the screen off")
    fakes.mark("hold")
    driven.wall.moment = datetime.fromisoformat("2026-06-02 10:00:00")
    with caplog.at_level(logging.WARNING, "installation.service.monitor"):
        driven.tick(1.0)
        driven.tick(POWER_WAIT - 2)
        assert driven.dimmer.target == 0.0
        driven.tick(2.0)
    assert driven.dimmer.target == 1.0, "the fade began without the answer"
    assert "screen: no answer after 60 s; fading in all the same" in caplog.text
    fakes.mark("gate")


def test_a_failing_screen_never_stops_the_show_and_is_logged_once(
    driven: Driven, fakes: Fakes, caplog: pytest.LogCaptureFixture
) -> None:
    fakes.mark("fail")
    with caplog.at_level(logging.WARNING):
        for day in (2, 3):
            driven.wall.moment = datetime.fromisoformat(f"2026-06-0{day} 18:00:00")
            for _ in range(8):
                driven.tick()
            wait_for(driven.power.answered, "a failed switch off")
            driven.wall.moment = datetime.fromisoformat(f"2026-06-0{day + 1} 10:00:00")
            driven.tick(1.0)
            wait_for(driven.power.answered, "a failed switch on")
            driven.tick()
            assert driven.dimmer.target == 1.0, "faded in all the same"
    assert len(fakes.calls()) == 4
    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert [line.split(" failed")[0] for line in failures] == [
        "screen: switching it off by cec",
        "screen: switching it on by cec",
    ]


def test_a_reload_that_changes_the_screen_setting_switches_with_the_new_one(
    driven: Driven, fakes: Fakes
) -> None:
    hours = driven.monitor.settings.hours
    driven.monitor.settings.hours = replace(hours, screen=ScreenPower("none"))
    driven.wall.moment = datetime.fromisoformat("2026-06-02 18:00:00")
    for _ in range(8):
        driven.tick()
    assert driven.power.wanted is False and driven.power.answered()
    assert fakes.calls() == [], "screen = none switches nothing"
    driven.monitor.settings.hours = hours
    driven.tick(1.0)
    wait_for(driven.power.answered, "the screen off by the new switch")
    assert fakes.calls() == ["cec-client -s -d 1 | standby 0"]
