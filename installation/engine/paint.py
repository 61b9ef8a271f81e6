"""From what the conductor asks for to pictures: the layers of a ``FramePlan`` (the score's
description of a frame) through the pipeline, batched, then mixed. It runs on the inference
worker's thread, never on the display's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from installation.engine.pipeline import Pipeline
from installation.score.plan import FramePlan, Layer


def paint(
    pipeline: Pipeline, plans: Sequence[FramePlan], cap: int | None = None
) -> list[np.ndarray]:
    """One H x W x 3 uint8 picture per plan, no layer running more than ``cap`` stages
    (adaptive quality; None: as many as each layer asks for).

    Layers that stop at the same stage go through the pipeline as one batch. Layers of
    different sizes (scenes with different stage counts) are mixed at the larger size.
    """
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
    different stages, which is brief, so speed matters more than filtering here."""
    if picture.shape[:2] == (height, width):
        return picture
    rows = np.arange(height) * picture.shape[0] // height
    columns = np.arange(width) * picture.shape[1] // width
    return picture[rows[:, None], columns[None, :]]
