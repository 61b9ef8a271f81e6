"""The resampling filters of the GL presenter, as tables of weights made on the host.

Every output pixel of a row (or column) of the upscaled picture uses the same few weights,
so they are computed here once per picture size, rather than with two sines per tap for
every pixel on the GPU: that is what keeps Lanczos affordable where GL runs on the CPU.

The filters follow their published definitions: the Lanczos window, sinc(x) sinc(x/3) for
|x| < 3 (Duchon 1979), and the Mitchell-Netravali cubic (1988) with B = 0, C = 1/2, which is
Catmull-Rom. Pixel centres are aligned, taps beyond an edge repeat the edge pixel, and the
weights of a pixel sum to one. When the picture is made smaller the kernel is widened by the
ratio, so it still averages away what the screen cannot show.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def lanczos3(x: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) < 3, np.sinc(x) * np.sinc(x / 3), 0.0)


def catmull_rom(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    near = (1.5 * x - 2.5) * x * x + 1
    far = ((-0.5 * x + 2.5) * x - 4) * x + 2
    return np.where(x < 1, near, np.where(x < 2, far, 0.0))


#: The table-driven scalers of ``[display] scaler``, with their radius in source pixels;
#: "linear" is the GPU's own bilinear filter and needs no table.
KERNELS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], float]] = {
    "lanczos": (lanczos3, 3.0),
    "bicubic": (catmull_rom, 2.0),
}


def weight_table(scaler: str, count: int, size: int) -> np.ndarray:
    """The weights that resample ``count`` source pixels to ``size`` output pixels along one
    axis, as a float32 ``size`` x texels x 4 array, one row per output pixel: texel 0 holds
    the first source pixel read, the source pixel at or before the output pixel's centre,
    and 1 where the picture is made larger (the shaders then clamp to that pixel and the
    next, against ringing); the weights follow, four to a texel, zero beyond the last tap."""
    kernel, radius = KERNELS[scaler]
    scale = size / count
    stretch = max(1.0, 1.0 / scale)
    centres = (np.arange(size) + 0.5) / scale - 0.5
    first = np.floor(centres - radius * stretch).astype(np.int64) + 1
    last = np.floor(centres + radius * stretch).astype(np.int64)
    taps = int((last - first).max()) + 1
    texels = -(-taps // 4)
    index = first[:, None] + np.arange(4 * texels)[None, :]
    weights = np.where(index <= last[:, None], kernel((index - centres[:, None]) / stretch), 0.0)
    weights /= weights.sum(axis=1, keepdims=True)
    table = np.zeros((size, 1 + texels, 4), dtype=np.float32)
    table[:, 0, 0] = first
    table[:, 0, 1] = np.floor(centres)
    table[:, 0, 2] = 1.0 if scale >= 1.0 else 0.0
    table[:, 1:] = weights.reshape(size, texels, 4)
    return table
