"""Chaining stages where their data lives: the pipeline hands a backend's device chain the
stages whose conventions already meet, and converts on the host only where they do not.

The chain here runs the real ONNX Runtime models back to back without any conversion between
them, which is what a device chain does on the GPU; the pictures must be those of the
stage-by-stage path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
from conftest import DEFAULT_BUNDLE

from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.bundle import load_bundle
from installation.engine.model import DeviceChain, LoadedStage
from installation.engine.pipeline import Pipeline


class BackToBack(DeviceChain):
    """Each model's raw output straight into the next model, counting runs."""

    def __init__(self, models: Sequence[LoadedStage]) -> None:
        self.models = list(models)
        self.runs: list[int] = []

    def run(
        self, batch: np.ndarray, count: int, extra: Mapping[str, np.ndarray] | None = None
    ) -> np.ndarray:
        self.runs.append(count)
        for model in self.models[:count]:
            batch = model.run(batch)
        return batch


class ChainingBackend(OnnxRuntimeBackend):
    def __init__(self) -> None:
        super().__init__(CPU, threads=1)
        self.made: list[BackToBack] = []

    def chain(self, models: Sequence[LoadedStage]) -> DeviceChain:
        self.made.append(BackToBack(models))
        return self.made[-1]


def latents(count: int) -> np.ndarray:
    return np.random.default_rng(3).standard_normal((count, 100), dtype=np.float32)


def test_stages_whose_conventions_meet_run_as_one_chain() -> None:
    bundle = load_bundle(DEFAULT_BUNDLE)
    backend = ChainingBackend()
    chained = Pipeline.load(bundle, backend)
    host = Pipeline.load(bundle, OnnxRuntimeBackend(CPU, threads=1))
    assert chained.chained == 2 and host.chain is None
    for stages in (None, 1):
        a = chained.run(latents(2), stages).astype(int)
        b = host.run(latents(2), stages).astype(int)
        # The host path's round trip through 0..1 between stages may move a rounding.
        assert a.shape == b.shape and np.abs(a - b).max() <= 1
    assert backend.made[0].runs == [2, 1]


def test_a_convention_change_between_stages_is_made_on_the_host(caplog) -> None:
    bundle = load_bundle(DEFAULT_BUNDLE)
    # The refinement stage now says it wants 0..1 input: the generator's -1..1 output must
    # be converted on the host, so only the first stage may run as a chain.
    refine = replace(bundle.stages[1], input_range=(0.0, 1.0))
    bundle = replace(bundle, stages=(bundle.stages[0], refine))
    backend = ChainingBackend()
    pipeline = Pipeline.load(bundle, backend)
    assert pipeline.chained == 1
    assert "stages generator and refine-256 meet on the host" in caplog.text
    frames = pipeline.run(latents(1))
    assert frames.shape == (1, 256, 256, 3)
    assert backend.made[0].runs == []  # the whole chain needs the host in between
    pipeline.run(latents(1), stages=1)
    assert backend.made[0].runs == [1]
