"""The sync core on the wire and in a room: the beat's datagram (python-osc's OSC, every field
checked, fuzzed), the show identity followers match on, and three real ``SyncPeer``s with
real multicast sockets and real conductors inside a private network namespace
(tests/sync_netns.py): following, a cue reaching followers before it takes effect, refused
local control, bad datagrams, a partition by the drop hook and its healing, takeover by the
next rank with no jump, and the old leader returning as a follower."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import DEFAULT_BUNDLE, MULTICAST_NETNS, ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

from installation.control.sync.clock import SharedClock
from installation.control.sync.identity import show_identity
from installation.control.sync.peer import HOST_RATE, SyncPeer
from installation.control.sync.wire import (
    MAX_DATAGRAM,
    Beat,
    Malformed,
    decode_beat,
    encode_beat,
    sent_by,
)
from installation.engine.bundle import load_bundle
from installation.score.conductor import Conductor
from installation.score.show import load_show
from installation.score.snapshot import encode

IDENTITY = "0123456789abcdef" * 4
LEADER = Beat(IDENTITY, "9f3a", 0, 3, True, 1_796_000_000.125, 41, b"\x78\x9c state")
FOLLOWER = Beat(IDENTITY, "77", 2, 3, False, 1_796_000_000.125, 0)
ROOM_SHOW = f"""
bundle = "{DEFAULT_BUNDLE}"

[display]
mode = "headless"
fps = 30

[osc]
enabled = false

[sync]
interface = "127.0.0.1"
heartbeat = 0.1
failover = 0.5
# Long enough that the cue reaches every follower in time however busy this machine is.
delay = 0.5

[[scenes]]
name = "a"
seed = 1
hold = 2.0
morph = 1.0

[[scenes]]
name = "b"
seed = "random"
hold = 1.0
morph = 0.5
duration = 600.0

[[scenes]]
name = "c"
seed = 3
hold = 60.0
morph = 1.0
transition = "cut"
"""


# The wire.


def test_a_beat_goes_through_the_wire_unchanged() -> None:
    for beat in (LEADER, replace(LEADER, alone=True), FOLLOWER):
        data = encode_beat(beat)
        assert data.startswith(b"/installation/sync/beat\x00")
        assert b",ssiiidib\x00" in data
        assert decode_beat(data) == beat
    assert encode_beat(FOLLOWER).endswith(b"\x00\x00\x00\x00"), "an empty blob: size 0"


def test_a_pc_knows_its_own_beats_from_their_bytes() -> None:
    for beat in (LEADER, FOLLOWER):
        data = encode_beat(beat)
        assert sent_by(data, beat.instance)
        for other in ("9f3", "9f3a0", "77f", "7", "ffff"):
            assert not sent_by(data, other), other
    assert not sent_by(b"", "9f3a") and not sent_by(b"\x00" * 200, "9f3a")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not an OSC message"),
        (b"/installation/sync/bea\x00\x00", "address '/installation/sync/bea'"),
        (encode_beat(LEADER)[:40], "not an OSC message"),
        (encode_beat(LEADER).replace(b",ssiiidib", b",ssiiifib"), "expected the arguments"),
        (encode_beat(replace(LEADER, identity="ab")), "identity is not a sha256"),
        (encode_beat(replace(LEADER, instance="not hex")), "instance id"),
        (encode_beat(replace(LEADER, rank=256)), "rank 256 is not 0 to 255"),
        (encode_beat(replace(LEADER, term=-1)), "out of range"),
        (encode_beat(replace(LEADER, epoch=float("nan"))), "epoch"),
        (encode_beat(replace(FOLLOWER, state=b"x")), "a follower's beat carries a state"),
    ],
)
def test_malformed_datagrams_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(Malformed) as caught:
        decode_beat(data)
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 200), st.binary(max_size=8))
def test_no_datagram_raises_anything_but_malformed(noise: bytes, at: int, splice: bytes) -> None:
    valid = encode_beat(LEADER)
    for data in (noise, valid[:at] + splice + valid[at + len(splice) :]):
        with contextlib.suppress(Malformed):
            decode_beat(data)


def test_a_flooding_host_is_cut_to_its_rate_and_others_still_heard(tmp_path: Path) -> None:
    """Beats beyond ``HOST_RATE`` a second from one host are dropped before they are parsed;
    another host's beat in the same second is still taken in."""
    (tmp_path / "show.toml").write_text(ROOM_SHOW)
    show = load_show(tmp_path / "show.toml")
    bundle = load_bundle(show.bundle)
    assert show.sync is not None
    conductor = Conductor(show, bundle.latent_size, bundle.latent_distribution)
    now = [100.0]
    peer = SyncPeer(
        show.sync, conductor, SharedClock(), show_identity(show, bundle), lambda: now[0]
    )
    flood = encode_beat(replace(FOLLOWER, identity=show_identity(show, bundle)))
    for _ in range(int(HOST_RATE) + 100):
        peer._receive(flood, "10.0.0.66")
    peer._receive(flood, "10.0.0.2")
    assert (peer.stats.over_rate, peer.stats.accepted) == (100, int(HOST_RATE) + 1)
    now[0] += 1.0
    peer._receive(flood, "10.0.0.66")
    assert peer.stats.accepted == int(HOST_RATE) + 2, "a second later the host is heard again"


