"""Logging that a flood cannot turn into a flood of log lines.

Bad OSC input can arrive thousands of times a second; logging each would fill the journal
and cost more than ignoring the input. Each kind of problem is logged at once the first
time, then at most once per interval with the number of similar lines left out, so the
first example is always seen and the log stays readable for weeks. A value from the input is
logged ``clipped``, so one line stays one readable line whatever a sender puts in it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


def clipped(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (ending in ``...`` when cut): the repr
    escapes newlines and control characters, the cut bounds a 64 KB address to a glance."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class RateLimitedLog:
    """One line per ``kind`` per ``interval`` seconds; ``kind`` must come from a fixed set
    (never from the input), so the bookkeeping stays bounded."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, kind: str, message: str, *, exc_info: bool = False) -> None:
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        self._last[kind] = now
        left_out = self._suppressed.pop(kind, 0)
        if left_out:
            message += f" ({left_out} similar in the last {now - last:.0f} s not logged)"
        self.logger.warning("%s", message, exc_info=exc_info)
