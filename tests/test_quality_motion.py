"""Adaptive quality judged by what the eye sees: a stage stays while the picture moves little
between two generated frames at the show's pace, and only fast motion drops it. The pace
comes from a real conductor on a clock the test moves; generation runs on a simulated clock
(frames counted, never timed); the cut check runs the real worker and ONNX Runtime."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import brisk_conductor, edited_show

from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.frames import Frame, FrameQueue
from installation.engine.pipeline import Pipeline
from installation.engine.quality import AdaptiveQuality, QualityPolicy
from installation.engine.worker import InferenceWorker
from installation.errors import UserError
from installation.score.conductor import Conductor
from installation.score.motion import BREATH_SPEED, SWELL_SLOPE, peak_slope
from installation.score.show import Show, load_show

LABELS = ["generator (64 px)", "refine-256 (256 px)"]
SIZE = 100  # the default bundle's latent size


class Gallery:
    """A conductor and adaptive quality on one simulated clock: frames generated back to
    back, all stages at ``rate`` frames/s and the generator alone at 100."""

    def __init__(self, show: Show, rate: float, policy: QualityPolicy | None = None) -> None:
        self.now = 0.0
        self.rate = rate
        self.conductor = Conductor(show, SIZE, "normal", entropy=1)
        self.conductor.start(lambda: self.now)
        self.quality = AdaptiveQuality(
            LABELS, policy, clock=lambda: self.now, motion=self.conductor.motion
        )
        self.caps: list[tuple[float, int]] = []  # (when, cap) after every frame
        self.beat_every: float | None = None

    def run(self, seconds: float) -> None:
        end = self.now + seconds
        next_beat = self.now
        while self.now < end:
            if self.beat_every is not None and self.now >= next_beat:
                self.conductor.beat()
                next_beat += self.beat_every
            stages = self.quality.cap
            cost = 1.0 / self.rate if stages == 2 else 0.01
            self.conductor.plans_at([self.now + cost])  # the worker asks for its next frame
            self.now += cost
            self.quality.record(cost, stages)
            self.caps.append((self.now, self.quality.cap))

    @property
    def used(self) -> set[int]:
        return {cap for _, cap in self.caps}


def test_a_five_second_morph_keeps_every_stage_at_8_frames_a_second() -> None:
    gallery = Gallery(load_show(None), rate=8.0)
    assert gallery.conductor.motion() == pytest.approx(1.5 / 5.0, rel=1e-3), "smoothstep peak"
    gallery.run(120.0)  # 15 faces, held and morphed
    assert gallery.used == {2}


def test_the_same_rate_drops_a_stage_when_the_morph_speeds_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gallery = Gallery(load_show(None), rate=8.0)
    gallery.run(10.0)
    gallery.conductor.set_pace(speed=4.0)  # 1.2 faces/s: 0.15 a frame at 8 frames/s
    assert gallery.conductor.motion() == pytest.approx(1.2, rel=1e-3), "counted at once"
    with caplog.at_level(logging.INFO, logger="installation.engine.quality"):
        gallery.run(4.0)
    assert gallery.quality.cap == 1
    [record] = caplog.records
    assert record.getMessage() == (
        "quality: 8.0 frames/s with stage refine-256 (256 px) moves the picture 0.150 faces a "
        "frame at 1.20 faces/s, over max_step 0.05: dropping it, frames now end at generator "
        "(64 px); trying it again in 20 s at the earliest"
    )


def test_beats_on_a_breathing_face_drop_a_stage_and_it_comes_back_after_the_wait(
    tmp_path: Path,
) -> None:
    show = load_show(edited_show(tmp_path, 'easing = "smoothstep"', "breathing = 0.1"))
    gallery = Gallery(show, rate=8.0)
    breathing = 0.3 + 0.1 * BREATH_SPEED
    assert gallery.conductor.motion() == pytest.approx(breathing, rel=1e-3)
    gallery.run(30.0)
    assert gallery.used == {2}, "breathing alone is slow enough"
    gallery.beat_every = 0.5  # 120 beats a minute from the sound system
    gallery.run(0.1)
    assert gallery.conductor.motion() > breathing + 0.1 * SWELL_SLOPE / 2**0.5
    gallery.run(4.0)
    assert gallery.quality.cap == 1
    dropped = next(when for when, cap in gallery.caps if cap == 1)
    gallery.beat_every = None
    gallery.run(30.0)
    assert gallery.quality.cap == 2, "the music stopped: the stage is tried again"
    back = next(when for when, cap in gallery.caps if when > dropped and cap == 2)
    # Hysteresis as before: the 20 s wait, and the end of a 3 s judgement window.
    assert 20.0 <= back - dropped <= 23.1


def test_min_rate_stays_a_floor_however_still_the_picture(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    show = load_show(edited_show(tmp_path, "morph = 5.0", "morph = 0.0"))  # hard cuts only
    gallery = Gallery(show, rate=3.0)
    assert gallery.conductor.motion() == 0.0
    with caplog.at_level(logging.INFO, logger="installation.engine.quality"):
        gallery.run(4.0)
    assert gallery.quality.cap == 1
    assert "3.0 frames/s with stage refine-256 (256 px) is below min_rate 4:" in caplog.text
    gallery = Gallery(show, rate=5.0)
    gallery.run(60.0)
    assert gallery.used == {2}


def test_the_old_rule_is_a_show_that_sets_min_rate(tmp_path: Path) -> None:
    show = load_show(edited_show(tmp_path, "min_rate = 4", "min_rate = 24"))
    gallery = Gallery(show, 8.0, QualityPolicy(min_rate=show.engine.min_rate))
    gallery.run(4.0)
    assert gallery.quality.cap == 1, "8 frames/s is below the floor of 24, slow morph or not"


def test_a_frozen_picture_does_not_move() -> None:
    gallery = Gallery(load_show(None), rate=8.0)
    gallery.conductor.set_pace(speed=16.0)
    gallery.conductor.freeze(True)
    assert gallery.conductor.motion() == 0.0


def test_easings_peak_where_their_formulas_say() -> None:
    assert peak_slope("linear") == pytest.approx(1.0)
    assert peak_slope("smoothstep") == pytest.approx(1.5, rel=1e-4)
    assert peak_slope("smootherstep") == pytest.approx(1.875, rel=1e-4)
    assert peak_slope("cosine") == pytest.approx(3.14159 / 2, rel=1e-4)


def test_show_files_set_max_step_and_refuse_a_bad_one(tmp_path: Path) -> None:
    show = load_show(None)
    assert (show.engine.max_step, show.engine.min_rate) == (0.05, 4.0)
    changed = load_show(edited_show(tmp_path, "max_step = 0.05", "max_step = 0.2"))
    assert changed.engine.max_step == 0.2
    path = edited_show(tmp_path, "max_step = 0.05", "max_step = 0")
    with pytest.raises(UserError) as caught:
        load_show(path)
    line = next(
        i for i, text in enumerate(path.read_text().splitlines(), 1) if "max_step =" in text
    )
    assert str(caught.value) == (
        f"{path}:{line}: engine.max_step: expected more than 0 and at most 1, got 0"
    )


def test_a_cut_shows_within_two_frames_while_quality_judges_every_frame() -> None:
    bundle, conductor = brisk_conductor(hold=0.0, morph=0.5)
    conductor.set_pace(speed=16.0)  # fast enough that every judgement drops or retries
    pipeline = Pipeline.load(bundle, OnnxRuntimeBackend(CPU, threads=1))
    now = [3.0]
    conductor.start(lambda: now[0])
    queue = FrameQueue(16)
    conductor.on_cut(queue.invalidate)
    policy = QualityPolicy(window=0.0, min_frames=1, first_retry=0.0)
    quality = AdaptiveQuality(LABELS, policy, motion=conductor.motion)
    accepted: list[tuple[int, Frame]] = []  # (frames generated when put, frame)
    put = queue.put

    def noting(frames: list[Frame], epoch: int | None = None) -> bool:
        ok = put(frames, epoch)
        if ok and epoch == 1:
            accepted.extend((worker.generated, frame) for frame in frames)
        return ok

    queue.put = noting  # type: ignore[method-assign]
    worker = InferenceWorker(
        pipeline, conductor.plans_at, queue, lambda: now[0], 60, 0.1, itertools.count(), quality
    )
    worker.start()
    try:
        wait_for(lambda: worker.generated >= 2)  # as far ahead as it goes: the clock stands
        before = worker.generated
        conductor.next_face(0.0)  # a cut: the queue is emptied and the worker starts over
        wait_for(lambda: bool(accepted))
    finally:
        worker.stop()
    generated, first = accepted[0]
    assert generated - before <= 1, "at most the frame under way is lost to the cut"
    pick = queue.pick(now[0])
    assert pick is not None and pick.a is first, "the next display tick shows the cut"


def wait_for(condition: Callable[[], bool], limit: float = 60.0) -> None:
    """Poll ``condition`` until it holds; the limit only guards against a hang."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "the worker made no progress"
        threading.Event().wait(0.005)


