"""Deliberate faults and what they exercise: the GPU-to-CPU fallback at start, and failures
raised inside the real pipeline."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import DEFAULT_BUNDLE

from installation.bundle import load_bundle
from installation.engine import start_pipeline
from installation.errors import UserError
from installation.faults import FAULTS_ENV, DeliberateFault, Faults, FaultyPipeline


@pytest.mark.parametrize(
    ("text", "faults"),
    [
        ("", Faults()),
        ("gpu-start", Faults(gpu_start=True)),
        ("worker-crash", Faults(crash_always=True)),
        ("worker-crash@20, worker-crash@10", Faults(crash_at=(10.0, 20.0))),
        ("worker-hang@2.5,gpu-start", Faults(gpu_start=True, hang_at=2.5)),
        ("worker-hang", Faults(hang_at=0.0)),
    ],
)
def test_faults_from_the_environment(text: str, faults: Faults) -> None:
    assert Faults.from_environment({FAULTS_ENV: text}) == faults


@pytest.mark.parametrize("text", ["gpu", "worker-crash@soon", "worker-hang@-1", "gpu-start@3"])
def test_unknown_faults_are_user_errors(text: str) -> None:
    with pytest.raises(UserError, match=f"^{FAULTS_ENV}: "):
        Faults.from_environment({FAULTS_ENV: text})


def test_a_failing_gpu_falls_back_to_the_cpu_loudly(caplog: pytest.LogCaptureFixture) -> None:
    bundle = load_bundle(DEFAULT_BUNDLE)
    with caplog.at_level(logging.ERROR):
        pipeline = start_pipeline(bundle, 1, Faults(gpu_start=True))
    assert pipeline.backend_name == "onnxruntime-cpu"
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert "GPU BACKEND FAILED AT START, FALLING BACK TO THE CPU BACKEND" in record.getMessage()
    assert "deliberate fault: gpu-start" in record.getMessage()
    frames = pipeline.run(np.zeros((2, bundle.latent_size), dtype=np.float32))
    width, height = bundle.output_size
    assert frames.shape == (2, height, width, 3) and frames.dtype == np.uint8


def test_crashes_happen_once_each_at_their_time() -> None:
    now = [0.0]
    bundle = load_bundle(DEFAULT_BUNDLE)
    real = start_pipeline(bundle, 1, Faults())
    pipeline = FaultyPipeline(real, Faults(crash_at=(1.0, 2.0)), clock=lambda: now[0])
    latents = np.zeros((1, bundle.latent_size), dtype=np.float32)
    assert len(pipeline.run(latents)) == 1
    now[0] = 2.5  # both are due: one per run
    for due in ("1", "2"):
        with pytest.raises(DeliberateFault, match=f"worker-crash@{due}$"):
            pipeline.run(latents)
    assert np.array_equal(pipeline.run(latents), real.run(latents))
