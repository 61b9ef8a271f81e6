"""The show loop: paces the display, asks the frame queue for "now", presents, handles keys.

It never waits on inference: each tick it takes whatever frames exist around the current
show time (blending two, or holding the newest when generation is behind, or what is on
screen while the worker starts over after a cut), asks the conductor how bright the picture
is, and sleeps only until the next tick. Timing statistics are kept in bounded form,
because the loop runs for weeks.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from installation.display import Display, DisplayLost
from installation.display.base import Action
from installation.engine.frames import FrameQueue, Pick
from installation.engine.ladder import BackendLadder
from installation.engine.pipeline import Pipeline
from installation.engine.quality import AdaptiveQuality
from installation.engine.supervisor import WorkerSupervisor
from installation.engine.worker import InferenceWorker
from installation.score.conductor import Conductor
from installation.service.lifecycle import Service

log = logging.getLogger(__name__)

INTERVAL_WINDOW = 4096


@dataclass
class LoopStats:
    """How well the display kept its rate: ``late`` counts ticks over twice their budget."""

    budget: float
    shown: int = 0
    blended: int = 0
    held: int = 0
    late: int = 0
    max_interval: float = 0.0
    intervals: deque[float] = field(default_factory=lambda: deque(maxlen=INTERVAL_WINDOW))

    def record(self, interval: float) -> None:
        self.intervals.append(interval)
        self.max_interval = max(self.max_interval, interval)
        if interval > 2 * self.budget:
            self.late += 1

    @property
    def median_interval(self) -> float:
        return float(np.median(self.intervals)) if self.intervals else 0.0


@dataclass
class RunResult:
    stats: LoopStats
    seconds: float
    generated: int
    skipped: int
    error: BaseException | None
    restarts: int = 0
    #: Why the display went away under the show, when that is what ended it.
    display_lost: str | None = None


class ShowClock:
    """Show time in seconds since the clock was started, from the monotonic clock."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self._start


def play(
    display: Display,
    engine: Pipeline | BackendLadder,
    conductor: Conductor,
    fps: float,
    lead: float,
    duration: float | None = None,
    service: Service | None = None,
    quality: AdaptiveQuality | None = None,
) -> RunResult:
    """Run the show on an open display until quit, ``duration`` seconds, the ``service``
    finishing a stop (SIGTERM), the supervisor giving up on the inference worker, or the
    display going away (logged as an error while the service still records errors).

    ``engine`` is a started ladder (inference drops to its next backend when one fails) or
    one pipeline; ``quality`` caps the stages frames run (None: all the scenes ask for).
    """
    ladder = engine if isinstance(engine, BackendLadder) else BackendLadder.holding(engine)

    def fall(error: BaseException) -> bool:
        moved = ladder.fall(error)
        if moved and quality is not None:
            quality.reset()
        return moved

    clock = ShowClock()
    capacity = max(4, int(lead * fps) + 4)
    queue = FrameQueue(capacity)
    conductor.start(clock)
    conductor.on_cut(queue.invalidate)
    serials = itertools.count()
    worker = WorkerSupervisor(
        lambda: InferenceWorker(
            ladder.pipeline, conductor.plans_at, queue, clock, fps, lead, serials, quality
        ),
        fallback=fall,
    )
    stats = LoopStats(budget=1.0 / fps)
    service = service or Service()
    worker.start()
    lost: str | None = None
    try:
        service.start(stats, worker)
        _loop(display, queue, conductor, worker, clock, stats, duration, service)
    except DisplayLost as exc:
        lost = str(exc)
        log.error("display lost: %s", lost)
    finally:
        service.stop()
        worker.stop()
    return RunResult(
        stats, clock(), worker.generated, worker.skipped, worker.error, worker.restarts, lost
    )


def _loop(
    display: Display,
    queue: FrameQueue,
    conductor: Conductor,
    worker: WorkerSupervisor,
    clock: ShowClock,
    stats: LoopStats,
    duration: float | None,
    service: Service,
) -> None:
    budget = stats.budget
    deadline = time.perf_counter()
    previous = deadline
    held: Pick | None = None
    while worker.error is None and not service.finished:
        now = clock()
        pick = queue.pick(now) or held
        brightness = conductor.tick(now) * service.level()
        if pick is not None:
            held = pick
            display.present(pick.a, pick.b, pick.weight, brightness)
            stats.shown += 1
            if pick.b is None:
                stats.held += 1
            else:
                stats.blended += 1
        if Action.QUIT in display.poll() or (duration is not None and now >= duration):
            return
        deadline += budget
        pause = deadline - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        elif pause < -budget:
            deadline = time.perf_counter()
        tick = time.perf_counter()
        if stats.shown > 1:  # the first present compiles shaders and uploads: not a steady tick
            stats.record(tick - previous)
        previous = tick
