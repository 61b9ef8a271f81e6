"""Blue noise for dithering the 8-bit output, made at start-up by void-and-cluster.

A slow fade to black passes through levels that 8 bits cannot tell apart, so the screen
shows bands. Adding less than one step of noise before the output is rounded turns the bands
into grain finer than the eye resolves from a gallery distance. Blue noise (no low
frequencies) looks finer than white noise at the same strength, and unlike an ordered Bayer
matrix it has no cross-hatch for the eye to find in dark, flat areas, where faces fade out.

The texture is ranked by Ulichney's void-and-cluster method (1993): points are placed one at
a time in the largest void, the place where a Gaussian-weighted sum of the points already
placed (on a torus, so the tile repeats without seams) is least, and each pixel's rank is
the order in which it was filled. The initial pattern is swapped until its tightest cluster
is its largest void, as in the paper.
"""

from __future__ import annotations

import numpy as np

#: Width of the Gaussian that measures how crowded a place is, in pixels (Ulichney: 1.5).
SIGMA = 1.5
#: Share of pixels set in the initial random pattern.
INITIAL_SHARE = 0.1


def _energy_kernel(size: int) -> np.ndarray:
    """A Gaussian centred on pixel (0, 0) of a ``size`` x ``size`` torus."""
    offsets = np.minimum(np.arange(size), size - np.arange(size)).astype(np.float64)
    squared = offsets[:, None] ** 2 + offsets[None, :] ** 2
    return np.exp(-squared / (2 * SIGMA**2))


def blue_noise(size: int = 64, seed: int = 0) -> np.ndarray:
    """A ``size`` x ``size`` float32 array holding each of ``(rank + 0.5) / size**2`` once,
    arranged as blue noise; the same ``seed`` gives the same array on every machine."""
    count = size * size
    kernel = _energy_kernel(size)
    rng = np.random.default_rng(seed)
    placed = np.zeros((size, size), dtype=bool)
    placed.flat[rng.choice(count, max(2, int(count * INITIAL_SHARE)), replace=False)] = True
    energy = np.real(np.fft.ifft2(np.fft.fft2(placed) * np.fft.fft2(kernel)))

    def shifted(index: int) -> np.ndarray:
        return np.roll(kernel, divmod(index, size), axis=(0, 1))

    # Initial pattern: move the tightest cluster into the largest void until it is both.
    while True:
        cluster = int(np.argmax(np.where(placed, energy, -np.inf)))
        placed.flat[cluster] = False
        energy -= shifted(cluster)
        void = int(np.argmin(np.where(placed, np.inf, energy)))
        placed.flat[void] = True
        energy += shifted(void)
        if void == cluster:
            break
    ranks = np.empty(count, dtype=np.int64)
    # Phase 1: the initial points, ranked by taking the tightest cluster away each time.
    ones = int(placed.sum())
    remaining = placed.copy()
    removed_energy = energy.copy()
    for rank in range(ones - 1, -1, -1):
        cluster = int(np.argmax(np.where(remaining, removed_energy, -np.inf)))
        remaining.flat[cluster] = False
        removed_energy -= shifted(cluster)
        ranks[cluster] = rank
    # Phases 2 and 3: the rest, each into the largest void left.
    for rank in range(ones, count):
        void = int(np.argmin(np.where(placed, np.inf, energy)))
        placed.flat[void] = True
        energy += shifted(void)
        ranks[void] = rank
    return ((ranks.reshape(size, size) + 0.5) / count).astype(np.float32)
