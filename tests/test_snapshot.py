"""Snapshots: the conductor's whole state as bytes. Two conductors that install the same
bytes draw the same frames, bit for bit, at every show time (random scenes, playlists,
freezes, blackouts, transitions, a grid, a W bundle); bytes from the network that are not a
snapshot of this show are refused with one line, whatever they hold."""

from __future__ import annotations

import base64
import json
import math
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import DEFAULT_BUNDLE
from wspace_bundle import write_show, write_w_bundle

from installation.engine.bundle import load_bundle
from installation.engine.mapping import conductor_for
from installation.score.conductor import Conductor
from installation.score.cue import Score
from installation.score.plan import FramePlan, Mosaic, Plan
from installation.score.show import Show, load_show
from installation.score.snapshot import (
    MAX_PENDING,
    MAX_REACH,
    Snapshot,
    SnapshotError,
    decode,
    encode,
)

SIZE = 100  # the default bundle's latent size
#: What one UDP datagram of the sync protocol may carry.
DATAGRAM = 60_000
SCENES = """
[[scenes]]
name = "drift"
seed = "random"
hold = 0.5
morph = 1.0
breathing = 0.3
duration = 4.0
fade_out = 0.5
next = "still"

[[scenes]]
name = "still"
seed = 9
hold = 0.4
morph = 0.6
transition = "crossfade"
duration = 3.0

[[scenes]]
name = "walk"
seed = "random"
hold = 0.0
morph = 0.8
transition = "morph"
easing = "cosine"
"""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_show(tmp_path: Path, display: str = "") -> Show:
    path = tmp_path / "show.toml"
    path.write_text(f'bundle = "{DEFAULT_BUNDLE}"\n{display}\n{SCENES}')
    return load_show(path)


def pair(make: Callable[[int], Conductor]) -> tuple[Conductor, Conductor, Clock]:
    """A leader and a follower on one show clock, with different entropy (random scenes
    must still agree: the leader's travels with its state)."""
    clock = Clock()
    leader, follower = make(1), make(2)
    leader.start(clock)
    follower.start(clock)
    return leader, follower, clock


def values(plan: Plan) -> list[tuple[bytes, float, int | None]]:
    cells = plan.cells if isinstance(plan, Mosaic) else (plan,)
    return [
        (np.asarray(layer.latent).tobytes(), layer.weight, layer.stages)
        for cell in cells
        for layer in cell.layers
    ]


def assert_same_frames(leader: Conductor, follower: Conductor, times: list[float]) -> None:
    for t, a, b in zip(times, leader.plans_at(times), follower.plans_at(times), strict=True):
        assert values(a) == values(b), f"frames differ at {t}"
        assert leader.scene_at(t) == follower.scene_at(t), f"scenes differ at {t}"


SCRIPT: list[tuple[float, Callable[[Conductor], object]]] = [
    (0.3, lambda c: c.beat(0.8)),
    (0.5, lambda c: c.set_intensity(0.4)),
    (1.2, lambda c: c.set_truncation(0.6)),
    (2.0, lambda c: c.next_face()),
    (5.0, lambda c: c.tick(5.0)),  # the playlist has moved on to "still"
    (5.3, lambda c: c.freeze(True)),
    (6.0, lambda c: c.blackout(True, 0.5)),
    (7.0, lambda c: c.freeze(False)),
    (7.2, lambda c: c.blackout(False)),
    (7.5, lambda c: c.set_master(0.7)),
    (8.0, lambda c: c.go_to_scene("walk")),
    (8.02, lambda c: c.set_seed(77)),
    (8.05, lambda c: c.set_pace(hold=0.3, speed=1.5)),
    (9.0, lambda c: c.go_to_scene("drift")),
]


def follow_script(leader: Conductor, follower: Conductor, clock: Clock) -> list[int]:
    """Play ``SCRIPT`` on the leader, the follower installing its state after each step;
    returns the snapshot sizes."""
    sizes = []
    for now, action in SCRIPT:
        clock.now = now
        action(leader)
        data = encode(leader.snapshot())
        sizes.append(len(data))
        follower.install(decode(data, follower.score))
        ahead = [now + k / 30 for k in range(-3, 120, 7)]
        assert_same_frames(leader, follower, ahead)
        leader.tick(now + 0.05)  # the display's ticks let go of what has ended
        follower.tick(now + 0.05)
        assert_same_frames(leader, follower, ahead[4:])
    return sizes


