"""The show loop: paces the display, asks the frame queue for "now", presents, handles keys.

It never waits on inference: each tick it takes whatever frames exist around the current
show time (blending two, or holding the newest when generation is behind, or what is on
screen while the worker starts over after a cut), asks the conductor how bright the picture
is, and sleeps only until the next tick. Timing statistics are kept in bounded form,
because the loop runs for weeks. The parts it reads are wired by installation.player.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from installation.display import Display
from installation.display.base import Action
from installation.engine.frames import FrameQueue, Pick
from installation.engine.supervisor import WorkerSupervisor
from installation.output.feed import ScreenFeed
from installation.score.conductor import Conductor
from installation.service.lifecycle import Service

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


class ScreenTap:
    """What the loop presented last, for the web page's thumbnail (installation.control.web),
    and each presented picture for the ``feeds`` (a recording, NDI; set before the loop).

    The loop replaces one immutable (Pick, brightness) tuple each tick: a reader on another
    thread always gets a pair that belongs together, and the loop never copies a pixel; the
    reader does any work the picture needs, on its own thread. A feed's ``offer`` never
    blocks: a feed that falls behind drops its own frames.
    """

    def __init__(self) -> None:
        self.shown: tuple[Pick, float] | None = None
        self.feeds: tuple[ScreenFeed, ...] = ()

    def show(self, pick: Pick, brightness: float, now: float) -> None:
        """The loop presented ``pick`` at ``brightness`` at show time ``now``."""
        self.shown = (pick, brightness)
        for feed in self.feeds:
            feed.offer(pick, brightness, now)

    def latest(self) -> tuple[Pick, float] | None:
        return self.shown


class ShowClock:
    """Show time in seconds since the clock was started, from the monotonic clock."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self._start


def run_loop(
    display: Display,
    queue: FrameQueue,
    conductor: Conductor,
    worker: WorkerSupervisor,
    clock: ShowClock,
    stats: LoopStats,
    duration: float | None,
    service: Service,
    tap: ScreenTap,
) -> None:
    """Tick until quit, ``duration`` seconds of show time, the ``service`` finishing a stop,
    or the ``worker`` giving up; what each tick presents is left in ``tap``. DisplayLost goes
    to the caller, which owns the display."""
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
            tap.show(pick, brightness, now)
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
