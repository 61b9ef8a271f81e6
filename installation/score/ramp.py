"""A value that glides from one level to another: how live parameter changes stay smooth.

A lighting desk's fader or an audio analyser sends a new target at any moment; jumping to it
would make the face jump. A ``Ramp`` is the linear path from the value at the moment of the
change to the new target, as a pure function of time, so the frames made ahead of the screen
and the frames made later agree about it, and a frame is the same whenever it is computed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Ramp:
    """``before`` until ``start``, then linearly to ``after`` over ``seconds``, then ``after``."""

    before: float
    after: float
    start: float = 0.0
    seconds: float = 0.0

    @classmethod
    def constant(cls, value: float) -> Ramp:
        return cls(value, value)

    @property
    def target(self) -> float:
        return self.after

    def at(self, t: float) -> float:
        if t < self.start:
            return self.before
        if self.seconds <= 0.0 or t >= self.start + self.seconds:
            return self.after
        return self.before + (self.after - self.before) * (t - self.start) / self.seconds

    def to(self, target: float, t: float, seconds: float) -> Ramp:
        """A new ramp from this ramp's value at ``t`` to ``target``, reached ``seconds`` later."""
        return Ramp(self.at(t), target, t, seconds)

    def integral(self, t0: float, t1: float) -> float:
        """The area under the ramp from ``t0`` to ``t1`` (negative when ``t1 < t0``).

        Exact for the piecewise-linear shape, so a position integrated from a speed ramp is
        the same for any split of the interval: frames do not drift apart by rounding paths.
        """
        if t1 < t0:
            return -self.integral(t1, t0)
        end = self.start + max(self.seconds, 0.0)
        total = 0.0
        # Before the ramp starts and after it ends the value is constant.
        if t0 < self.start:
            total += self.before * (min(t1, self.start) - t0)
        if t1 > end:
            total += self.after * (t1 - max(t0, end))
        low, high = max(t0, self.start), min(t1, end)
        if high > low:
            total += 0.5 * (self.at(low) + self.at(high)) * (high - low)
        return total
