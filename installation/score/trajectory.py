"""Where in latent space the show is at any instant: a pure function of seed and time.

The show runs unattended for weeks, may restart at any moment and may run on several
machines that must agree, so nothing here keeps state: the latent for show time ``t`` is
computed from ``(seed, t, parameters)`` alone. The shape follows StyleGAN3's
``gen_video.py``: seeds become keyframe latents, a time coordinate becomes (keyframe index,
fraction), and the two are combined by interpolation, each step a small pure function.
Unlike there, keyframes are drawn on demand instead of precomputed, because the index
grows without bound.

Timeline, one period of ``hold + morph`` seconds per face::

    | face 0 held | morph 0 -> 1 | face 1 held | morph 1 -> 2 | ...
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from installation.errors import UserError
from installation.score.easing import get_easing
from installation.score.scenes import check_pace

#: The latent distributions a bundle may name (``latent.distribution``: N(0, 1) or U(-1, 1)),
#: each with the standard deviation of one component, so that a depth (breathing) means the
#: same whichever a bundle uses. The workshop draws its checks from the same names.
SPREAD = {"normal": 1.0, "uniform": 1.0 / math.sqrt(3.0)}
DISTRIBUTIONS = tuple(SPREAD)
#: Seconds of walk after which the walk stops, on the face it has reached: over 30,000 years,
#: so no show gets there, yet small enough that the face index stays an exact integer (below
#: 2**53) at the shortest period a show may have, and that nothing computed from a time
#: (a speed's integral, a phase) overflows. Any finite time is thus a valid time.
TIME_LIMIT = 1e12

# Below this angle (radians) between two directions the slerp weights divide a tiny sine by
# a tiny sine; linear interpolation is then indistinguishable from slerp and stable.
_PARALLEL_ANGLE = 1e-6


def keyframe(seed: int, index: int, size: int, distribution: str = "normal") -> np.ndarray:
    """Latent number ``index`` of the show seeded ``seed``, float32 of shape ``(size,)``.

    The generator is seeded with ``[seed, index]`` so any keyframe is drawn directly, in
    constant time, however far into the show: after weeks the index is in the millions and
    replaying all earlier draws is not an option. Samples are drawn in float64 and rounded,
    so the result equals ``default_rng([seed, index]).standard_normal(size)`` cast to float32
    (or ``.uniform(-1, 1, size)`` for ``"uniform"``), which anyone can reproduce.

    ``default_rng`` is PCG64, whose stream numpy keeps stable across platforms and, by its
    compatibility policy, across versions except for announced bug fixes; that is enough for
    faces to stay the same between machines and upgrades, and the tests pin one vector.
    """
    if seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {seed}")
    if index < 0:
        raise ValueError(f"keyframe index must be non-negative, got {index}")
    if size < 1:
        raise UserError(f"latent size must be at least 1, got {size}")
    check_distribution(distribution)
    rng = np.random.default_rng([seed, index])
    normal = distribution == "normal"
    values = rng.standard_normal(size) if normal else rng.uniform(-1.0, 1.0, size)
    return values.astype(np.float32)


def check_distribution(distribution: str) -> None:
    """Refuse a distribution that is not one of ``DISTRIBUTIONS``."""
    if distribution not in DISTRIBUTIONS:
        valid = ", ".join(DISTRIBUTIONS)
        raise UserError(f"unknown distribution {distribution!r}; valid distributions are: {valid}")


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Interpolate from ``a`` (t = 0) to ``b`` (t = 1) along the sphere, norm changing linearly.

    Gaussian latents in many dimensions all lie near a shell of radius sqrt(size); a straight
    line between two of them cuts inside the shell, where the generator has seen few inputs
    and faces go bland halfway through a morph. So the direction follows the great circle
    (slerp of the unit vectors) and the norm goes linearly from |a| to |b|: the result has
    norm exactly ``(1 - t)|a| + t|b|`` (up to rounding) and equal norms stay equal.

    ``t`` is clamped to [0, 1]; at the ends ``a`` or ``b`` is returned exactly, so a morph
    lands bit-for-bit on the held face. Nearly parallel directions (and a zero vector, which
    has none) fall back to linear interpolation, which coincides with slerp there. Exactly
    opposite directions have no preferred great circle; they also interpolate linearly,
    passing through the origin, which random keyframes hit with probability zero. The linear
    form ``a + t (b - a)`` returns ``a`` unchanged when ``b`` equals it.

    Computed in float64; the result has the floating dtype of the inputs (at least float32).
    """
    dtype = np.result_type(a, b, np.float32)
    if t <= 0.0:
        return np.array(a, dtype=dtype)
    if t >= 1.0:
        return np.array(b, dtype=dtype)
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    norm_a = float(np.linalg.norm(a64))
    norm_b = float(np.linalg.norm(b64))
    if norm_a == 0.0 or norm_b == 0.0:
        return (a64 + t * (b64 - a64)).astype(dtype)
    unit_a = a64 / norm_a
    unit_b = b64 / norm_b
    # The angle from chord lengths stays accurate for tiny angles, where arccos(dot) does not.
    angle = 2.0 * math.atan2(
        float(np.linalg.norm(unit_a - unit_b)), float(np.linalg.norm(unit_a + unit_b))
    )
    if angle < _PARALLEL_ANGLE or math.pi - angle < _PARALLEL_ANGLE:
        return (a64 + t * (b64 - a64)).astype(dtype)
    sin_angle = math.sin(angle)
    direction = (
        math.sin((1.0 - t) * angle) / sin_angle * unit_a + math.sin(t * angle) / sin_angle * unit_b
    )
    return (((1.0 - t) * norm_a + t * norm_b) * direction).astype(dtype)


