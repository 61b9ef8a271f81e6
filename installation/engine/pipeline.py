"""A Pipeline runs a bundle's stages in order, from latent vectors to 8-bit RGB frames.

Between stages it converts each output to the convention the next stage declares, and the
last one to what the screen needs, so bundles from other exporters work when their manifest
describes them. Where the backend can chain stages on its device (TensorRT) and one stage's
output already is the next one's input convention, the stages run there back to back and only
the final frame crosses to the host.

A frame plan's layer holds everything the first stage takes, flattened (``Bundle.input_size``
values): a Z bundle's z; a W bundle's ws, followed, where the synthesis has an input
transform (StyleGAN3), by the view (rotation in degrees, translation x, y), which becomes the
transform input here, composed with the transform the bundle was stored with.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from installation.engine.bundle import (
    TRANSFORM,
    VIEW_SIZE,
    Bundle,
    StageSpec,
    check_io,
    extra_inputs,
    read_average,
    verify_files,
)
from installation.engine.convention import from_unit, to_rgb8, to_unit
from installation.engine.model import Backend, DeviceChain, LoadedStage
from installation.score.wspace import transform_matrix

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    spec: StageSpec
    model: LoadedStage


class Pipeline:
    """The loaded stages of one bundle on one backend."""

    def __init__(
        self,
        bundle: Bundle,
        stages: list[Stage],
        backend_name: str,
        chain: DeviceChain | None = None,
        backend: Backend | None = None,
    ) -> None:
        self.bundle = bundle
        self.stages = stages
        self.backend_name = backend_name
        self.chain = chain
        #: What ``close`` releases: the backend the stages were loaded on, when it is ours.
        self.backend = backend
        #: How many leading stages the chain can run without a conversion on the host.
        self.chained = _direct_prefix([stage.spec for stage in stages]) if chain else 0

    @classmethod
    def load(cls, bundle: Bundle, backend: Backend) -> Pipeline:
        """Check the bundle's files, load every stage and check it against the manifest."""
        stages = load_stages(bundle, backend)
        log.info(
            "loaded bundle %s (%s) on %s: %s",
            bundle.name,
            bundle.path,
            backend.name,
            " -> ".join(f"{s.spec.name} {s.spec.output_size[0]}px" for s in stages),
        )
        chain = backend.chain([s.model for s in stages])
        pipeline = cls(bundle, stages, backend.name, chain, backend)
        if pipeline.chain is not None and pipeline.chained < len(stages):
            log.warning(
                "stages %s and %s meet on the host: the output convention of one is not the "
                "input convention of the other, so frames cross to the host between them",
                stages[pipeline.chained - 1].spec.name,
                stages[pipeline.chained].spec.name,
            )
        return pipeline

    def run(self, latents: np.ndarray, stages: int | None = None) -> np.ndarray:
        """(N, input_size) latents -> (N, H, W, 3) uint8 RGB frames.

        ``stages`` stops after that many stages (a scene may want the rougher, faster
        pictures of the early stages); None runs them all. A first stage with a transform
        input runs on the host where the device chain cannot feed it (TensorRT's).
        """
        count = min(stages or len(self.stages), len(self.stages))
        return to_rgb8(self.unit(self.first_input(latents), count, self.first_extra(latents)))

    def unit(
        self, batch: np.ndarray, count: int, extra: Mapping[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """The first ``count`` stages on the first stage's input ``batch`` (and ``extra``,
        ``first_extra``), the last one's output as NCHW 0..1: through the device chain where
        it takes them all, else on the host."""
        chain = self.chain
        if chain is not None and count <= self.chained and (chain.feeds_extra or not extra):
            last = self.stages[count - 1].spec
            return to_unit(chain.run(batch, count, extra), last.layout, last.range)
        *_, (_, unit) = self.walk(batch, count, extra)
        return unit

    def close(self) -> None:
        """Release the backend's sessions and memory (the ladder, leaving this pipeline for
        another backend, needs them back); safe to call again, and the pipeline cannot run
        afterwards."""
        if self.backend is not None:
            self.backend.close()

    def first_input(self, latents: np.ndarray) -> np.ndarray:
        """(N, input_size) latents as a float32 batch for the first stage (without a W
        bundle's view: that is ``first_extra``'s)."""
        shape = self.stages[0].spec.input_shape
        values = np.asarray(latents)[:, : math.prod(shape)]
        return np.ascontiguousarray(values, dtype=np.float32).reshape((len(latents), *shape))

    def first_extra(self, latents: np.ndarray) -> dict[str, np.ndarray] | None:
        """The first stage's other inputs for (N, input_size) latents: the transform
        [N, 3, 3] of a StyleGAN3 synthesis, each layer's view after the stored transform
        (the stored one maps the picture's coordinates to the input's, and so does the view's
        inverse: the view turns the picture the bundle was stored with). None otherwise."""
        w = self.bundle.w
        if w is None or w.transform is None:
            return None
        stored = np.array(w.transform, dtype=np.float64)
        views = np.asarray(latents, dtype=np.float64)[:, -VIEW_SIZE:]
        matrices = [stored @ transform_matrix((v[0], v[1], v[2])) for v in views]
        return {TRANSFORM: np.stack(matrices).astype(np.float32)}

    def neutral_latents(self, count: int = 1) -> np.ndarray:
        """Latents that need no mapping, for a proof frame: zeros for a Z bundle; for a W
        bundle the average w in every ws, upright (the average face)."""
        w = self.bundle.w
        if w is None:
            return np.zeros((count, self.bundle.latent_size), dtype=np.float32)
        row = np.tile(read_average(w), w.num_ws)
        if w.transform is not None:
            row = np.concatenate([row, np.zeros(VIEW_SIZE, np.float32)])
        return np.repeat(row[None, :], count, axis=0)

    def walk(
        self,
        batch: np.ndarray,
        count: int | None = None,
        extra: Mapping[str, np.ndarray] | None = None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Run the first ``count`` stages (None: all) on the host, each fed the one before;
        yield every stage's input, in its own convention, and its output as NCHW 0..1.

        ``batch`` is the first stage's input and ``extra`` its other inputs
        (``first_extra``). Checks against a reference (build-engines) need the inputs as
        much as the outputs, so both are given."""
        unit = self.run_stage(0, batch, extra)
        yield batch, unit
        for index in range(1, count or len(self.stages)):
            spec = self.stages[index].spec
            assert spec.input_layout is not None and spec.input_range is not None
            batch = from_unit(unit, spec.input_layout, spec.input_range)
            unit = self.run_stage(index, batch)
            yield batch, unit

    def run_stage(
        self, index: int, batch: np.ndarray, extra: Mapping[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """One stage on an input in its own convention (and ``extra`` inputs by name),
        output as NCHW 0..1."""
        model = self.stages[index].model
        if model.inputs[0].shape[0] == 1 and len(batch) > 1:
            output = np.concatenate(
                [
                    _run(
                        model, batch[i : i + 1], {k: v[i : i + 1] for k, v in (extra or {}).items()}
                    )
                    for i in range(len(batch))
                ]
            )
        else:
            output = _run(model, batch, extra)
        spec = self.stages[index].spec
        return to_unit(output, spec.layout, spec.range)


def _run(
    model: LoadedStage, batch: np.ndarray, extra: Mapping[str, np.ndarray] | None
) -> np.ndarray:
    """``model`` on ``batch``, with the other inputs where it takes any."""
    return model.run(batch, extra) if extra else model.run(batch)


def load_stages(bundle: Bundle, backend: Backend) -> list[Stage]:
    """Every stage of ``bundle`` loaded on ``backend`` and checked against the manifest, once
    every file has matched its sha256: a changed file is named as such, before any backend
    gets to misread it."""
    verify_files(bundle)
    return [load_stage(bundle, backend, index) for index in range(len(bundle.stages))]


def load_stage(bundle: Bundle, backend: Backend, index: int) -> Stage:
    """Stage ``index`` of ``bundle`` loaded on ``backend`` and checked against the manifest
    (its file not hashed: ``load_stages`` does that first)."""
    spec = bundle.stages[index]
    model = backend.load(spec.path)
    check_io(spec, model.inputs, model.outputs, extra_inputs(bundle, index))
    return Stage(spec, model)


def _direct_prefix(specs: list[StageSpec]) -> int:
    """The number of leading stages in which each output is the next input as it is."""
    count = 1
    for before, after in pairwise(specs):
        if (before.layout, before.range) != (after.input_layout, after.input_range):
            break
        count += 1
    return count
