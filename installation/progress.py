"""A one-line progress bar on stderr for long commands (render, bench, training): how far,
how fast, and how long is left.

Only drawn when stderr is a terminal; under systemd or in CI it prints nothing per step,
so logs do not fill with carriage returns.
"""

from __future__ import annotations

import sys
import time


class Progress:
    """``unit`` names what is counted, for the rate (``frames`` gives ``24.0 frames/s``)."""

    def __init__(self, label: str, total: int, unit: str = "steps") -> None:
        self.label = label
        self.total = max(1, total)
        self.unit = unit
        self.done = 0
        self._started = time.perf_counter()
        self._live = sys.stderr.isatty()

    def advance(self, steps: int = 1, note: str = "") -> None:
        """Count ``steps`` more done; ``note`` (running losses, say) follows the bar."""
        self.done += steps
        if self._live:
            width = 30
            filled = width * min(self.done, self.total) // self.total
            elapsed = time.perf_counter() - self._started
            rate = self.done / elapsed if elapsed > 0 else 0.0
            left = max(0, self.total - self.done) / rate if rate > 0 else 0.0
            sys.stderr.write(
                f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                f"{self.done}/{self.total} {rate:.1f} {self.unit}/s, {_clock(elapsed)} gone, "
                f"ETA {_clock(left)} {note}"
            )
            sys.stderr.flush()

    def finish(self) -> None:
        if self._live:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _clock(seconds: float) -> str:
    """``1:02:03`` or ``2:03``: whole seconds, as people read durations."""
    minutes, whole = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{whole:02d}" if hours else f"{minutes}:{whole:02d}"
