"""How build-engines asks TensorRT for half precision, decided from TensorRT's version and
what its module offers (the build itself runs only where TensorRT is: tests/test_gpu.py)."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
from conftest import DEFAULT_BUNDLE
from wspace_bundle import write_w_bundle

from installation.engine.bundle import load_bundle
from installation.engine.fp16 import VariantBuild, proven_variants
from installation.engine.gpu.build import StageBuild, build_engines, closing_line, strongly_typed
from installation.engine.gpu.engine_cache import EngineCache

FLAGS = types.SimpleNamespace(STRONGLY_TYPED=1)


@pytest.mark.parametrize(
    ("version", "flags", "expected"),
    [
        ("10.11.0.33", FLAGS, False),  # BuilderFlag.FP16 still the way
        ("10.12.0.36", FLAGS, True),  # FP16 flag deprecated: types from the FP16 ONNX
        ("10.16.1.11", FLAGS, True),
        ("11.0.0.1", FLAGS, True),  # weakly typed networks removed
        ("10.16.1.11", types.SimpleNamespace(), False),  # no such flag: cannot ask for it
    ],
)
def test_strongly_typed_from_tensorrt_10_12_where_it_has_the_flag(
    version: str, flags: object, expected: bool
) -> None:
    trt = types.SimpleNamespace(__version__=version, NetworkDefinitionCreationFlag=flags)
    assert strongly_typed(trt) is expected


def test_the_closing_line_names_what_each_rung_got_and_with_what_error(tmp_path: Path) -> None:
    """The line a technician reads, here with one variant dropped and both engines built."""
    bundle = load_bundle(DEFAULT_BUNDLE)
    variants = [
        VariantBuild("generator", True, 0.0025, 0.0036, tmp_path / "g.onnx"),
        VariantBuild("refine-256", False, 0.03, None, None),
    ]
    engines = [
        StageBuild("generator", "fp16", 0.003, 1.0, tmp_path / "g.engine", 0.0041),
        StageBuild("refine-256", "fp32", 0.0001, 1.0, tmp_path / "r.engine", 0.0041),
    ]
    assert closing_line(bundle, tmp_path, variants, engines) == (
        f"faces-256 in {tmp_path}: FP16 variants for ONNX Runtime CUDA: 1 of 2 stages "
        "(max abs error generator 0.0025; end to end 0.0036), in FP32: refine-256; "
        "TensorRT engines: 2 (generator FP16 0.0030, refine-256 FP32 0.0001; end to end 0.0041)"
    )
    assert closing_line(bundle, tmp_path, [], [], "no TensorRT engines: no GPU") == (
        f"faces-256 in {tmp_path}: FP16 variants for ONNX Runtime CUDA: 0 of 2 stages, "
        "in FP32: generator, refine-256; no TensorRT engines: no GPU"
    )


def test_a_stylegan3_bundle_gets_its_fp16_variants_and_no_tensorrt_engines(
    tmp_path: Path,
) -> None:
    """TensorRT's build profile covers one input, and a StyleGAN3 synthesis also takes its
    input transform: build-engines says so before it needs TensorRT (here or on a GPU),
    after making the FP16 variants the CUDA rung runs."""
    bundle = load_bundle(write_w_bundle(tmp_path / "bundle", transform=True))
    folder = tmp_path / "engines"
    said: list[str] = []
    assert build_engines(bundle, EngineCache(folder), say=said.append) == []
    assert said[-1].startswith(
        f"tiny-w in {folder}: FP16 variants for ONNX Runtime CUDA: 1 of 1 stages (max abs error "
    )
    assert said[-1].endswith(
        "; no TensorRT engines: its engines take one input per stage; this bundle's synthesis "
        "also takes an input transform (StyleGAN3): ONNX Runtime runs it"
    )
    assert list(proven_variants(bundle, folder)) == [bundle.stages[0].path]
