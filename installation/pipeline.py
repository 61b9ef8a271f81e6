"""A Pipeline runs a bundle's stages in order, from latent vectors to 8-bit RGB frames.

Between stages it converts each output to the convention the next stage declares, and the
last one to what the screen needs, so bundles from other exporters work when their manifest
describes them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from installation.backend import Backend, LoadedStage
from installation.bundle import Bundle, StageSpec, check_io, verify_files
from installation.convention import from_unit, to_rgb8, to_unit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    spec: StageSpec
    model: LoadedStage


class Pipeline:
    """The loaded stages of one bundle on one backend."""

    def __init__(self, bundle: Bundle, stages: list[Stage], backend_name: str) -> None:
        self.bundle = bundle
        self.stages = stages
        self.backend_name = backend_name

    @classmethod
    def load(cls, bundle: Bundle, backend: Backend) -> Pipeline:
        """Check the bundle's files, load every stage and check it against the manifest."""
        verify_files(bundle)
        stages = []
        for spec in bundle.stages:
            model = backend.load(spec.path)
            check_io(spec, model.inputs, model.outputs)
            stages.append(Stage(spec, model))
        log.info(
            "loaded bundle %s (%s) on %s: %s",
            bundle.name,
            bundle.path,
            backend.name,
            " -> ".join(f"{s.spec.name} {s.spec.output_size[0]}px" for s in stages),
        )
        return cls(bundle, stages, backend.name)

    def run(self, latents: np.ndarray, stages: int | None = None) -> np.ndarray:
        """(N, latent_size) latents -> (N, H, W, 3) uint8 RGB frames.

        ``stages`` stops after that many stages (a scene may want the rougher, faster
        pictures of the early stages); None runs them all.
        """
        first = self.stages[0].spec
        batch = np.ascontiguousarray(latents, dtype=np.float32).reshape(
            (len(latents), *first.input_shape)
        )
        unit = self.run_stage(0, batch)
        for index in range(1, min(stages or len(self.stages), len(self.stages))):
            spec = self.stages[index].spec
            assert spec.input_layout is not None and spec.input_range is not None
            unit = self.run_stage(index, from_unit(unit, spec.input_layout, spec.input_range))
        return to_rgb8(unit)

    def run_stage(self, index: int, batch: np.ndarray) -> np.ndarray:
        """One stage on an input in its own convention, output as NCHW 0..1."""
        stage = self.stages[index]
        if stage.model.inputs[0].shape[0] == 1 and len(batch) > 1:
            output = np.concatenate([stage.model.run(batch[i : i + 1]) for i in range(len(batch))])
        else:
            output = stage.model.run(batch)
        return to_unit(output, stage.spec.layout, stage.spec.range)
