"""The show loop: paces the display, asks the frame queue for "now", presents, handles keys.

It never waits on inference: each tick it takes whatever frames exist around the current
show time (blending two, or holding the newest when generation is behind, or what is on
screen while the worker starts over after a cut), asks the conductor how bright the picture
is, and sleeps only until the next tick. Timing statistics are kept in bounded form,
because the loop runs for weeks. The parts it reads are wired by installation.player.

PCs in lockstep (``[sync]``) play on a frame grid: show time is the same on every PC
(installation.control.sync.clock), and each tick presents frame k = floor(show time x fps) and
sleeps until line k + 1 of the grid, so every PC presents frame k during the same 1/fps of
its disciplined clock, without a message per frame.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from installation.display import Display
from installation.display.base import Action
from installation.engine.frames import FrameQueue, Pick
from installation.engine.supervisor import WorkerSupervisor
from installation.output.feed import ScreenFeed
from installation.output.trace import FrameTrace
from installation.score.conductor import Conductor
from installation.service.lifecycle import Service

INTERVAL_WINDOW = 4096
#: Seconds past a grid line a lockstep tick wakes: a wake a hair early would read the frame
#: it just presented again.
GRID_MARGIN = 0.0002


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
    blocks: a feed that falls behind drops its own frames. ``trace`` notes each tick for the
    lockstep tests (installation.output.trace).
    """

    def __init__(self) -> None:
        self.shown: tuple[Pick, float] | None = None
        self.feeds: tuple[ScreenFeed, ...] = ()
        self.trace: FrameTrace | None = None

    def show(self, pick: Pick, brightness: float, now: float) -> None:
        """The loop presented ``pick`` at ``brightness`` at show time ``now``."""
        self.shown = (pick, brightness)
        for feed in self.feeds:
            feed.offer(pick, brightness, now)
        if self.trace is not None:
            self.trace.record(now)

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
    clock: Callable[[], float],
    stats: LoopStats,
    duration: float | None,
    service: Service,
    tap: ScreenTap,
    grid: float | None = None,
) -> None:
    """Tick until quit, ``duration`` seconds of playing, the ``service`` finishing a stop,
    or the ``worker`` giving up; what each tick presents is left in ``tap``. ``grid`` (frames
    per second) puts the ticks on the lockstep frame grid of ``clock``. DisplayLost goes to
    the caller, which owns the display."""
    budget = stats.budget
    started = time.monotonic()
    deadline = time.perf_counter()
    previous = deadline
    held: Pick | None = None
    while worker.error is None and not service.finished:
        now = clock() if grid is None else math.floor(clock() * grid) / grid
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
        if Action.QUIT in display.poll():
            return
        if duration is not None and time.monotonic() - started >= duration:
            return
        if grid is None:
            deadline = _pace(deadline, budget)
        else:
            _sleep_to_line(now + 1.0 / grid, clock, budget)
        tick = time.perf_counter()
        if stats.shown > 1:  # the first present compiles shaders and uploads: not a steady tick
            stats.record(tick - previous)
        previous = tick


def _pace(deadline: float, budget: float) -> float:
    """Sleep until ``deadline`` + one ``budget``, the next tick's deadline, which it returns;
    a loop fallen more than a tick behind starts counting again from now."""
    deadline += budget
    pause = deadline - time.perf_counter()
    if pause > 0:
        time.sleep(pause)
    elif pause < -budget:
        deadline = time.perf_counter()
    return deadline


def _sleep_to_line(line: float, clock: Callable[[], float], budget: float) -> None:
    """Sleep until show time ``line``, the next line of the frame grid. Never more than a
    tick: when the clock jumps back (a follower adopting the leader's epoch), the loop
    presents on at once and finds its place on the grid at the next tick."""
    pause = line - clock() + GRID_MARGIN
    if pause > 0:
        time.sleep(min(pause, budget + GRID_MARGIN))
