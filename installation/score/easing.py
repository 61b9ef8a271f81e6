"""Easing curves that shape how a morph speeds up and slows down.

A morph between two faces is a walk from 0 to 1. Walking at constant speed (``linear``)
makes every face start and stop changing with a visible jolt; the other curves start and
end with zero slope, so a held face melts into motion and settles again without a kink.

Every curve maps 0..1 onto 0..1, never decreases, gives exactly 0 at 0 and exactly 1 at 1
(so a finished morph lands bit-for-bit on the next face), and clamps inputs outside 0..1.
They accept a Python float or a numpy array and work element-wise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import numpy as np

from installation.errors import UserError

Value: TypeAlias = float | np.ndarray
Easing: TypeAlias = Callable[[Value], Value]


def linear(x: Value) -> Value:
    """Constant speed: the reference curve, and the right one for a deliberately mechanical look."""
    return np.clip(x, 0.0, 1.0)


def _mirrored(half: Callable[[np.ndarray], np.ndarray], x: Value) -> Value:
    """Evaluate a curve with f(1 - x) = 1 - f(x) from its lower half only.

    Near x = 1 these curves are almost flat, and evaluating them there directly lets rounding
    make the result dip by an ulp, so they would not be monotonic in floating point. Near 0
    the values are tiny and accurate, so the upper half is computed as 1 - f(1 - x), where
    1 - x is exact; this also makes f(1) exactly 1.
    """
    x = np.clip(x, 0.0, 1.0)
    lower = half(np.minimum(x, 1.0 - x))
    return np.where(x <= 0.5, lower, 1.0 - lower)[()]


def _smoothstep_half(x: np.ndarray) -> np.ndarray:
    return x * x * (3.0 - 2.0 * x)


def _smootherstep_half(x: np.ndarray) -> np.ndarray:
    return x * x * x * (x * (6.0 * x - 15.0) + 10.0)


def _cosine_half(x: np.ndarray) -> np.ndarray:
    return np.sin(0.5 * np.pi * x) ** 2


def smoothstep(x: Value) -> Value:
    """Cubic 3x^2 - 2x^3: zero slope at both ends, peak slope 1.5 in the middle."""
    return _mirrored(_smoothstep_half, x)


def smootherstep(x: Value) -> Value:
    """Quintic 6x^5 - 15x^4 + 10x^3: also zero curvature at the ends, so even the acceleration
    starts and stops softly; peak slope 1.875, so the middle moves faster to compensate."""
    return _mirrored(_smootherstep_half, x)


def cosine(x: Value) -> Value:
    """Sinusoidal in-out (1 - cos(pi x)) / 2: close to smoothstep, peak slope pi/2.

    Written as sin^2(pi x / 2) on the lower half, which is the same curve without the
    cancellation that 1 - cos suffers near 0.
    """
    return _mirrored(_cosine_half, x)


EASINGS: dict[str, Easing] = {
    "linear": linear,
    "smoothstep": smoothstep,
    "smootherstep": smootherstep,
    "cosine": cosine,
}


def get_easing(name: str) -> Easing:
    """The curve called ``name``; an unknown name is a show-file mistake, so it raises
    ``UserError`` listing the names that would have worked."""
    try:
        return EASINGS[name]
    except KeyError:
        valid = ", ".join(sorted(EASINGS))
        raise UserError(f"unknown easing {name!r}; valid easings are: {valid}") from None
