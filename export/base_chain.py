"""The fixed pictures a refinement stage is judged on in the chain it will run in.

A stage never runs alone in the gallery: it refines what the stages before it drew. So every
epoch of a run draws the same seeds (0..N-1, the same in every run, so runs compare) through
the base bundle's first stages and lets the stage refine them; the faces found in the result
and its sharpness say whether training drifts away from faces, which PSNR on photographs
cannot. The base runs once, at the run's start, on ONNX Runtime's CPU provider as the
gallery's fallback runs it: its pictures do not change while the stage trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.bundle import VIEW_SIZE, Bundle, load_bundle
from installation.engine.mapping import Mapping
from installation.engine.pipeline import Pipeline
from installation.errors import UserError
from installation.score.trajectory import keyframe


@dataclass(frozen=True)
class BaseChain:
    """Seeds ``0..len(images)-1`` drawn by the first ``stages`` stages of ``bundle``."""

    bundle: Path
    name: str
    stages: int
    images: np.ndarray
    """(N, 3, size, size) float32 in 0..1."""

    @property
    def size(self) -> int:
        return int(self.images.shape[-1])

    def describe(self) -> dict[str, Any]:
        """The run history's ``base`` entry."""
        return {
            "bundle": str(self.bundle),
            "name": self.name,
            "stages": self.stages,
            "size": self.size,
        }


def draw_base(path: Path, stages: int, seeds: int) -> BaseChain:
    """Draw seeds ``0..seeds-1`` through the first ``stages`` stages of the bundle at
    ``path``. Raises ``UserError`` when the bundle does not load, has fewer stages, or its
    picture there is not the RGB image a refinement stage takes."""
    bundle = load_bundle(path)
    if not 1 <= stages <= len(bundle.stages):
        raise UserError(
            f"{path}: --base-stages {stages}, but the bundle has {len(bundle.stages)} stages"
        )
    pipeline = Pipeline.load(bundle, OnnxRuntimeBackend(CPU, threads=1))
    try:
        latents = _latents(bundle, seeds)
        images = pipeline.unit(pipeline.first_input(latents), stages, pipeline.first_extra(latents))
    finally:
        pipeline.close()
    spec = bundle.stages[stages - 1]
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
        raise UserError(
            f"{path}: stage {stages} ({spec.name}) draws {list(images.shape[1:])} (NCHW), not "
            "the square RGB picture a refinement stage takes"
        )
    return BaseChain(path, bundle.name, stages, np.clip(images, 0.0, 1.0).astype(np.float32))


def _latents(bundle: Bundle, seeds: int) -> np.ndarray:
    """The first input of seed ``s`` is the show's keyframe 0 of seed ``s``: its z, or for a
    W bundle that z's w in every layer, upright."""
    if bundle.w is None:
        rows = [
            keyframe(seed, 0, bundle.latent_size, bundle.latent_distribution)
            for seed in range(seeds)
        ]
        return np.stack(rows)
    mapping = Mapping(bundle, cache_size=seeds)
    view = np.zeros(VIEW_SIZE if bundle.w.transform is not None else 0, np.float32)
    rows = [
        np.concatenate([np.tile(mapping.w(seed, 0), bundle.w.num_ws), view])
        for seed in range(seeds)
    ]
    return np.stack(rows)
