"""ONNX Runtime's CUDA rung. Everywhere: the choices it makes (provider options, CUDA graphs
or not, the reason it gives when CUDA cannot start). With ONNX Runtime's CUDA provider
(``pytest -m gpu``; skipped where this ONNX Runtime has none, TensorRT or not): the committed
bundle on the rung, the IO-binding chain and CUDA graphs against ONNX Runtime on the CPU,
and the FP16 variants checked on the GPU."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from conftest import DEFAULT_BUNDLE

from installation.engine.backend import CPU, CUDA, OnnxRuntimeBackend
from installation.engine.bundle import Bundle, load_bundle
from installation.engine.convention import to_unit
from installation.engine.faults import Faults
from installation.engine.fp16 import make_variants, proven_variants
from installation.engine.ladder import ORT_CUDA, ladder_for
from installation.engine.ort_chain import OrtChain
from installation.engine.ort_cuda import (
    GRAPH_ID,
    NO_GRAPH,
    graph_run_options,
    plan_cuda_graphs,
    provider_options,
    start_failure,
)
from installation.engine.parity import DEFAULT_TOLERANCE
from installation.engine.pipeline import Pipeline

HAS_CUDA = CUDA in ort.get_available_providers()
#: FP32 on the GPU against FP32 on the CPU: only the order of additions differs (with TF32
#: on, an H200 was 0.005 off).
FP32_TOLERANCE = 0.002
needs_cuda = pytest.mark.skipif(
    not HAS_CUDA, reason=f"ONNX Runtime {ort.__version__} here has no {CUDA}"
)


# Everywhere


def test_cuda_graphs_only_on_cuda_where_asked_and_where_onnx_runtime_keeps_several() -> None:
    assert not plan_cuda_graphs(CPU, True).enabled
    assert not plan_cuda_graphs(CUDA, False).enabled
    old = plan_cuda_graphs(CUDA, True, "1.17.3")
    assert not old.enabled and "1.18" in old.reason
    assert plan_cuda_graphs(CUDA, True, "1.31.0").enabled
    assert plan_cuda_graphs(CUDA, True, "1.22.0.dev20250101").enabled


def test_provider_options_are_the_chosen_ones() -> None:
    options = provider_options(cuda_graph=True)
    assert options["arena_extend_strategy"] == "kSameAsRequested"
    assert options["cudnn_conv_algo_search"] == "EXHAUSTIVE"
    assert options["do_copy_in_default_stream"] == "1"
    assert options["use_tf32"] == "0"  # FP32 means FP32: speed is the FP16 variants' job
    assert options["device_id"] == "0" and options["enable_cuda_graph"] == "1"
    assert provider_options(cuda_graph=False)["enable_cuda_graph"] == "0"


def test_plain_runs_of_a_graph_recording_session_skip_the_recording() -> None:
    assert graph_run_options(None).get_run_config_entry(GRAPH_ID) == NO_GRAPH
    assert graph_run_options(3).get_run_config_entry(GRAPH_ID) == "3"


def test_the_reason_cuda_did_not_start_is_one_line_naming_what_it_needs() -> None:
    reason = start_failure()
    assert "\n" not in reason
    assert f"onnxruntime-gpu {ort.__version__}" in reason and "cuDNN" in reason


# With ONNX Runtime's CUDA provider


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle(DEFAULT_BUNDLE)


@pytest.fixture(scope="module")
def reference(bundle: Bundle) -> Iterator[Pipeline]:
    pipeline = Pipeline.load(bundle, OnnxRuntimeBackend(CPU))
    yield pipeline
    pipeline.close()


def latents(count: int) -> np.ndarray:
    return np.random.default_rng(11).standard_normal((count, 100, 1, 1), dtype=np.float32)


def final(pipeline: Pipeline, batch: np.ndarray) -> np.ndarray:
    """The last stage's output as NCHW 0..1, through the chain where there is one."""
    count, last = len(pipeline.stages), pipeline.stages[-1].spec
    if pipeline.chain is not None:
        return to_unit(pipeline.chain.run(batch, count), last.layout, last.range)
    *_, (_, unit) = pipeline.walk(batch)
    return unit


@pytest.mark.gpu
@needs_cuda
def test_the_cuda_rung_runs_the_default_bundle(bundle: Bundle, tmp_path: Path) -> None:
    ladder = ladder_for(bundle, ORT_CUDA, None, tmp_path, Faults())
    pipeline = ladder.start()
    try:
        assert ladder.name == ORT_CUDA and isinstance(pipeline.chain, OrtChain)
        assert pipeline.chained == len(bundle.stages)
        frames = pipeline.run(latents(2).reshape(2, 100))
        assert frames.shape == (2, 256, 256, 3) and frames.dtype == np.uint8
    finally:
        pipeline.close()


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("graphs", [True, False])
def test_the_chain_on_cuda_matches_onnx_runtime_on_the_cpu(
    bundle: Bundle, reference: Pipeline, graphs: bool
) -> None:
    pipeline = Pipeline.load(bundle, OnnxRuntimeBackend(CUDA, cuda_graphs=graphs))
    try:
        assert isinstance(pipeline.chain, OrtChain)
        # 1, 8, then 1 again: a recorded graph replayed after another batch size's.
        for count in (1, 8, 1, 8):
            batch = latents(count)
            error = np.abs(final(pipeline, batch) - final(reference, batch)).max()
            assert error <= FP32_TOLERANCE
        # The ladder proves a rung on the main thread, the worker then runs it on its own.
        batch, errors = latents(1), []
        worker = threading.Thread(
            target=lambda: errors.append(
                np.abs(final(pipeline, batch) - final(reference, batch)).max()
            )
        )
        worker.start()
        worker.join()
        assert errors and errors[0] <= FP32_TOLERANCE
        assert pipeline.chain.graphs == graphs, "a CUDA graph could not be recorded"
        assert all(stage.model.graphs == graphs for stage in pipeline.stages)
    finally:
        pipeline.close()


@pytest.mark.gpu
@needs_cuda
def test_cuda_graphs_on_and_off_draw_the_same_frames(bundle: Bundle) -> None:
    on = Pipeline.load(bundle, OnnxRuntimeBackend(CUDA, cuda_graphs=True))
    off = Pipeline.load(bundle, OnnxRuntimeBackend(CUDA, cuda_graphs=False))
    try:
        for count in (1, 8, 1, 8, 2):
            z = latents(count).reshape(count, 100)
            difference = np.abs(on.run(z).astype(int) - off.run(z).astype(int)).max()
            assert difference <= 1
    finally:
        on.close()
        off.close()


@pytest.mark.gpu
@needs_cuda
def test_fp16_variants_are_checked_on_cuda_and_used_by_the_rung(
    bundle: Bundle, reference: Pipeline, tmp_path: Path
) -> None:
    builds = make_variants(bundle, tmp_path, 7, say=lambda line: None)
    assert all(build.kept for build in builds), builds
    for build in builds:
        assert build.path is not None
        report = json.loads(build.path.with_suffix(".json").read_text())["report"]
        assert report["parity_provider"] == CUDA
    variants = proven_variants(bundle, tmp_path)
    ladder = ladder_for(bundle, ORT_CUDA, None, tmp_path, Faults())
    pipeline = ladder.start()
    try:
        assert {stage.model.precision for stage in pipeline.stages} == {"fp16"}
        assert len(variants) == len(bundle.stages)
        for count in (1, 8):
            batch = latents(count)
            error = np.abs(final(pipeline, batch) - final(reference, batch)).max()
            assert error <= DEFAULT_TOLERANCE
    finally:
        pipeline.close()
