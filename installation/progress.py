"""A one-line progress bar on stderr for long commands (render, bench).

Only drawn when stderr is a terminal; under systemd or in CI it prints nothing per step,
so logs do not fill with carriage returns.
"""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = max(1, total)
        self.done = 0
        self._started = time.perf_counter()
        self._live = sys.stderr.isatty()

    def advance(self, steps: int = 1, note: str = "") -> None:
        """Count ``steps`` more done; ``note`` (running losses, say) follows the bar."""
        self.done += steps
        if self._live:
            width = 30
            filled = width * self.done // self.total
            elapsed = time.perf_counter() - self._started
            sys.stderr.write(
                f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                f"{self.done}/{self.total} {elapsed:.1f}s {note}"
            )
            sys.stderr.flush()

    def finish(self) -> None:
        if self._live:
            sys.stderr.write("\n")
            sys.stderr.flush()
