"""The sRGB transfer curve in NumPy, as the references of the GL presenter's tests and the
picture benchmark compute it: written here from the standard's formulas, not taken from the
presenter, so that a mistake there cannot hide in its own reference."""

from __future__ import annotations

import numpy as np


def to_linear(srgb: np.ndarray) -> np.ndarray:
    """8-bit sRGB values (0..255) in linear light (0..1), as float64."""
    c = np.asarray(srgb, dtype=np.float64) / 255
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def to_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear light, clipped to 0..1, as sRGB floats on the 0..255 scale (unrounded)."""
    c = np.clip(linear, 0.0, 1.0)
    return 255 * np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)
