"""The NVIDIA path. Without a GPU: the one-line refusals, from the real cuda-python asking a
real (absent) driver. With one (TensorRT installed and a usable GPU, else skipped): engines
built for the committed bundle, held to ONNX Runtime on the CPU, chained on the device, and
loaded again from the cache without a rebuild."""

from __future__ import annotations

import json
import re
import shutil
import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import DEFAULT_BUNDLE, DEFAULT_SHOW, brisk_conductor

from installation.cli import main
from installation.display import HeadlessDisplay
from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.bundle import Bundle, load_bundle
from installation.engine.convention import to_unit
from installation.engine.faults import Faults
from installation.engine.gpu import cuda
from installation.engine.gpu.build import DEFAULT_TOLERANCE, StageBuild, build_engines
from installation.engine.gpu.cuda import CudaError, DeviceBuffer, GpuUnavailable, require_gpu
from installation.engine.gpu.engine_cache import MAX_BATCH, EngineCache, StaleEngine
from installation.engine.gpu.tensorrt_backend import (
    TensorRTBackend,
    import_tensorrt,
    make_builder,
    make_runtime,
)
from installation.engine.ladder import ladder_for
from installation.engine.pipeline import Pipeline
from installation.errors import UserError
from installation.player import play


def gpu_missing() -> str | None:
    """Why the GPU tests cannot run on this machine, or None when they can."""
    try:
        import_tensorrt()
        require_gpu()
    except GpuUnavailable as exc:
        return str(exc)
    return None


GPU_MISSING = gpu_missing()
needs_gpu = pytest.mark.skipif(GPU_MISSING is not None, reason=f"no GPU path: {GPU_MISSING}")
needs_no_gpu = pytest.mark.skipif(GPU_MISSING is None, reason="this machine has the GPU path")


def driver_error() -> str | None:
    """The error the real CUDA runtime gives on this machine, None when it has a GPU."""
    cudart = pytest.importorskip("cuda.bindings.runtime")
    error, count = cudart.cudaGetDeviceCount()
    if error == cudart.cudaError_t.cudaSuccess:
        return None if count else "no NVIDIA GPU found"
    return error.name


# Without a GPU


def test_require_gpu_without_a_gpu_says_why_in_one_line() -> None:
    expected = driver_error()
    if expected is None:
        pytest.skip("this machine has a GPU")
    with pytest.raises(GpuUnavailable) as info:
        require_gpu()
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_cuda_calls_that_fail_name_the_call_and_the_error() -> None:
    expected = driver_error()
    if expected is None or not expected.startswith("cuda"):
        pytest.skip("needs a CUDA runtime that answers with an error here")
    with pytest.raises(CudaError, match=f"^cudaMalloc: {expected}$"):
        DeviceBuffer(1024)


def test_build_engines_refuses_a_broken_bundle_before_writing_anything(
    bundle_copy: Path, tmp_path: Path
) -> None:
    bundle = load_bundle(bundle_copy)
    (bundle_copy / "generator.onnx").write_bytes(b"not a model")
    said: list[str] = []
    engines = tmp_path / "engines"
    with pytest.raises(UserError, match=r"generator\.onnx: sha256 mismatch") as info:
        build_engines(bundle, EngineCache(engines), say=said.append)
    assert "\n" not in str(info.value)
    assert said == []
    assert not engines.exists()


@needs_no_gpu
def test_without_tensorrt_build_engines_makes_only_the_fp16_variants(tmp_path: Path) -> None:
    said: list[str] = []
    engines = tmp_path / "engines"
    assert build_engines(load_bundle(DEFAULT_BUNDLE), EngineCache(engines), say=said.append) == []
    # The last line sums up both rungs: what was kept, with its errors, and why no engines.
    made, engines_line = said[-1].split("; no TensorRT engines: ")
    assert engines_line == GPU_MISSING
    assert made.startswith(f"faces-256 in {engines}: FP16 variants for ONNX Runtime CUDA: 2 of 2 ")
    assert re.search(r"max abs error generator 0\.\d{4}, refine-256 0\.\d{4}; end to end", made)
    assert "in FP32" not in made
    assert sorted(path.suffix for path in engines.iterdir()) == [".json", ".json", ".onnx", ".onnx"]


