"""The conductor's timeline: changes scheduled ``delay`` seconds ahead, so that every screen
of a room has a leader's change before the frame it lands on, and the controls a following
screen refuses. Show time is moved by hand; nothing here depends on the machine's speed."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import DEFAULT_BUNDLE, DEFAULT_SHOW

from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.bundle import Bundle
from installation.engine.frames import Frame, FrameQueue
from installation.engine.pipeline import Pipeline
from installation.engine.worker import InferenceWorker
from installation.errors import UserError
from installation.score.conductor import Conductor
from installation.score.show import Show, load_show
from installation.score.snapshot import MAX_PENDING
from installation.session import load_parts

SIZE = 100  # the default bundle's latent size
DELAY = 0.1
SCENES = """
[[scenes]]
name = "a"
seed = 5
hold = 1.0
morph = 2.0
breathing = 0.2

[[scenes]]
name = "b"
seed = 9
hold = 0.5
morph = 1.0
transition = "crossfade"
"""


class Clock:
    """Show time that a test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_show(tmp_path: Path, scenes: str = SCENES) -> Show:
    path = tmp_path / "show.toml"
    path.write_text(f'bundle = "{DEFAULT_BUNDLE}"\n\n{scenes}')
    return load_show(path)


def started(show: Show, delay: float = DELAY) -> tuple[Conductor, Clock, list[float]]:
    conductor = Conductor(show, SIZE, "normal", entropy=1, delay=delay)
    clock = Clock()
    conductor.start(clock)
    cuts: list[float] = []
    conductor.on_cut(cuts.append)
    return conductor, clock, cuts


def latents(conductor: Conductor, times: list[float]) -> list[np.ndarray]:
    return [plan.layers[0].latent for plan in conductor.plans_at(times)]


