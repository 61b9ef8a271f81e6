"""Where each of several outputs' share of the picture goes: span slices of one wide canvas,
stream cells of a one-row mosaic, and the edge-blend ramps of overlapping projectors.

Kept apart from SDL so the arithmetic can be tested on its own, like layout.fit_rect: two
projectors must meet on the same pixel column and add up to one even brightness.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from installation.display.layout import fit_rect
from installation.engine.paint import mosaic_size

Rect = tuple[int, int, int, int]


def span_rects(
    sizes: Sequence[tuple[int, int]], overlaps: Sequence[int], source: tuple[int, int]
) -> list[Rect]:
    """Where the whole picture (``source`` width, height) lands in each span output's window.

    The outputs (``sizes``, in file order) side by side make one canvas, each overlapping the
    next by its ``overlaps`` pixels; the picture is fitted into the canvas as into one screen,
    and each output sees the canvas from its own left edge (outputs of different heights are
    centred on the canvas's height). Parts outside a window are clipped by the renderer.
    """
    left = [
        sum(w - o for (w, _), o in zip(sizes[:i], overlaps[:i], strict=True))
        for i in range(len(sizes))
    ]
    canvas_w = left[-1] + sizes[-1][0]
    canvas_h = max(h for _, h in sizes)
    x, y, w, h = fit_rect(*source, canvas_w, canvas_h)
    return [
        (x - ox, y - (canvas_h - oh) // 2, w, h) for ox, (_, oh) in zip(left, sizes, strict=True)
    ]


def stream_cell(size: tuple[int, int], columns: int, stream: int) -> Rect:
    """The rectangle of face stream ``stream`` in a one-row mosaic of ``columns`` cells of
    ``size`` (width, height) px in all, as installation.engine.paint.tile lays it out.

    The cell width is found from the mosaic's width, because adaptive quality changes the
    cells' size while the show plays; the first width whose mosaic fits is the one tile used.
    """
    width, height = size
    cell = width // columns
    while cell > 1 and mosaic_size((cell, height), 1, columns)[0] > width:
        cell -= 1
    gutter = (width - columns * cell) // max(1, columns - 1) if columns > 1 else 0
    return stream * (cell + gutter), 0, cell, height


def blend_ramp(width: int, gamma: float, rising: bool) -> np.ndarray:
    """One row of ``width`` grey levels (1 x width x 3 uint8) to multiply an overlap by.

    The light of a projector follows its pixel value to the power ``gamma``; the ramp makes
    the light (not the pixel value) fall linearly across the overlap, so this output's light
    and its neighbour's mirrored ramp add up to the picture's own at every column.
    """
    light = (np.arange(width, dtype=np.float64) + 0.5) / width
    if not rising:
        light = light[::-1]
    levels = np.round(light ** (1.0 / gamma) * 255.0).astype(np.uint8)
    return np.repeat(levels[None, :, None], 3, axis=2)
