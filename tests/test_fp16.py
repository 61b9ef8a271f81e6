"""FP16 variants for ONNX Runtime's CUDA rung, made here on the CPU: converted with ONNX
Runtime's converter, valid ONNX, checked per stage and end to end against FP32, kept in the
engine cache only within the tolerance, and found again by the rung only while they fit the
bundle and this ONNX Runtime."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import DEFAULT_BUNDLE

from installation.engine.backend import CPU, CUDA, OnnxRuntimeBackend
from installation.engine.bundle import Bundle, load_bundle
from installation.engine.fp16 import (
    ENTRY,
    make_variants,
    proven_variants,
    to_fp16,
    variant_cache,
    variant_key,
)
from installation.engine.gpu.build import DEFAULT_TOLERANCE, build_engines
from installation.engine.gpu.engine_cache import EngineCache
from installation.engine.pipeline import Pipeline

SEED = 20261130
#: Where the check runs: on the GPU where ONNX Runtime has one.
PROVIDER = CUDA if CUDA in ort.get_available_providers() else CPU


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle(DEFAULT_BUNDLE)


def quiet(line: str) -> None:
    del line


@pytest.mark.parametrize("stage", [0, 1])
def test_a_converted_stage_is_valid_onnx_fp16_inside_float32_outside(
    bundle: Bundle, stage: int
) -> None:
    model = onnx.load_from_string(to_fp16(bundle.stages[stage].path))
    onnx.checker.check_model(model)  # among others: the nodes are in an order they can run
    edges = [*model.graph.input, *model.graph.output]
    assert {value.type.tensor_type.elem_type for value in edges} == {onnx.TensorProto.FLOAT}
    weights = {init.data_type for init in model.graph.initializer if len(init.dims) > 1}
    assert weights == {onnx.TensorProto.FLOAT16}


def test_variants_within_the_tolerance_are_kept_with_their_figures(
    bundle: Bundle, tmp_path: Path
) -> None:
    builds = make_variants(bundle, tmp_path, SEED, say=quiet)
    assert [build.stage for build in builds] == [spec.name for spec in bundle.stages]
    variants = proven_variants(bundle, tmp_path)
    for spec, build in zip(bundle.stages, builds, strict=True):
        assert build.kept and build.path is not None and variants[spec.path] == build.path
        report = json.loads(build.path.with_suffix(".json").read_text())["report"]
        assert report["max_abs_error"] == build.max_abs_error <= DEFAULT_TOLERANCE
        assert report["end_to_end_max_abs_error"] == build.end_to_end_error <= DEFAULT_TOLERANCE
        assert report["parity_provider"] == PROVIDER and report["parity_seed"] == SEED
    # The CPU provider runs them too: the frames stay within the tolerance of FP32.
    half = Pipeline.load(bundle, OnnxRuntimeBackend(CPU, threads=1, variants=variants))
    full = Pipeline.load(bundle, OnnxRuntimeBackend(CPU, threads=1))
    assert {stage.model.precision for stage in half.stages} == {"fp16"}
    z = np.random.default_rng(2).standard_normal((2, 100), dtype=np.float32)
    difference = np.abs(half.run(z).astype(int) - full.run(z).astype(int)).max()
    assert difference <= DEFAULT_TOLERANCE * 255


def test_a_variant_over_the_tolerance_is_dropped_and_an_older_one_removed(
    bundle: Bundle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make_variants(bundle, tmp_path, SEED, say=quiet)
    said: list[str] = []
    builds = make_variants(bundle, tmp_path, SEED, tolerance=1e-7, say=said.append)
    assert not any(build.kept for build in builds)
    assert all("dropped" in line and "\n" not in line for line in said)
    assert list(tmp_path.iterdir()) == []
    with caplog.at_level(logging.INFO):
        assert proven_variants(bundle, tmp_path) == {}
    [line] = [r.getMessage() for r in caplog.records if "FP32" in r.getMessage()]
    assert "generator: never built" in line and "build-engines" in line


def test_an_error_the_next_stage_amplifies_is_caught_end_to_end(
    bundle: Bundle, tmp_path: Path
) -> None:
    """Each variant alone may pass where the chain of both does not: the generator's
    FP16 error, refined, grows. A tolerance between the two keeps only the refinement.
    On the CPU provider, so that the figures are the same on every machine."""
    generator, refine = make_variants(bundle, tmp_path, SEED, say=quiet, provider=CPU)
    assert generator.end_to_end_error is not None
    assert generator.end_to_end_error > max(generator.max_abs_error, refine.max_abs_error)
    between = (generator.max_abs_error + generator.end_to_end_error) / 2
    generator, refine = make_variants(
        bundle, tmp_path, SEED, tolerance=between, say=quiet, provider=CPU
    )
    assert generator.max_abs_error <= between and not generator.kept
    assert refine.kept and refine.end_to_end_error is not None
    assert refine.end_to_end_error <= between
    assert list(proven_variants(bundle, tmp_path)) == [bundle.stages[1].path]


def test_a_variant_of_another_model_or_onnx_runtime_is_not_used(
    bundle: Bundle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make_variants(bundle, tmp_path, SEED, say=quiet)
    retrained = replace(bundle.stages[0], sha256="0" * 64)
    with caplog.at_level(logging.INFO):
        variants = proven_variants(replace(bundle, stages=(retrained, bundle.stages[1])), tmp_path)
    assert list(variants) == [bundle.stages[1].path]
    assert "generator: the ONNX file changed" in caplog.text

    spec = bundle.stages[1]
    cache = variant_cache(tmp_path)
    sidecar = cache.path(ENTRY.format(stage=spec.name), variant_key(spec)).with_suffix(".json")
    record = json.loads(sidecar.read_text())
    record["key"]["onnxruntime_version"] = "1.0.0"
    sidecar.write_text(json.dumps(record))
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert spec.path not in proven_variants(bundle, tmp_path)
    assert "made with another onnxruntime version (1.0.0" in caplog.text


def test_build_engines_fp32_removes_the_variants(bundle: Bundle, tmp_path: Path) -> None:
    make_variants(bundle, tmp_path, SEED, say=quiet)
    build_engines(bundle, EngineCache(tmp_path), precision="fp32", say=quiet)
    assert proven_variants(bundle, tmp_path) == {}
    assert not list(tmp_path.glob("*.onnx"))


def test_without_the_onnx_package_no_variants_are_made_and_it_says_why(
    bundle: Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # how Python reports a package as absent
    said: list[str] = []
    assert make_variants(bundle, tmp_path, SEED, say=said.append) == []
    assert said == ["no FP16 variants: FP16 conversion needs the onnx package (pip install onnx)"]
    assert list(tmp_path.iterdir()) == []


def test_a_stylegan3_bundle_is_checked_with_its_input_transform(tmp_path: Path) -> None:
    """The synthesis takes a transform beside its ws: the check must feed it, alone and
    through the chain, or ONNX Runtime refuses to run the stage at all."""
    from wspace_bundle import write_w_bundle

    bundle = load_bundle(write_w_bundle(tmp_path / "bundle", transform=True))
    said: list[str] = []
    [build] = make_variants(bundle, tmp_path / "engines", SEED, say=said.append)
    assert build.kept, said
    assert build.end_to_end_error is not None and build.end_to_end_error <= DEFAULT_TOLERANCE