def test_the_same_snapshot_gives_the_same_frames(tmp_path: Path) -> None:
    show = make_show(tmp_path)
    leader, follower, clock = pair(lambda e: Conductor(show, SIZE, "normal", e, delay=0.1))
    sizes = follow_script(leader, follower, clock)
    assert_same_frames(leader, follower, [9.0 + k * 0.37 for k in range(200)])
    assert max(sizes) < DATAGRAM
    print(f"snapshot sizes (Z, {SIZE} values): max {max(sizes)} bytes")


def test_a_grid_and_no_delay_follow_too(tmp_path: Path) -> None:
    show = make_show(tmp_path, '[display]\nlayout = "grid"\ngrid = [2, 2]\n')
    leader, follower, clock = pair(lambda e: Conductor(show, SIZE, "normal", e))
    follow_script(leader, follower, clock)
    (plan,) = follower.plans_at([12.0])
    assert isinstance(plan, Mosaic) and len(plan.cells) == 4


def test_a_transition_over_is_not_sent(tmp_path: Path) -> None:
    """A transition's start pictures (a latent per face) are most of a snapshot; once it
    has ended, the display's next tick lets go of them."""
    show = make_show(tmp_path, '[display]\nlayout = "grid"\ngrid = [4, 4]\n')
    conductor = Conductor(show, SIZE, "normal", 1)
    clock = Clock()
    conductor.start(clock)
    clock.now = 5.0  # "still" plays
    conductor.go_to_scene("walk")  # morphs in over 0.8 s
    during = encode(conductor.snapshot())
    conductor.tick(5.5)
    assert encode(conductor.snapshot()) == during, "still under way"
    conductor.tick(5.8)
    after = encode(conductor.snapshot())
    assert conductor.snapshot().current.cue.entry is None
    assert len(after) < len(during) / 4 and len(during) < DATAGRAM


def test_a_w_bundle_follows_with_its_pictures(tmp_path: Path) -> None:
    """A W bundle's transitions start from mapped pictures: they travel as values (the
    leader maps them once), and the follower draws the same ws."""
    bundle = load_bundle(write_w_bundle(tmp_path / "bundle"))
    show = load_show(write_show(tmp_path, bundle.path, SCENES))
    leader, follower, clock = pair(lambda e: conductor_for(show, bundle, e))
    sizes = follow_script(leader, follower, clock)
    print(f"snapshot sizes (W, {bundle.latent_size} values): max {max(sizes)} bytes")


def test_encoding_is_deterministic(tmp_path: Path) -> None:
    show = make_show(tmp_path)
    leader, follower, clock = pair(lambda e: Conductor(show, SIZE, "normal", e, delay=0.1))
    follow_script(leader, follower, clock)
    data = encode(leader.snapshot())
    assert encode(decode(data, follower.score)) == data
    assert encode(follower.snapshot()) == data, "installed as is"


# Hostile bytes.


def document(tmp_path: Path) -> dict[str, Any]:
    """A leader's snapshot mid-morph into "walk" with a change pending, as JSON."""
    show = make_show(tmp_path)
    conductor = Conductor(show, SIZE, "normal", 1, delay=0.1)
    clock = Clock()
    conductor.start(clock)
    clock.now = 5.0  # "still" plays
    conductor.go_to_scene("walk")
    clock.now = 5.2
    conductor.tick(5.2)
    conductor.blackout(True)
    loaded: dict[str, Any] = json.loads(zlib.decompress(encode(conductor.snapshot())))
    assert loaded["snapshot"]["current"]["cue"]["entry"] is not None
    assert len(loaded["snapshot"]["pending"]) == 1
    references = [array["data"] for array in arrays_in(loaded["snapshot"])]
    assert len(references) == 2 and loaded["arrays"] == [loaded["arrays"][0]]
    assert references == [0, 0], "the start picture is in both states: sent once"
    return loaded


def arrays_in(node: object) -> list[dict[str, Any]]:
    """Every encoded array in ``node``."""
    if isinstance(node, list):
        return [found for item in node for found in arrays_in(item)]
    if isinstance(node, dict):
        if node.get("@") == "ndarray":
            return [node]
        return [found for item in node.values() for found in arrays_in(item)]
    return []


