"""The display's ticks as the benchmarks that load the show from outside measure them.

A benchmark that compares a quiet stretch with one under load (an OSC flood, twenty phones
polling the web page) needs when each frame reached the screen, not only the loop's totals:
``TickDisplay`` is the real headless display, noting the end of every present, and
``stretch`` sums up one stretch of them, so both stretches come from one run.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from installation.display import Action, HeadlessDisplay
from installation.engine.frames import Frame


class TickDisplay(HeadlessDisplay):
    """The real headless display at ``size``, noting when each present ended; ``quit`` ends
    the show loop at its next poll."""

    def __init__(self, size: tuple[int, int] = (320, 180)) -> None:
        super().__init__(size)
        self.ticks: list[float] = []
        self.quit = threading.Event()

    def present(self, a: Frame, b: Frame | None, weight: float, brightness: float = 1.0) -> None:
        super().present(a, b, weight, brightness)
        self.ticks.append(time.perf_counter())

    def poll(self) -> list[Action]:
        return [*super().poll(), *([Action.QUIT] if self.quit.is_set() else [])]

    def stretch(self, start: float, end: float, budget: float) -> dict[str, float]:
        """Frames per second and tick intervals between ``start`` and ``end``
        (``time.perf_counter``); a late tick took over twice ``budget``, as in LoopStats."""
        ticks = np.asarray([t for t in self.ticks if start <= t <= end])
        intervals = np.diff(ticks)
        return {
            "frames_per_s": float(len(ticks) / (end - start)),
            "median_tick_ms": float(np.median(intervals) * 1e3),
            "p99_tick_ms": float(np.percentile(intervals, 99) * 1e3),
            "longest_tick_ms": float(intervals.max() * 1e3),
            "late_ticks": int((intervals > 2 * budget).sum()),
        }
