"""Ramps (how live changes glide) and painting plans into pictures with the real pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DEFAULT_BUNDLE

from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.bundle import load_bundle
from installation.engine.paint import paint
from installation.engine.pipeline import Pipeline
from installation.score.plan import FramePlan, Layer
from installation.score.ramp import Ramp
from installation.score.trajectory import keyframe


def test_ramp_values_and_exact_integral() -> None:
    ramp = Ramp(1.0, 3.0, start=2.0, seconds=4.0)
    assert [ramp.at(t) for t in (0.0, 2.0, 4.0, 6.0, 9.0)] == [1.0, 1.0, 2.0, 3.0, 3.0]
    times = np.linspace(-1.0, 8.0, 90_001)
    numeric = np.trapezoid([ramp.at(t) for t in times], times)
    assert ramp.integral(-1.0, 8.0) == pytest.approx(numeric, abs=1e-6)
    assert ramp.integral(8.0, -1.0) == pytest.approx(-numeric, abs=1e-6)
    assert ramp.integral(0.0, 3.0) + ramp.integral(3.0, 8.0) == pytest.approx(ramp.integral(0, 8))


def test_ramp_to_starts_from_the_current_value() -> None:
    ramp = Ramp(0.0, 1.0, start=0.0, seconds=1.0).to(0.0, 0.5, 0.5)
    assert ramp.at(0.5) == 0.5 and ramp.at(0.75) == 0.25 and ramp.at(2.0) == 0.0
    step = Ramp.constant(1.0).to(0.0, 3.0, 0.0)
    assert step.at(2.999) == 1.0 and step.at(3.0) == 0.0, "a zero-second ramp is a cut"


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return Pipeline.load(load_bundle(DEFAULT_BUNDLE), OnnxRuntimeBackend(CPU))


def test_paint_runs_layers_and_mixes_a_crossfade(pipeline: Pipeline) -> None:
    a, b = keyframe(1, 0, 100), keyframe(2, 0, 100)
    face_a, face_b = pipeline.run(np.stack([a, b]), stages=1)
    single, mixed = paint(
        pipeline,
        [FramePlan((Layer(a, 1),)), FramePlan((Layer(a, 1, 0.25), Layer(b, 1, 0.75)))],
    )
    np.testing.assert_array_equal(single, face_a)
    expected = 0.25 * face_a.astype(float) + 0.75 * face_b.astype(float)
    assert np.abs(mixed.astype(float) - expected).max() <= 1.0