def test_a_cut_lands_exactly_delay_seconds_later(tmp_path: Path) -> None:
    """A delayed cut at 2.0 draws what an immediate cut at 2.1 draws: the old scene before
    2.1, the new one from 2.1 on, frame for frame."""
    show = make_show(tmp_path)
    delayed, clock, cuts = started(show)
    immediate, reference, _ = started(show, delay=0.0)
    untouched, _, _ = started(show, delay=0.0)
    clock.now = 2.0
    delayed.go_to_scene("b")
    reference.now = 2.0 + DELAY
    immediate.go_to_scene("b")
    assert cuts == [pytest.approx(2.1)], "the listener hears the cut's own time"
    at = cuts[0]
    before = [at - 0.05, at - 1e-9]
    after = [at, at + 0.3, at + 1.7, at + 5.0]
    for a, b in zip(latents(delayed, before), latents(untouched, before), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [delayed.scene_at(t)[0] for t in before] == [1, 1]
    assert [delayed.scene_at(t)[0] for t in after] == [2, 2, 2, 2]
    for plan, other in zip(delayed.plans_at(after), immediate.plans_at(after), strict=True):
        assert len(plan.layers) == len(other.layers)
        for layer, same in zip(plan.layers, other.layers, strict=True):
            np.testing.assert_array_equal(layer.latent, same.latent)
            assert layer.weight == same.weight


def test_the_queue_keeps_the_frames_before_a_scheduled_cut(tmp_path: Path) -> None:
    conductor, clock, _ = started(make_show(tmp_path))
    queue = FrameQueue(16)
    conductor.on_cut(queue.invalidate)
    times = [2.0 + k / 30 for k in range(8)]
    queue.put([Frame(t, None, k) for k, t in enumerate(times)])
    epoch = queue.epoch
    clock.now = 2.0
    conductor.set_seed(3)
    assert queue.newest() == pytest.approx(times[2]), "frames before 2.1 stay"
    assert queue.epoch != epoch, "work in flight for later times is dropped"
    queue.invalidate(float("-inf"))
    assert len(queue) == 0 and queue.newest() is None


def test_changes_apply_in_order_and_become_current_when_due(tmp_path: Path) -> None:
    conductor, clock, cuts = started(make_show(tmp_path))
    clock.now = 1.0
    conductor.next_face()
    clock.now = 1.05
    conductor.blackout(True, 0.0)
    clock.now = 1.02  # a clock may be set back (a leader's epoch adopted): order still holds
    conductor.set_truncation(0.5)
    times = conductor.snapshot().times()
    assert times == pytest.approx((1.1, 1.15)), "the last change joins the last time"
    assert cuts == [pytest.approx(1.1)]
    assert conductor.tick(times[0]) == 1.0 and conductor.tick(1.149) == 1.0
    assert conductor.snapshot().times() == times[1:]
    assert conductor.tick(times[1]) == 0.0, "the blackout is dark from its own time"
    assert conductor.snapshot().pending == ()
    assert conductor.status().blackout


def test_a_flood_of_changes_stays_bounded(tmp_path: Path) -> None:
    conductor, clock, _ = started(make_show(tmp_path))
    for k in range(MAX_PENDING + 50):
        clock.now = k * 1e-5  # all within one delay: none due yet
        conductor.beat(0.5)
    times = conductor.snapshot().times()
    assert len(times) == MAX_PENDING
    assert list(times) == sorted(set(times)), "strictly increasing show times"
    assert conductor.snapshot().latest.cue.modulation.beats, "the last beats are kept"


def test_without_delay_nothing_waits(tmp_path: Path) -> None:
    conductor, clock, cuts = started(make_show(tmp_path), delay=0.0)
    clock.now = 3.0
    conductor.go_to_scene("b")
    conductor.freeze(True)
    conductor.blackout(True, 1.0)
    assert conductor.snapshot().pending == ()
    assert cuts == [3.0, 3.0]
    assert conductor.scene_at(3.0)[:2] == (2, 9)
    assert conductor.scene_at(3.5)[2] == pytest.approx(0.5)


def test_smooth_changes_wait_for_their_time_and_the_horizon(tmp_path: Path) -> None:
    """A glide starts at the later of its time and the frames already made, so no frame
    made or still to be made before it changes, and no cut is needed."""
    conductor, clock, cuts = started(make_show(tmp_path))
    untouched, _, _ = started(make_show(tmp_path))
    clock.now = 5.0
    conductor.plans_at([5.4])  # the worker is 0.4 s ahead
    conductor.set_truncation(0.3)
    early = [5.0, 5.3, 5.4]
    for a, b in zip(latents(conductor, early), latents(untouched, early), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(*latents(conductor, [6.5]), *latents(untouched, [6.5]))
    assert cuts == []


def test_freeze_and_a_scene_change_ahead(tmp_path: Path) -> None:
    conductor, clock, cuts = started(make_show(tmp_path))
    clock.now = 4.0
    conductor.freeze(True)
    conductor.freeze(True)  # already (to be) frozen: nothing happens
    assert cuts == [pytest.approx(4.1)]
    frozen = latents(conductor, [4.1, 6.0, 9.0])
    np.testing.assert_array_equal(frozen[0], frozen[1])
    np.testing.assert_array_equal(frozen[0], frozen[2])
    assert not np.array_equal(*latents(conductor, [4.0]), frozen[0])
    clock.now = 7.0
    conductor.go_to_scene("b")  # a cue ends the freeze, from its own time
    assert conductor.scene_at(7.05)[0] == 1 and conductor.scene_at(7.1)[0] == 2
    assert conductor.snapshot().latest.frozen_at is None


def test_scene_at_moves_nothing(tmp_path: Path) -> None:
    conductor, clock, _ = started(make_show(tmp_path))
    clock.now = 1.0
    conductor.go_to_scene("b")
    before = conductor.snapshot()
    assert conductor.scene_at(5.0)[:2] == (2, 9)
    assert conductor.snapshot() is before, "nothing promoted"
    assert conductor.scene_at(5.0)[2] == conductor.tick(5.0)


def test_change_listeners_hear_controls_only(tmp_path: Path) -> None:
    playlist = SCENES.replace('name = "a"\n', 'name = "a"\nduration = 2.0\n')
    conductor, _, _ = started(make_show(tmp_path, playlist))
    changes: list[int] = []
    conductor.on_change(lambda: changes.append(1))
    conductor.set_master(0.5)
    conductor.go_to_scene("b")
    conductor.restore()
    assert len(changes) == 3
    with pytest.raises(UserError):
        conductor.go_to_scene("nowhere")
    conductor.freeze(False)  # not frozen: no change
    for t in (1.0, 2.5, 6.0):  # a playlist moving on by itself
        conductor.tick(t)
    other, _, _ = started(make_show(tmp_path, playlist))
    other.install(conductor.snapshot())
    assert len(changes) == 3


def test_a_following_screen_refuses_controls(tmp_path: Path) -> None:
    conductor, _, cuts = started(make_show(tmp_path))
    conductor.follow("rank 0 at 10.0.0.5")
    assert conductor.following == "rank 0 at 10.0.0.5"
    before = conductor.snapshot()
    controls = [
        lambda: conductor.go_to_scene("b"),
        lambda: conductor.step_scene(1),
        lambda: conductor.next_face(),
        lambda: conductor.previous_face(),
        lambda: conductor.set_seed(4),
        lambda: conductor.freeze(True),
        lambda: conductor.set_pace(hold=2.0),
        lambda: conductor.set_truncation(0.4),
        lambda: conductor.set_intensity(0.2),
        lambda: conductor.beat(),
        lambda: conductor.blackout(True),
        lambda: conductor.set_blackout_fade(3.0),
        lambda: conductor.set_master(0.1),
        lambda: conductor.restore(),
    ]
    for control in controls:
        with pytest.raises(UserError, match=r"follows rank 0 at 10\.0\.0\.5: steer that PC"):
            control()
    assert conductor.snapshot() is before and cuts == []
    conductor.replace_show(make_show(tmp_path))  # its own show file: still taken
    conductor.follow(None)
    assert conductor.following is None
    conductor.go_to_scene("b")
    assert conductor.snapshot().latest.cue.index == 1


def test_install_drops_frames_from_the_first_difference(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    show = make_show(tmp_path)
    leader, clock, _ = started(show)
    follower, follower_clock, cuts = started(show)
    clock.now = follower_clock.now = 2.0
    leader.set_truncation(0.7)
    assert follower.install(leader.snapshot())
    assert cuts == [pytest.approx(2.1)], "the same until the change's time"
    assert not follower.install(leader.snapshot()), "nothing new"
    assert cuts == [pytest.approx(2.1)]
    clock.now = follower_clock.now = 2.5
    for t in (2.2, 2.4):
        leader.tick(t)
    assert not follower.install(leader.snapshot()), "promotion shows nothing new"
    leader.set_seed(12)
    with caplog.at_level(logging.INFO, "installation.score.conductor"):
        assert follower.install(leader.snapshot())
    assert "seed 12" in caplog.text
    assert cuts[-1] == pytest.approx(2.6)
    assert not follower.install(leader.snapshot(), force=True)
    assert cuts[-1] == float("-inf"), "a jumped clock drops every frame"


def test_a_jumped_clock_measures_the_display_rate_afresh(tmp_path: Path) -> None:
    show = make_show(tmp_path)
    leader, _, _ = started(show)
    follower, clock, _ = started(show)
    for t in (2.0, 2.5):
        follower.tick(t)
    clock.now = 0.3  # the leader's epoch adopted: show time went back
    follower.install(leader.snapshot(), force=True)
    for t in (0.3, 0.4):
        follower.tick(t)
    assert follower.status().frames_per_second == pytest.approx(10.0)


def test_install_of_a_different_present_drops_from_now(tmp_path: Path) -> None:
    show = make_show(tmp_path)
    leader, clock, _ = started(show, delay=0.0)
    follower, follower_clock, cuts = started(show, delay=0.0)
    clock.now = follower_clock.now = 3.0
    leader.go_to_scene("b")
    clock.now = follower_clock.now = 3.5
    assert follower.install(leader.snapshot())
    assert cuts == [3.5]
    assert follower.scene_at(3.5)[:2] == (2, 9)


def cpu_worker(
    bundle: Bundle, conductor: Conductor, queue: FrameQueue, clock: Callable[[], float]
) -> InferenceWorker:
    """A real inference worker on ONNX Runtime's CPU, 30 frames a second, 0.2 s ahead."""
    pipeline = Pipeline.load(bundle, OnnxRuntimeBackend(CPU, threads=1))
    return InferenceWorker(pipeline, conductor.plans_at, queue, clock, 30, 0.2, itertools.count())


def test_the_worker_makes_again_only_what_a_cut_dropped() -> None:
    """A real worker on the default bundle, the show clock standing: a cut scheduled ahead
    keeps the frames before it, and the worker goes on after them (from the first it had
    skipped, if it had fallen behind) into the new scene."""
    show, bundle, _ = load_parts(DEFAULT_SHOW)
    conductor = Conductor(show, bundle.latent_size, bundle.latent_distribution, 1, delay=DELAY)
    now = 3.0
    conductor.start(lambda: now)
    queue = FrameQueue(32)
    cuts: list[float] = []
    conductor.on_cut(cuts.append)
    conductor.on_cut(queue.invalidate)
    accepted: list[tuple[int | None, Frame]] = []  # (epoch, frame)
    put = queue.put

    def noting(frames: list[Frame], epoch: int | None = None) -> bool:
        ok = put(frames, epoch)
        accepted.extend((epoch, frame) for frame in frames if ok)
        return ok

    queue.put = noting  # type: ignore[method-assign]
    worker = cpu_worker(bundle, conductor, queue, lambda: now)
    worker.start()
    try:
        wait_for(lambda: (queue.newest() or 0.0) >= now + 0.15)
        epoch = queue.epoch
        conductor.set_seed(4)
        wait_for(lambda: (queue.newest() or 0.0) >= now + 0.15)
    finally:
        worker.stop()
    (at,) = cuts
    kept = [frame for made_in, frame in accepted if made_in == epoch and frame.t < at]
    made = [frame for made_in, frame in accepted if made_in != epoch]
    assert kept and made and all(frame.t > kept[-1].t for frame in made), "after the kept"
    assert made[-1].t >= at
    queued = kept + made
    times = [frame.t for frame in queued]
    assert times == sorted(set(times)), "no frame twice, none out of order"
    picks = [queue.pick(t) for t in times]
    assert [pick.a if pick else None for pick in picks] == queued, "exactly these are queued"


def wait_for(condition: Callable[[], bool], limit: float = 60.0) -> None:
    """Poll ``condition`` until it holds; the limit only guards against a hang."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "the worker made no progress"
        threading.Event().wait(0.005)


def test_a_jump_of_show_time_is_not_counted_as_frames_skipped() -> None:
    """A follower adopting its room's epoch jumps hours ahead: the worker goes on there
    without counting the hours as frames it could not make."""
    show, bundle, _ = load_parts(DEFAULT_SHOW)
    conductor = Conductor(show, bundle.latent_size, bundle.latent_distribution, 1)
    now = 3.0
    conductor.start(lambda: now)
    queue = FrameQueue(32)
    worker = cpu_worker(bundle, conductor, queue, lambda: now)
    worker.start()
    try:
        wait_for(lambda: (queue.newest() or 0.0) >= now + 0.15)
        before = worker.skipped
        now = 7203.0  # the install of the room's state drops the queue a moment later
        wait_for(lambda: (queue.newest() or 0.0) >= now + 0.15)
    finally:
        worker.stop()
    assert worker.skipped - before < 30 * 2, f"{worker.skipped - before} frames skipped"
