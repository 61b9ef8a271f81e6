"""A master brightness that fades linearly, set by one thread and read by the display loop.

Closing time and shutdown both end in black, and neither may cut the picture off: the service
thread asks for a fade, the display loop reads the level on every tick. The fade is stored as
one immutable tuple that is replaced whole, so the reader never needs a lock and never sees
half of an update.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Dimmer:
    """Brightness from 0 (black) to 1 (full), moving towards a target at a set pace."""

    def __init__(self, level: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # (when the fade began, level then, target, seconds the whole fade takes)
        self._fade = (clock(), level, level, 0.0)

    def level(self) -> float:
        began, start, target, seconds = self._fade
        if seconds <= 0:
            return target
        progress = min(1.0, (self._clock() - began) / seconds)
        return start + (target - start) * progress

    @property
    def target(self) -> float:
        return self._fade[2]

    def settled(self) -> bool:
        """Whether the level has arrived at its target."""
        return self.level() == self.target

    def fade_to(self, target: float, seconds: float, since: float = 0.0) -> None:
        """Move from the current level to ``target`` at the pace of ``seconds`` for a whole
        fade between black and full; a fade from part of the way takes proportionally less,
        so a fade reversed halfway is as smooth as a whole one. ``since``: the fade began
        that many seconds ago (from the current level, which held meanwhile)."""
        if target == self.target:
            return
        current = self.level()
        self._fade = (self._clock() - since, current, target, seconds * abs(target - current))

    def cut_to(self, level: float) -> None:
        """Be at ``level`` now, without a fade (a stop that cannot wait)."""
        self._fade = (self._clock(), level, level, 0.0)