def test_a_slow_pace_spaces_frames_out() -> None:
    pace = [0.3]
    quality = AdaptiveQuality(LABELS, motion=lambda: pace[0])
    assert quality.spacing(60.0) == 8, "7.5 frames/s: 1.25 times the 6 a 5 s morph needs"
    assert quality.spacing(30.0) == 4
    pace[0] = 1.2
    assert quality.spacing(60.0) == 2
    pace[0] = 5.0
    assert quality.spacing(60.0) == 1
    assert AdaptiveQuality(LABELS).spacing(60.0) == 12, "the floor: 5 frames/s"
    assert AdaptiveQuality(LABELS, adaptive=False).spacing(60.0) == 1


def test_the_worker_makes_a_frame_every_spacing_steps() -> None:
    bundle, conductor = brisk_conductor(hold=3.0, morph=5.0)
    pipeline = Pipeline.load(bundle, OnnxRuntimeBackend(CPU, threads=1))
    now = [3.0]
    conductor.start(lambda: now[0])
    queue = FrameQueue(16)
    times: list[float] = []
    put = queue.put

    def noting(frames: list[Frame], epoch: int | None = None) -> bool:
        times.extend(frame.t for frame in frames)
        return put(frames, epoch)

    queue.put = noting  # type: ignore[method-assign]
    quality = AdaptiveQuality(LABELS, motion=conductor.motion)
    worker = InferenceWorker(
        pipeline, conductor.plans_at, queue, lambda: now[0], 60, 0.5, itertools.count(), quality
    )
    worker.start()
    try:
        wait_for(lambda: worker.generated >= 3)  # the clock stands: it stops at the lead
    finally:
        worker.stop()
    steps = [round((b - a) * 60) for a, b in itertools.pairwise(times)]
    assert min(steps) == 8, steps  # 7.5 frames/s: a 5 s morph needs 6, with 1.25 headroom
    assert all(step >= 8 for step in steps), steps