def test_a_state_refused_with_a_new_epoch_leaves_the_show_time_and_the_next_is_forced(
    tmp_path: Path,
) -> None:
    """A leader's state that is too far from the present its epoch would give is refused
    before this PC's show time jumps; its next usable state then comes with the new epoch
    still, so everything made for the old times is dropped (a cut from -inf)."""
    (tmp_path / "show.toml").write_text(ROOM_SHOW)
    show = load_show(tmp_path / "show.toml")
    bundle = load_bundle(show.bundle)
    assert show.sync is not None
    identity = show_identity(show, bundle)
    here = SharedClock(offset=0.0)
    conductor = Conductor(show, bundle.latent_size, bundle.latent_distribution)
    conductor.start(here)
    cuts: list[float] = []
    conductor.on_cut(cuts.append)
    peer = SyncPeer(show.sync, conductor, here, identity)
    epoch = here.epoch - 3600.0  # the leader's room started an hour ago
    states = []
    for off in (1000.0, 0.0):  # a cue 1000 s off the present of that epoch, then one in it
        leader = Conductor(show, bundle.latent_size, bundle.latent_distribution, delay=0.5)
        leader.start(SharedClock(epoch - off, offset=0.0))
        leader.go_to_scene(2)
        states.append(encode(leader.snapshot()))
    beat = replace(LEADER, identity=identity, epoch=epoch, version=1, state=states[0])
    peer._receive(encode_beat(beat), "10.0.0.1")
    assert (peer.stats.malformed, here.epoch, cuts) == (1, epoch + 3600.0, [])
    near = replace(beat, version=2, state=states[1])
    peer._receive(encode_beat(near), "10.0.0.1")
    assert (peer.stats.installed, here.epoch, cuts) == (1, epoch, [float("-inf")])


def test_the_largest_state_that_is_sent_still_fits_one_datagram() -> None:
    overhead = len(encode_beat(replace(LEADER, state=b"")))
    assert len(encode_beat(replace(LEADER, state=bytes(MAX_DATAGRAM - overhead)))) <= 65_507


# The show identity.


def identity_of(tmp_path: Path, text: str) -> str:
    path = tmp_path / "show.toml"
    path.write_text(text)
    show = load_show(path)
    return show_identity(show, load_bundle(show.bundle))


def test_the_identity_is_what_decides_the_picture(tmp_path: Path) -> None:
    base = identity_of(tmp_path, ROOM_SHOW)
    same = {
        "another rank": ROOM_SHOW.replace("failover = 0.5", "failover = 0.5\nrank = 3"),
        "another window": ROOM_SHOW.replace("fps = 30", "fps = 30\nwindow_size = [640, 480]"),
        "osc on": ROOM_SHOW.replace("enabled = false", "enabled = true"),
        "comments": ROOM_SHOW.replace('name = "a"', 'name = "a"  # the first'),
        "a default written out": ROOM_SHOW.replace("seed = 3\n", "seed = 3\nspeed = 1\n"),
    }
    for what, text in same.items():
        assert identity_of(tmp_path, text) == base, what
    different = {
        "a seed": ROOM_SHOW.replace("seed = 1\n", "seed = 5\n"),
        "the frame rate": ROOM_SHOW.replace("fps = 30", "fps = 60"),
        "a grid": ROOM_SHOW.replace("fps = 30", 'fps = 30\nlayout = "grid"'),
        "a scene's name": ROOM_SHOW.replace('name = "c"', 'name = "d"'),
    }
    for what, text in different.items():
        assert identity_of(tmp_path, text) != base, what
    assert len(base) == 64 and int(base, 16) >= 0


def test_the_identity_follows_the_model_not_its_folder(tmp_path: Path) -> None:
    base = identity_of(tmp_path, ROOM_SHOW)
    copy = tmp_path / "elsewhere"
    shutil.copytree(DEFAULT_BUNDLE, copy)
    assert identity_of(tmp_path, ROOM_SHOW.replace(str(DEFAULT_BUNDLE), str(copy))) == base
    manifest = copy / "bundle.toml"
    text = manifest.read_text()
    stage = re.search(r'^sha256 = "([0-9a-f]{64})"', text, re.MULTILINE)
    assert stage is not None
    other = ("0" if stage[1][0] != "0" else "1") + stage[1][1:]
    manifest.write_text(text.replace(stage[1], other, 1))  # another model's file
    assert identity_of(tmp_path, ROOM_SHOW.replace(str(DEFAULT_BUNDLE), str(copy))) != base