@needs_no_gpu
def test_the_command_says_why_it_built_no_engines_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engines = tmp_path / "engines"
    assert main(["build-engines", str(DEFAULT_SHOW), "--engines", str(engines)]) == 0
    out, err = capsys.readouterr()
    assert out.endswith(f"; no TensorRT engines: {GPU_MISSING}\n")
    assert "built 0" not in out
    assert err == ""
    assert not list(engines.glob("*.engine"))


def test_tensorrt_installed_without_its_libraries_is_not_called_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bindings without tensorrt_libs fail to import under the package's own name, as
    pip still lists the package: a real package on the path that fails the same way."""
    package = tmp_path / "tensorrt"
    package.mkdir()
    (package / "__init__.py").write_text(
        "raise ImportError('libnvinfer.so.10: cannot open shared object file', name='tensorrt')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tensorrt", raising=False)
    with pytest.raises(GpuUnavailable) as info:
        import_tensorrt()
    message = str(info.value)
    assert message.startswith("TensorRT is installed but cannot be loaded: libnvinfer.so.10")
    assert "not installed" not in message and "\n" not in message


def test_tensorrt_failing_to_start_cuda_is_one_line_not_a_traceback() -> None:
    """pybind11's words for a Builder or Runtime whose CUDA did not start."""

    def fails(logger: object) -> object:
        raise TypeError("pybind11::init(): factory function returned nullptr")

    trt = types.SimpleNamespace(__version__="10.16.1", Builder=fails, Runtime=fails)
    for make in (make_builder, make_runtime):
        with pytest.raises(GpuUnavailable, match=r"^TensorRT 10\.16\.1 could not start") as info:
            make(trt, None)
        assert "factory function returned nullptr" in str(info.value)
        assert "\n" not in str(info.value)


def test_driver_version_reads_the_kernel_module_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = tmp_path / "version"
    version.write_text(
        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.65.06  Release Build  "
        "(dvs-builder@U16-I3-B03-4-3)  Sun Jul 27 07:09:29 UTC 2025\n"
        "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"
    )
    monkeypatch.setattr(cuda, "DRIVER_VERSION_FILE", version)
    assert cuda.driver_version().startswith("580.65.06")
    monkeypatch.setattr(cuda, "DRIVER_VERSION_FILE", tmp_path / "absent")
    assert cuda.driver_version() == "none loaded"


def test_a_stream_handle_is_read_the_supported_way() -> None:
    cudart = pytest.importorskip("cuda.bindings.runtime")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cuda.native_handle(cudart.cudaStream_t(0x7F00)) == 0x7F00


# With a GPU


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle(DEFAULT_BUNDLE)


@pytest.fixture(scope="module")
def built(
    bundle: Bundle, tmp_path_factory: pytest.TempPathFactory
) -> tuple[EngineCache, list[StageBuild]]:
    cache = EngineCache(tmp_path_factory.mktemp("engines"))
    return cache, build_engines(bundle, cache, say=lambda line: None)


@pytest.fixture(scope="module")
def reference(bundle: Bundle) -> Pipeline:
    return Pipeline.load(bundle, OnnxRuntimeBackend(CPU))


@pytest.fixture
def on_gpu(bundle: Bundle, built: tuple[EngineCache, list[StageBuild]]) -> Iterator[Pipeline]:
    backend = TensorRTBackend(bundle, built[0])
    yield Pipeline.load(bundle, backend)
    backend.close()


def stage_inputs(bundle: Bundle, reference: Pipeline, count: int) -> list[np.ndarray]:
    """A batch of ``count`` inputs for each stage, as the stage before it draws them."""
    rng = np.random.default_rng(7)
    batch = rng.standard_normal((count, *bundle.stages[0].input_shape)).astype(np.float32)
    return [inputs for inputs, _ in reference.walk(batch)]


