"""Held to the reference: ONNX Runtime on the CPU in FP32 is what every faster way of running
a bundle (TensorRT engines, FP16 variants, a GPU) must match before it is trusted.

Two measures, both the largest difference on the 0..1 scale: per stage, each stage fed the
reference's input for it, so that errors do not add up; and end to end, the stages chained
and fed only the latents, so that a stage amplifying the error of the one before (a
refinement stage sharpening FP16 noise) is measured too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.bundle import Bundle, StageSpec
from installation.engine.bundle_check import keyframe_latents
from installation.engine.convention import to_unit
from installation.engine.pipeline import Pipeline

#: Largest accepted difference from ONNX Runtime on the 0..1 scale: about 5 of 255 grey levels.
DEFAULT_TOLERANCE = 0.02
#: Latents of a check: one batch of the largest TensorRT profile size.
PARITY_SAMPLES = 4


@dataclass(frozen=True)
class Sample:
    """A stage's input in its own convention and the reference's output for it, NCHW 0..1."""

    batch: np.ndarray
    expected: np.ndarray
    #: The stage's other inputs by name (a StyleGAN3 synthesis's transform): first stage only.
    extra: dict[str, np.ndarray] | None = None


def reference_samples(bundle: Bundle, seed: int) -> list[Sample]:
    """Every stage's input and the reference's output for random latents (drawn like a show's
    keyframes from ``seed``, so the bundle's latent distribution is respected and a failed
    check can be replayed), each stage fed the reference output of the one before. The first
    sample's batch is the latents; the last sample's output is the reference end to end. The
    reference is loaded for them and closed again."""
    reference = Pipeline.load(bundle, OnnxRuntimeBackend(CPU))
    try:
        latents = keyframe_latents(bundle, seed, PARITY_SAMPLES)
        batch, extra = reference.first_input(latents), reference.first_extra(latents)
        walk = reference.walk(batch, extra=extra)
        samples = [Sample(inputs, expected) for inputs, expected in walk]
    finally:
        reference.close()
    return [replace(samples[0], extra=extra), *samples[1:]]


def stage_error(raw: np.ndarray, spec: StageSpec, sample: Sample) -> float:
    """Largest difference of one stage's raw output from the reference's."""
    return float(np.max(np.abs(to_unit(raw, spec.layout, spec.range) - sample.expected)))


def end_to_end_error(pipeline: Pipeline, samples: list[Sample]) -> float:
    """Largest difference of the last stage's output from the reference's, the stages run as
    the show runs them (through the backend's device chain where it takes them all)."""
    first = samples[0]
    unit = pipeline.unit(first.batch, len(pipeline.stages), first.extra)
    return float(np.max(np.abs(unit - samples[-1].expected)))
