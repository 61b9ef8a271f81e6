"""Adaptive quality: the last refinement stage is dropped while generation is too slow and
taken back when there is headroom, with backoff so the picture does not flap. First the rules
on a simulated clock, then the real worker with an injected slow stage."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from conftest import brisk_conductor
from slow import SlowStage

from installation.display import HeadlessDisplay
from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.frames import Frame
from installation.engine.pipeline import Pipeline, Stage
from installation.engine.quality import AdaptiveQuality, QualityPolicy
from installation.player import play

LABELS = ["generator (64 px)", "refine-256 (256 px)"]
POLICY = QualityPolicy(min_rate=20.0, first_retry=20.0, max_retry=80.0, settle=60.0)


class Simulation:
    """Frames generated back to back on a simulated clock, each taking ``cost(stages)``."""

    def __init__(self, policy: QualityPolicy = POLICY, adaptive: bool = True) -> None:
        self.now = 0.0
        self.quality = AdaptiveQuality(LABELS, policy, adaptive, clock=lambda: self.now)
        self.slow_refine = True
        self.caps: list[tuple[float, int]] = []  # (when, cap) at every change

    def cost(self, stages: int) -> float:
        """100 frames/s for the generator; the refinement stage makes it 10 while slow."""
        return 0.1 if stages == 2 and self.slow_refine else 0.01

    def run(self, seconds: float) -> None:
        end = self.now + seconds
        while self.now < end:
            stages = self.quality.cap
            self.now += self.cost(stages)
            self.quality.record(self.cost(stages), stages)
            if not self.caps or self.caps[-1][1] != self.quality.cap:
                self.caps.append((self.now, self.quality.cap))


def test_a_slow_stage_is_dropped_after_a_window_of_frames_not_sooner(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim = Simulation()
    with caplog.at_level(logging.INFO):
        sim.run(2.9)
        assert sim.quality.cap == 2
        sim.run(0.3)
    assert sim.quality.cap == 1
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "quality: 10.0 frames/s with stage refine-256 (256 px) is below min_rate 20: dropping "
        "it, frames now end at generator (64 px); trying it again in 20 s at the earliest"
    )


def test_a_dropped_stage_comes_back_after_the_wait_when_there_is_headroom(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim = Simulation()
    sim.run(3.1)
    dropped_at = sim.caps[-1][0]
    sim.slow_refine = False
    with caplog.at_level(logging.INFO):
        sim.run(19.0)
        assert sim.quality.cap == 1, "not before the wait is over"
        sim.run(4.0)
    assert sim.quality.cap == 2
    assert 20.0 <= sim.caps[-1][0] - dropped_at <= 23.1
    assert caplog.records[-1].getMessage() == (
        "quality: 100.0 frames/s without stage refine-256 (256 px) leaves headroom; trying it again"
    )


def test_no_retry_without_headroom() -> None:
    sim = Simulation()
    sim.run(3.1)
    sim.cost = lambda stages: 1 / 22  # type: ignore[method-assign]  # above 20, below 1.25 x 20
    sim.run(120.0)
    assert sim.quality.cap == 1
    assert len(sim.caps) == 2


def test_failed_retries_wait_longer_each_time_and_a_stage_that_holds_resets_the_wait() -> None:
    sim = Simulation()
    sim.run(300.0)
    drops = [when for when, cap in sim.caps if cap == 1]
    retries = [when for when, cap in sim.caps[1:] if cap == 2]
    waits = [retry - drop for drop, retry in zip(drops, retries, strict=False)]
    # Doubled up to max_retry; a retry waits for the end of a 3 s judgement window too.
    for wait, delay in zip(waits, [20, 40, 80, 80], strict=False):
        assert delay <= wait <= delay + 3.2, waits
    sim.slow_refine = False
    sim.run(200.0)  # the next retry succeeds and holds for more than ``settle``
    assert sim.quality.cap == 2
    mark = len(sim.caps)
    sim.slow_refine = True
    sim.run(30.0)
    (drop, low), (retry, high) = sim.caps[mark : mark + 2]
    assert (low, high) == (1, 2)
    assert 20 <= retry - drop <= 23.2, "the wait is back to 20 s"


def test_pinned_quality_never_changes(caplog: pytest.LogCaptureFixture) -> None:
    sim = Simulation(adaptive=False)
    with caplog.at_level(logging.INFO):
        sim.run(60.0)
    assert sim.quality.cap == 2
    assert sim.caps == [(pytest.approx(0.1), 2)]
    assert not caplog.records


def test_frames_a_scene_stops_early_say_nothing_about_the_cap() -> None:
    now = [0.0]
    quality = AdaptiveQuality(LABELS, POLICY, clock=lambda: now[0])
    for _ in range(100):
        now[0] += 0.1
        quality.record(0.1, stages=1)  # slow, but the scene asked for one stage
    assert quality.cap == 2


def test_reset_brings_every_stage_back() -> None:
    sim = Simulation()
    sim.run(3.1)
    assert sim.quality.cap == 1
    sim.quality.reset()
    assert sim.quality.cap == 2


class SizeDisplay(HeadlessDisplay):
    """The real headless display, noting the width of the newest frame in each picture."""

    def __init__(self) -> None:
        super().__init__((64, 36))
        self.widths: list[tuple[float, int]] = []

    def present(self, a: Frame, b: Frame | None, weight: float, brightness: float = 1.0) -> None:
        super().present(a, b, weight, brightness)
        self.widths.append((time.monotonic(), (b or a).image.shape[1]))


def test_the_worker_drops_an_injected_slow_stage_and_takes_it_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bundle, conductor = brisk_conductor(hold=0.2, morph=0.5)
    pipeline = Pipeline.load(bundle, OnnxRuntimeBackend(CPU))
    refine = pipeline.stages[1]
    slow = SlowStage(refine.model, delay=0.3)  # about 3 frames/s with the refinement stage
    pipeline.stages[1] = Stage(refine.spec, slow)
    # Far below what even a busy CI machine makes once the delay is gone.
    policy = QualityPolicy(min_rate=6.0, window=0.5, min_frames=2, first_retry=1.0)
    quality = AdaptiveQuality(LABELS, policy)
    display = SizeDisplay()
    display.open("test")
    started = time.monotonic()

    def heal() -> None:
        slow.delay = 0.0

    threading.Timer(3.0, heal).start()
    try:
        with caplog.at_level(logging.INFO, logger="installation.engine.quality"):
            play(display, pipeline, conductor, 60, 0.1, 7.0, quality=quality)
    finally:
        display.close()
    widths = [(at - started, width) for at, width in display.widths]
    assert any(width == 64 for at, width in widths if at < 3.0), "dropped while slow"
    assert widths[-1][1] == 256 and quality.cap == 2, "taken back once fast again"
    messages = [r.getMessage() for r in caplog.records]
    assert any("dropping it" in m for m in messages)
    assert "trying it again" in messages[-1]
