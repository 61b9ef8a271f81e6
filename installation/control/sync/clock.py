"""Show time shared by every PC of a room: the disciplined wall clock minus a shared epoch.

A show without ``[sync]`` plays on the monotonic ``installation.loop.ShowClock``. PCs in
lockstep cannot share a monotonic clock, but chrony keeps their wall clocks within a
millisecond or so of each other; if every PC counts show time from the same epoch on that
clock, frame k is on every screen at the same moment without any message per frame. The
leader's epoch (the wall time it started) travels in its heartbeat and a follower adopts it.

The test hook ``INSTALLATION_CLOCK_OFFSET`` (seconds) adds a fixed error to this clock, as an
imperfectly disciplined PC would have: several instances on one machine then disagree the way
a room's PCs do.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping

from installation.errors import UserError

OFFSET_ENV = "INSTALLATION_CLOCK_OFFSET"


class SharedClock:
    """Show time in seconds: ``wall() - epoch``; callable like ``ShowClock``.

    ``epoch`` defaults to the wall time now (show time starts at 0), ``offset`` to the test
    hook's value (0 without it). ``adopt`` moves the epoch: show time jumps, and the caller
    drops what it made for the old times. One float is replaced whole, so readers on other
    threads need no lock.
    """

    def __init__(self, epoch: float | None = None, offset: float | None = None) -> None:
        self.offset = offset_from_environment() if offset is None else offset
        self.epoch = self.wall() if epoch is None else epoch

    def __call__(self) -> float:
        return self.wall() - self.epoch

    def wall(self) -> float:
        """This PC's idea of the wall time, in seconds since 1970 (with the injected offset)."""
        return time.time() + self.offset

    def adopt(self, epoch: float) -> None:
        """Count show time from ``epoch`` (wall-clock seconds) from now on: the leader's."""
        self.epoch = epoch


def offset_from_environment(environ: Mapping[str, str] = os.environ) -> float:
    """The test hook's clock error in seconds, 0 where it is not set."""
    text = environ.get(OFFSET_ENV, "").strip()
    if not text:
        return 0.0
    try:
        offset = float(text)
    except ValueError:
        offset = math.nan
    if not math.isfinite(offset):
        raise UserError(f"{OFFSET_ENV}={text}: expected a number of seconds, such as 0.02")
    return offset