@dataclass(frozen=True)
class Trajectory:
    """The endless walk through latent space: hold a face, morph to the next, repeat.

    ``hold`` and ``morph`` are seconds. ``morph`` may be 0 for hard cuts as long as
    ``hold`` is positive; a zero ``hold`` gives a continuous morph; other values last at
    least a frame (``scenes.check_pace``). Invalid values raise ``UserError`` when the
    trajectory is made, not hours later when a frame needs them.
    """

    seed: int
    latent_size: int
    hold: float
    morph: float
    easing: str = "smoothstep"
    distribution: str = "normal"

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise UserError(f"seed must be a non-negative integer, got {self.seed}")
        if self.latent_size < 1:
            raise UserError(f"latent size must be at least 1, got {self.latent_size}")
        if not (math.isfinite(self.hold) and self.hold >= 0.0):
            raise UserError(f"hold must be a finite number of seconds >= 0, got {self.hold}")
        if not (math.isfinite(self.morph) and self.morph >= 0.0):
            raise UserError(f"morph must be a finite number of seconds >= 0, got {self.morph}")
        problem = check_pace(self.hold, self.morph)
        if problem:
            raise UserError(problem[1])
        get_easing(self.easing)
        check_distribution(self.distribution)

    @property
    def period(self) -> float:
        """Seconds from one face starting its hold to the next face starting its hold."""
        return self.hold + self.morph

    def position_at(self, t: float) -> tuple[int, float]:
        """Split show time into (face index, seconds into that face's period).

        float64 ``divmod`` is exact for positive operands (the remainder comes from fmod),
        so at t = 40 days the phase is as precise as t itself (about 5e-10 s) and frames stay
        continuous; a float32 clock would already step by a quarter second there. Times
        before 0 count as 0 and times after ``TIME_LIMIT`` as ``TIME_LIMIT``.
        """
        t = float(t)
        if not math.isfinite(t):
            raise ValueError(f"show time must be finite, got {t}")
        index, phase = divmod(min(max(t, 0.0), TIME_LIMIT), self.period)
        return int(index), phase

    def face_index_at(self, t: float) -> int:
        """The keyframe held at ``t``, or being morphed away from."""
        return self.position_at(t)[0]

    def latent_at(self, t: float) -> np.ndarray:
        """The latent to render at show time ``t`` seconds, float32 of shape ``(latent_size,)``.

        During a hold this is the keyframe itself, exactly. Negative ``t`` counts as 0, so a
        clock that starts slightly early shows the first face rather than failing.
        """
        index, phase = self.position_at(t)
        current = keyframe(self.seed, index, self.latent_size, self.distribution)
        if phase < self.hold:
            return current
        following = keyframe(self.seed, index + 1, self.latent_size, self.distribution)
        progress = (phase - self.hold) / self.morph
        return slerp(current, following, float(get_easing(self.easing)(progress)))

    def latents_at(self, times: Sequence[float]) -> np.ndarray:
        """``latent_at`` for each time, stacked as float32 ``(len(times), latent_size)``.

        For filling a generator batch. A plain loop: consecutive times usually need
        different keyframe pairs anyway, and each call costs microseconds.
        """
        latents = np.empty((len(times), self.latent_size), dtype=np.float32)
        for row, t in enumerate(times):
            latents[row] = self.latent_at(t)
        return latents
