"""How build-engines asks TensorRT for half precision, decided from TensorRT's version and
what its module offers (the build itself runs only where TensorRT is: tests/test_gpu.py)."""

from __future__ import annotations

import types

import pytest

from installation.engine.gpu.build import strongly_typed

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
