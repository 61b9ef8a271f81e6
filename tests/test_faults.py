"""Deliberate faults: how they are asked for, and failures raised inside the real pipeline.
What the backend faults exercise (the fallback ladder) is tested in test_ladder."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DEFAULT_BUNDLE

from installation.engine.bundle import load_bundle
from installation.engine.faults import FAULTS_ENV, DeliberateFault, Faults, FaultyPipeline
from installation.engine.ladder import ladder_for
from installation.errors import UserError


@pytest.mark.parametrize(
    ("text", "faults"),
    [
        ("", Faults()),
        ("gpu-start", Faults(gpu_start=True)),
        ("worker-crash", Faults(crash_always=True)),
        ("worker-crash@20, worker-crash@10", Faults(crash_at=(10.0, 20.0))),
        ("worker-hang@2.5,gpu-start", Faults(gpu_start=True, hang_at=2.5)),
        ("worker-hang", Faults(hang_at=0.0)),
        ("backend-crash@30", Faults(backend_crash_at=30.0)),
        ("backend-crash", Faults(backend_crash_at=0.0)),
    ],
)
def test_faults_from_the_environment(text: str, faults: Faults) -> None:
    assert Faults.from_environment({FAULTS_ENV: text}) == faults


@pytest.mark.parametrize(
    "text", ["gpu", "worker-crash@soon", "worker-hang@-1", "gpu-start@3", "backend-crash@x"]
)
def test_unknown_faults_are_user_errors(text: str) -> None:
    with pytest.raises(UserError, match=f"^{FAULTS_ENV}: "):
        Faults.from_environment({FAULTS_ENV: text})


def test_crashes_happen_once_each_at_their_time() -> None:
    now = [0.0]
    bundle = load_bundle(DEFAULT_BUNDLE)
    real = ladder_for(bundle, "onnxruntime-cpu", 1, None, Faults()).start()
    pipeline = FaultyPipeline(real, Faults(crash_at=(1.0, 2.0)), clock=lambda: now[0])
    latents = np.zeros((1, bundle.latent_size), dtype=np.float32)
    assert len(pipeline.run(latents)) == 1
    now[0] = 2.5  # both are due: one per run
    for due in ("1", "2"):
        with pytest.raises(DeliberateFault, match=f"worker-crash@{due}$"):
            pipeline.run(latents)
    assert np.array_equal(pipeline.run(latents), real.run(latents))


def test_a_backend_crash_is_for_good_from_its_time_on() -> None:
    now = [0.0]
    bundle = load_bundle(DEFAULT_BUNDLE)
    real = ladder_for(bundle, "onnxruntime-cpu", 1, None, Faults()).start()
    pipeline = FaultyPipeline(real, Faults(backend_crash_at=1.0), clock=lambda: now[0])
    latents = np.zeros((1, bundle.latent_size), dtype=np.float32)
    assert np.array_equal(pipeline.run(latents), real.run(latents))
    now[0] = 1.0
    for _ in range(3):
        with pytest.raises(DeliberateFault, match=r"backend-crash@1$"):
            pipeline.run(latents)