def make_show_score(tmp_path: Path) -> Score:
    return Conductor(make_show(tmp_path), SIZE, "normal", 3).score


def packed(value: object) -> bytes:
    return zlib.compress(json.dumps(value).encode())


def array(
    doc: dict[str, Any], raw: bytes, dtype: str = "float32", shape: list[int] | None = None
) -> dict[str, Any]:
    """An encoded array of ``raw`` bytes, its data added to the table of ``doc``."""
    length = len(raw) // np.dtype(dtype).itemsize
    doc["arrays"].append(base64.b64encode(zlib.compress(raw)).decode())
    index = len(doc["arrays"]) - 1
    return {"@": "ndarray", "dtype": dtype, "shape": shape or [length], "data": index}


def current(doc: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = doc["snapshot"]["current"]
    return state


def source(doc: dict[str, Any]) -> dict[str, Any]:
    layer: dict[str, Any] = current(doc)["cue"]["entry"]["sources"][0]
    return layer


MUTATIONS: dict[str, Callable[[dict[str, Any]], object]] = {
    "another key": lambda d: d.update(version=2),
    "snapshot not an object": lambda d: d.update(snapshot=[1]),
    "negative entropy": lambda d: d.update(entropy=-1),
    "entropy as text": lambda d: d.update(entropy="1"),
    "unknown type": lambda d: current(d).update({"@": "os.system"}),
    "another type in place": lambda d: current(d)["cue"].update({"@": "Ramp"}),
    "unhashable tag": lambda d: current(d).update({"@": []}),
    "extra field": lambda d: current(d).update(command="rm"),
    "missing field": lambda d: current(d).pop("paused"),
    "scene out of range": lambda d: current(d)["cue"].update(index=99),
    "next scene out of range": lambda d: current(d)["cue"].update(next_index=-1),
    "index as bool": lambda d: current(d)["cue"].update(index=True),
    "index as float": lambda d: current(d)["cue"].update(index=1.0),
    "number as text": lambda d: current(d).update(paused="0"),
    "infinite number": lambda d: current(d).update(paused=1e999),
    "number that overflows": lambda d: current(d)["cue"]["walk"]["speed"].update(after=1.7e308),
    "huge serial": lambda d: current(d)["cue"].update(serial=2**63),
    "huge stages": lambda d: source(d).update(stages=10**30),
    "negative seed": lambda d: current(d)["cue"]["walk"]["trajectory"].update(seed=-1),
    "bad pace": lambda d: current(d)["cue"]["walk"]["trajectory"].update(hold=0.0, morph=0.0),
    "other latent size": lambda d: current(d)["cue"]["walk"]["trajectory"].update(latent_size=7),
    "unknown easing": lambda d: current(d)["cue"]["entry"].update(easing="bounce"),
    "unknown transition": lambda d: current(d)["cue"]["entry"].update(kind="wipe"),
    "sources missing": lambda d: current(d)["cue"]["entry"].update(sources=[]),
    "list as object": lambda d: current(d)["cue"].update(walk=[1, 2]),
    "float64 latent": lambda d: source(d).update(value=array(d, bytes(8 * SIZE), "float64")),
    "short latent": lambda d: source(d).update(value=array(d, bytes(4 * (SIZE - 1)))),
    "latent of other shape": lambda d: source(d).update(
        value=array(d, bytes(4 * SIZE), shape=[10, 10])
    ),
    "data shorter than shape": lambda d: source(d).update(
        value=array(d, bytes(4 * 3), shape=[SIZE])
    ),
    "not a number in a latent": lambda d: source(d).update(
        value=array(d, np.full(SIZE, np.nan, np.float32).tobytes())
    ),
    "latent not base64": lambda d: d["arrays"].__setitem__(0, "@@@@"),
    "latent not zlib": lambda d: d["arrays"].__setitem__(0, "AAAA"),
    "latent data inline": lambda d: source(d)["value"].update(data=d["arrays"][0]),
    "latent index out of range": lambda d: source(d)["value"].update(data=1),
    "latent index negative": lambda d: source(d)["value"].update(data=-1),
    "arrays not texts": lambda d: d.update(arrays=[[1]]),
    "no arrays": lambda d: d.pop("arrays"),
    "latent bomb": lambda d: source(d).update(value=array(d, bytes(4 << 20), shape=[SIZE])),
    "huge latent": lambda d: source(d).update(value=array(d, bytes(4), shape=[1 << 40])),
    "no stages": lambda d: source(d).update(stages=0),
    "too many beats": lambda d: current(d)["cue"]["modulation"].update(beats=[[0.0, 1.0]] * 17),
    "pending out of order": lambda d: d["snapshot"].update(
        pending=[[5.0, current(d)], [4.0, current(d)]]
    ),
    "too many pending": lambda d: d["snapshot"].update(
        pending=[[float(k), current(d)] for k in range(MAX_PENDING + 1)]
    ),
    "pending of three": lambda d: d["snapshot"].update(pending=[[5.0, current(d), 1]]),
}


@pytest.mark.parametrize("name", MUTATIONS)
def test_a_malformed_snapshot_is_refused_in_one_line(tmp_path: Path, name: str) -> None:
    doc = document(tmp_path)
    decode(packed(doc), make_show_score(tmp_path))  # unchanged, it is fine
    MUTATIONS[name](doc)
    with pytest.raises(SnapshotError) as caught:
        decode(packed(doc), make_show_score(tmp_path))
    message = str(caught.value)
    assert message.startswith("snapshot") and "\n" not in message and len(message) < 200


RAW: dict[str, bytes] = {
    "empty": b"",
    "not zlib": b"\x00garbage",
    "truncated": zlib.compress(b'{"entropy": 1, "snapshot": {}}')[:-3],
    "trailing bytes": zlib.compress(b"{}") + b"more",
    "bomb": zlib.compress(b" " * (2 << 20)),
    "not JSON": zlib.compress(b"{'entropy': 1}"),
    "NaN": zlib.compress(b'{"entropy": NaN, "snapshot": {}}'),
    "deep": zlib.compress(b"[" * 200_000 + b"]" * 200_000),
    "huge integer": zlib.compress(b'{"entropy": ' + b"9" * 5000 + b', "snapshot": {}}'),
    "a list": zlib.compress(b"[1, 2, 3]"),
}


@pytest.mark.parametrize("name", RAW)
def test_bytes_that_are_no_snapshot_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(SnapshotError) as caught:
        decode(RAW[name], make_show_score(tmp_path))
    assert "\n" not in str(caught.value)


def test_a_state_far_from_the_present_is_not_installed(tmp_path: Path) -> None:
    """Well-formed, yet far from this PC's show time: installed, a playlist that ended long
    ago (or a change due long after) would have this PC walk it scene by scene, for ever
    for a hostile sender. The conductor keeps what it plays."""
    cycling = SCENES.replace("duration = 3.0\n", 'duration = 3.0\nnext = "drift"\n')
    path = tmp_path / "show.toml"
    path.write_text(f'bundle = "{DEFAULT_BUNDLE}"\n{cycling}')
    follower, _, clock = pair(lambda e: Conductor(load_show(path), SIZE, "normal", e))
    clock.now = 1.0
    playing = follower.snapshot()
    state = playing.current
    behind = Snapshot(replace(state, paused=-2 * MAX_REACH))  # content time far past its end
    ahead = Snapshot(state, ((clock.now + 2 * MAX_REACH, state),))
    for far in (behind, ahead):
        with pytest.raises(SnapshotError):
            follower.install(decode(encode(far), follower.score))
        assert follower.snapshot() is playing
    near = Snapshot(replace(state, paused=-MAX_REACH / 2), ((clock.now + 1.0, state),))
    assert follower.install(near)


def test_decoding_takes_this_shows_score_and_the_senders_entropy(tmp_path: Path) -> None:
    doc = document(tmp_path)
    score = make_show_score(tmp_path)
    snapshot = decode(packed(doc), score)
    assert snapshot.current.cue.score.entropy == 1 != score.entropy
    assert snapshot.current.cue.score.scenes is score.scenes
    assert all(math.isfinite(t) for t in snapshot.times())
    assert isinstance(snapshot.current.cue.plan_at(5.3), FramePlan)
