"""Conversions between the image conventions stages use (value range and layout).

Every stage's manifest says how its output looks (e.g. NCHW in -1..1) and how a refinement
stage wants its input. Converting through one canonical form, NCHW floats with black at 0 and
white at 1, means any two conventions meet without a conversion written for each pair.
"""

from __future__ import annotations

import numpy as np


def to_unit(images: np.ndarray, layout: str, value_range: tuple[float, float]) -> np.ndarray:
    """A batch of images in ``layout``/``value_range`` as NCHW float32 in 0..1 (not clipped)."""
    low, high = value_range
    unit = (images.astype(np.float32, copy=False) - np.float32(low)) / np.float32(high - low)
    return unit if layout == "NCHW" else unit.transpose(0, 3, 1, 2)


def from_unit(unit: np.ndarray, layout: str, value_range: tuple[float, float]) -> np.ndarray:
    """NCHW 0..1 images in the convention a stage declares for its input, contiguous."""
    low, high = value_range
    scaled = unit * np.float32(high - low) + np.float32(low)
    return np.ascontiguousarray(scaled if layout == "NCHW" else scaled.transpose(0, 2, 3, 1))


def to_rgb8(unit: np.ndarray) -> np.ndarray:
    """NCHW 0..1 images as N x H x W x 3 uint8 for the screen, rounded and clipped.

    One colour plane at a time, through one plane of scratch: numpy's general transpose to
    HWC copies in inner loops three items long, and whole-batch temporaries are fresh memory
    the kernel must fault in; together they made this cost more than the GPU's work at 8
    frames of 256 px."""
    count, channels, height, width = unit.shape
    pixels = np.empty((count, height, width, channels), np.uint8)
    plane = np.empty((height, width), np.float32)
    for index in range(count):
        for channel in range(channels):
            np.multiply(unit[index, channel], np.float32(255.0), out=plane)
            plane += np.float32(0.5)
            np.clip(plane, 0.0, 255.0, out=plane)
            np.copyto(pixels[index, ..., channel], plane, casting="unsafe")
    return pixels
