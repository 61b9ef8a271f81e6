"""Breathing: a slow drift of the latent around the face being shown, swelling with sound.

A held face that does not move at all looks like a photograph; one that drifts a little looks
alive. The drift is a sum of a few slow sinusoids along random latent directions drawn from
the scene's seed, a pure function of time like the trajectory, so it never repeats visibly,
never accumulates, and the same show breathes the same way on every machine. Its depth
follows the ``/intensity`` a sound system sends and swells briefly on every ``/beat``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from installation.score.ramp import Ramp
from installation.score.trajectory import SPREAD, TIME_LIMIT

#: Cycles per second of the drift's components: slow as breathing at rest, and with
#: irrational ratios so that their sum never lines up into a visible loop.
FREQUENCIES = (0.071, 0.113, 0.167)
#: A stream number for the drift directions, apart from the keyframes' face indices.
_STREAM = 2**40
#: Seconds from a beat to the peak of its swell: quick enough to read as "on the beat",
#: slow enough that the face eases into it rather than jumps.
BEAT_RISE = 0.12
#: Beats older than this no longer move the picture (their swell is below 1e-5).
BEAT_MEMORY = 2.5
MAX_BEATS = 16
FULL_INTENSITY = Ramp.constant(1.0)


@lru_cache(maxsize=16)
def _directions(seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Drift directions (one row per frequency) and phases for a seed; cached because every
    frame of a scene needs the same ones, bounded because random scenes bring new seeds."""
    rng = np.random.default_rng([seed, _STREAM])
    directions = rng.standard_normal((len(FREQUENCIES), size))
    phases = rng.uniform(0.0, 2.0 * math.pi, len(FREQUENCIES))
    directions.flags.writeable = False
    return directions, phases


def drift(seed: int, size: int, distribution: str, t: float) -> np.ndarray:
    """The drift at scene time ``t``: float64 ``(size,)`` with components of about the
    latent distribution's spread, so ``depth * drift`` moves the latent by ``depth``.

    Time stands still beyond ``TIME_LIMIT`` either way, as the walk does, so that no time
    makes the sines' arguments overflow."""
    directions, phases = _directions(seed, size)
    t = min(max(t, -TIME_LIMIT), TIME_LIMIT)
    waves = np.sin(2.0 * math.pi * np.asarray(FREQUENCIES) * t + phases)
    # Sums of unit sinusoids have mean square len/2; scale back to unit spread.
    return (waves @ directions) * (SPREAD[distribution] / math.sqrt(len(FREQUENCIES) / 2.0))


def swell(age: float) -> float:
    """A beat's contribution ``age`` seconds after it: rises from 0 with zero slope, peaks at
    1 after ``BEAT_RISE`` seconds and decays, so a beat is felt at once yet never jolts."""
    if not 0.0 < age < BEAT_MEMORY:
        return 0.0
    x = age / BEAT_RISE
    return x * x * math.exp(2.0 * (1.0 - x))


@dataclass(frozen=True)
class Modulation:
    """What the sound system says: a smoothed ``intensity`` and the latest beats.

    Intensity starts at 1, so a scene with breathing breathes fully until a sound system
    starts sending; beats are kept only while they still move the picture, so this stays
    small however long the show runs.
    """

    intensity: Ramp = FULL_INTENSITY
    beats: tuple[tuple[float, float], ...] = ()

    def level(self, t: float) -> float:
        """Depth multiplier at time ``t``: intensity plus the swells of recent beats."""
        return self.intensity.at(t) + sum(s * swell(t - when) for when, s in self.beats)

    def with_beat(self, t: float, strength: float) -> Modulation:
        recent = tuple((when, s) for when, s in self.beats if t - when < BEAT_MEMORY)
        return Modulation(self.intensity, (*recent, (t, strength))[-MAX_BEATS:])
