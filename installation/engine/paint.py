"""From what the conductor asks for to pictures: the layers of a ``FramePlan`` (the score's
description of a frame) through the pipeline, batched, then mixed. It runs on the inference
worker's thread, never on the display's. A grid layout's ``Mosaic`` paints its face streams
in the same batches, then tiles them into one picture, which the display treats like a face.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from installation.engine.pipeline import Pipeline
from installation.score.plan import FramePlan, Layer, Mosaic, Plan

#: A mosaic's gutters are this fraction of a cell's side: proportional, so the mosaic keeps
#: its shape (and the display its fit) when adaptive quality changes the cells' size.
GUTTER_SHARE = 1 / 32


def paint(pipeline: Pipeline, plans: Sequence[Plan], cap: int | None = None) -> list[np.ndarray]:
    """One H x W x 3 uint8 picture per plan, no layer running more than ``cap`` stages
    (adaptive quality; None: as many as each layer asks for).

    Layers that stop at the same stage go through the pipeline as one batch, whichever plan
    or mosaic cell they belong to. Layers of different sizes (scenes with different stage
    counts) are mixed at the larger size.
    """
    cells = [cell for plan in plans for cell in _cells(plan)]
    pictures = iter(_paint_cells(pipeline, cells, cap))
    return [
        tile(plan, [next(pictures) for _ in plan.cells])
        if isinstance(plan, Mosaic)
        else next(pictures)
        for plan in plans
    ]


def single_layer(plan: Plan) -> Layer | None:
    """The layer a frame's cost stands for: its only layer (every mosaic cell has the same
    kind), None during a crossfade, whose pictures cost double."""
    first = plan.cells[0] if isinstance(plan, Mosaic) else plan
    return first.layers[0] if len(first.layers) == 1 else None


def tile(mosaic: Mosaic, pictures: Sequence[np.ndarray]) -> np.ndarray:
    """The cells' pictures row by row, ``mosaic.columns`` to a row, parted by gutters of the
    mosaic's background colour (none around the edge: the display frames the whole)."""
    height = max(picture.shape[0] for picture in pictures)
    width = max(picture.shape[1] for picture in pictures)
    gutter = _gutter(width, height)
    columns = mosaic.columns
    mosaic_width, mosaic_height = mosaic_size((width, height), mosaic.rows, columns)
    out = np.empty((mosaic_height, mosaic_width, 3), np.uint8)
    out[:] = mosaic.background
    for index, picture in enumerate(pictures):
        y, x = divmod(index, columns)
        y, x = y * (height + gutter), x * (width + gutter)
        out[y : y + height, x : x + width] = _resized(picture, height, width)
    return out


def mosaic_size(cell: tuple[int, int], rows: int, columns: int) -> tuple[int, int]:
    """Width and height of a picture of ``rows`` x ``columns`` cells of ``cell`` (width,
    height) px with their gutters: a 1 x 1 grid is the cell itself."""
    width, height = cell
    gutter = _gutter(width, height)
    return columns * (width + gutter) - gutter, rows * (height + gutter) - gutter


def _gutter(width: int, height: int) -> int:
    return max(1, round(min(height, width) * GUTTER_SHARE))


def _cells(plan: Plan) -> tuple[FramePlan, ...]:
    return plan.cells if isinstance(plan, Mosaic) else (plan,)


def _paint_cells(
    pipeline: Pipeline, plans: Sequence[FramePlan], cap: int | None
) -> list[np.ndarray]:
    groups: dict[int | None, list[tuple[int, int]]] = defaultdict(list)
    for p, plan in enumerate(plans):
        for k, layer in enumerate(plan.layers):
            groups[stages_to_run(layer, cap)].append((p, k))
    images: dict[tuple[int, int], np.ndarray] = {}
    for stages, members in groups.items():
        latents = np.stack([plans[p].layers[k].latent for p, k in members])
        for member, image in zip(members, pipeline.run(latents, stages), strict=True):
            images[member] = image
    return [
        _mix(plan, [images[p, k] for k in range(len(plan.layers))]) for p, plan in enumerate(plans)
    ]


def stages_to_run(layer: Layer, cap: int | None) -> int | None:
    """The stages ``layer`` runs under ``cap`` (None: all the pipeline has)."""
    if cap is None:
        return layer.stages
    return cap if layer.stages is None else min(layer.stages, cap)


def _mix(plan: FramePlan, pictures: list[np.ndarray]) -> np.ndarray:
    if len(pictures) == 1:
        return pictures[0]
    height = max(picture.shape[0] for picture in pictures)
    width = max(picture.shape[1] for picture in pictures)
    total = np.zeros((height, width, 3), np.float32)
    for layer, picture in zip(plan.layers, pictures, strict=True):
        total += np.float32(layer.weight) * _resized(picture, height, width)
    return np.clip(total + np.float32(0.5), 0, 255).astype(np.uint8)


def _resized(picture: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour scaling: only needed during a crossfade between scenes that stop at
    different stages (or a mosaic's cells in one), which is brief, so speed matters more than
    filtering here."""
    if picture.shape[:2] == (height, width):
        return picture
    rows = np.arange(height) * picture.shape[0] // height
    columns = np.arange(width) * picture.shape[1] // width
    return picture[rows[:, None], columns[None, :]]