@pytest.mark.gpu
@needs_gpu
def test_build_engines_stores_a_checked_engine_per_stage(
    bundle: Bundle, built: tuple[EngineCache, list[StageBuild]]
) -> None:
    cache, builds = built
    assert [build.stage for build in builds] == [spec.name for spec in bundle.stages]
    for build in builds:
        assert build.precision in ("fp16", "fp32")
        assert 0 <= build.max_abs_error <= DEFAULT_TOLERANCE
        assert build.path.is_file() and build.path.parent == cache.folder
        report = json.loads(build.path.with_suffix(".json").read_text())["report"]
        assert report["precision"] == build.precision
        # The chained engines, fed only the latents, measured against ONNX Runtime.
        assert report["end_to_end_max_abs_error"] == build.end_to_end_error <= DEFAULT_TOLERANCE
    assert len(list(cache.folder.glob("*.engine"))) == len(bundle.stages)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("count", [1, MAX_BATCH, MAX_BATCH + 2])
def test_each_stage_matches_onnx_runtime(
    bundle: Bundle, reference: Pipeline, on_gpu: Pipeline, count: int
) -> None:
    for index, batch in enumerate(stage_inputs(bundle, reference, count)):
        expected = reference.run_stage(index, batch)
        got = on_gpu.run_stage(index, batch)
        assert got.shape == expected.shape
        assert np.max(np.abs(got - expected)) <= DEFAULT_TOLERANCE


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("count", [1, MAX_BATCH + 1])
def test_the_chain_equals_the_stage_by_stage_host_path(
    bundle: Bundle, reference: Pipeline, on_gpu: Pipeline, count: int
) -> None:
    assert on_gpu.chain is not None
    [latents, *_] = stage_inputs(bundle, reference, count)
    raw = on_gpu.chain.run(latents, len(bundle.stages))
    assert raw.shape == (count, 3, 256, 256)
    last = bundle.stages[-1]
    chained = to_unit(raw, last.layout, last.range)

    *_, (_, unit) = on_gpu.walk(latents)
    assert np.max(np.abs(chained - unit)) <= DEFAULT_TOLERANCE


@pytest.mark.gpu
@needs_gpu
def test_a_second_backend_loads_the_cache_and_refuses_a_tampered_one(
    bundle: Bundle, built: tuple[EngineCache, list[StageBuild]], tmp_path: Path
) -> None:
    cache, builds = built
    stamps = {path: path.stat().st_mtime_ns for path in cache.folder.iterdir()}
    backend = TensorRTBackend(bundle, cache)
    try:
        Pipeline.load(bundle, backend)
    finally:
        backend.close()
    assert {path: path.stat().st_mtime_ns for path in cache.folder.iterdir()} == stamps

    tampered = EngineCache(tmp_path / "engines")
    shutil.copytree(cache.folder, tampered.folder)
    sidecar = tampered.folder / builds[0].path.with_suffix(".json").name
    record = json.loads(sidecar.read_text())
    record["key"]["tensorrt_version"] = "9.0.0"
    sidecar.write_text(json.dumps(record))
    backend = TensorRTBackend(bundle, tampered)
    try:
        with pytest.raises(StaleEngine, match="another TensorRT version"):
            Pipeline.load(bundle, backend)
    finally:
        backend.close()


@pytest.mark.gpu
@needs_gpu
def test_the_ladder_runs_a_show_on_tensorrt_once_engines_are_built(
    bundle: Bundle, built: tuple[EngineCache, list[StageBuild]]
) -> None:
    ladder = ladder_for(bundle, "auto", None, built[0].folder, Faults())
    pipeline = ladder.start()
    assert ladder.name == "tensorrt" and pipeline.chain is not None
    _bundle, conductor = brisk_conductor(hold=0.2, morph=0.5)
    display = HeadlessDisplay((64, 36))
    display.open("test")
    try:
        result = play(display, ladder, conductor, 60, 0.1, 2.0)
    finally:
        display.close()
    assert result.error is None and ladder.name == "tensorrt"
    assert result.generated >= 60, "about one frame per display refresh"