# A room of three.


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-rn", "true"]).returncode != 0:
        pytest.skip("no private network namespace here (unshare -rn is not allowed)")
    work = tmp_path_factory.mktemp("room")
    show = work / "show.toml"
    show.write_text(ROOM_SHOW)
    helper = Path(__file__).with_name("sync_netns.py")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(helper.parent)])}
    environment.pop("INSTALLATION_SYNC_DROP", None)
    completed = subprocess.run(
        [
            unshare,
            "-rn",
            "sh",
            "-c",
            MULTICAST_NETNS,
            sys.executable,
            str(helper),
            str(show),
            str(work),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_the_lowest_rank_leads_and_the_others_follow_its_epoch(room: dict[str, Any]) -> None:
    roles = [(r["role"], r["term"], r["leader"], r["members"]) for r in room["started"]]
    leader = {"rank": 0, "address": "127.0.0.1"}
    assert roles == [("leader", 1, None, 3), ("follower", 1, leader, 3), ("follower", 1, leader, 3)]
    assert room["started"][0]["group"] == "239.255.70.16:7016"
    assert len(set(room["epochs"])) == 1
    assert room["following"] == [None, "rank 0 at 127.0.0.1", "rank 0 at 127.0.0.1"]
    assert room["refused"] == (
        "this screen follows rank 0 at 127.0.0.1: steer that PC, the sync leader"
    )


def test_a_cue_reaches_every_follower_before_it_takes_effect(room: dict[str, Any]) -> None:
    for name in ("cue", "unplugged cue", "new leader steers"):
        cue = room[name]
        for received, dropped_from in cue["received"]:
            assert dropped_from == cue["at"], "queued frames kept up to the cue's time"
            assert received < cue["at"], f"{name}: installed at {received}, effect {cue['at']}"
        assert len(set(cue["before"])) == 1 and len(set(cue["from"])) == 1, name
        assert cue["before"] != cue["from"], name
    assert room["cue agrees"] == [True, True, True]


def test_bad_datagrams_are_counted_and_followed_by_nobody(room: dict[str, Any]) -> None:
    for stats in room["noise"]:
        assert (stats["malformed"], stats["other_show"], stats["failed"]) == (1, 1, 0)
    assert room["roles after noise"] == ["leader", "follower", "follower"]
    outsider = room["outsider"]
    assert outsider["refused"] >= 3 and outsider["accepted"] == 0
    assert outsider["own"] >= 1, "its own beats are its own, not refusals: its address is out"


def test_an_unplugged_follower_plays_on_alone_and_rejoins(room: dict[str, Any]) -> None:
    alone = room["unplugged"]
    assert (alone["role"], alone["term"], alone["members"]) == ("leader", 1, 1), "room's term"
    assert room["unplugged missed it"] == room["unplugged cue"]["before"][0]
    healed = [(r["role"], r["term"]) for r in room["healed"]]
    assert healed == [("leader", 1), ("follower", 1), ("follower", 1)]
    assert room["healed"][2]["leader"]["rank"] == 0


def test_the_next_rank_takes_over_with_a_new_term_and_no_jump(room: dict[str, Any]) -> None:
    assert room["stopped in time"]
    new, other = room["takeover"]
    assert (new["role"], new["term"]) == ("leader", 2)
    assert (other["role"], other["term"], other["leader"]["rank"]) == ("follower", 2, 1)
    assert room["takeover same picture"] == [True, True]
    assert room["takeover cuts"] == [0, 0], "no frame thrown away: nothing changed"
    takeovers = [line for line in room["log"] if line.startswith("sync: leading (rank 1")]
    assert len(takeovers) == 1, "logged once"
    assert takeovers[0].startswith("sync: leading (rank 1, term 2): leader rank 0 silent for")


def test_the_returning_old_leader_follows(room: dict[str, Any]) -> None:
    back = room["returned"]
    assert (back["role"], back["rank"], back["term"], back["leader"]["rank"]) == (
        "follower",
        0,
        2,
        1,
    )
    assert room["returned epoch"][0] == room["returned epoch"][1]
    assert room["running"] == [False] * 5, "every peer's thread ended at stop"


def test_a_reload_takes_the_state_again_or_leaves_the_room(room: dict[str, Any]) -> None:
    assert room["reloaded"]["role"] == "follower"
    assert room["other show"] == ["joining", "the room's leader (not found yet)"]
    alone = room["other show leads"]
    assert (alone["role"], alone["members"]) == ("leader", 1), "the room plays another show"
    assert room["room unmoved"] == ["leader", "follower"]
