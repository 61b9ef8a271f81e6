"""ONNX Runtime's IO-binding chain on the CPU provider: the same code that keeps the stages'
data on the GPU, run where CI can run it, on the committed bundle's real models and on
small models built here for what the bundle does not have (a second input)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import DEFAULT_BUNDLE
from onnx import TensorProto, helper

from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.bundle import Bundle, load_bundle
from installation.engine.ort_chain import MAX_BATCH, OrtChain


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle(DEFAULT_BUNDLE)


def latents(count: int) -> np.ndarray:
    return np.random.default_rng(5).standard_normal((count, 100, 1, 1), dtype=np.float32)


@pytest.mark.parametrize(
    ("count", "held"),
    [
        (1, (1,)),
        (MAX_BATCH, (MAX_BATCH,)),
        (MAX_BATCH + 1, (MAX_BATCH, 1)),
        # Two chunks through the same buffers: the first must not be overwritten by the second.
        (2 * MAX_BATCH, (MAX_BATCH,)),
    ],
)
def test_the_chain_gives_what_the_stages_give_one_by_one(
    bundle: Bundle, count: int, held: tuple[int, ...]
) -> None:
    backend = OnnxRuntimeBackend(CPU, threads=1, chain=True)
    generator, refine = (backend.load(spec.path) for spec in bundle.stages)
    chain = backend.chain([generator, refine])
    assert isinstance(chain, OrtChain) and chain.linked == 2
    batch = latents(count)
    first = generator.run(batch)
    assert np.array_equal(chain.run(batch, 1), first)
    assert np.array_equal(chain.run(batch, 2), refine.run(first))
    # Larger batches run in chunks, so at most MAX_BATCH sets of buffers are ever made.
    assert chain.held == held
    backend.close()


def test_the_chained_pipeline_draws_the_frames_of_the_unchained_one(bundle: Bundle) -> None:
    from installation.engine.pipeline import Pipeline

    chained = Pipeline.load(bundle, OnnxRuntimeBackend(CPU, threads=1, chain=True))
    plain = Pipeline.load(bundle, OnnxRuntimeBackend(CPU, threads=1))
    assert chained.chained == 2 and plain.chain is None
    z = latents(2).reshape(2, 100)
    for stages in (None, 1):
        a, b = chained.run(z, stages).astype(int), plain.run(z, stages).astype(int)
        # The unchained path's round trip through 0..1 between stages may move a rounding.
        assert a.shape == b.shape and np.abs(a - b).max() <= 1
    chained.close()
    plain.close()


def test_close_frees_the_buffers_and_the_chain_refuses_to_run(bundle: Bundle) -> None:
    backend = OnnxRuntimeBackend(CPU, threads=1, chain=True)
    chain = backend.chain([backend.load(spec.path) for spec in bundle.stages])
    assert chain is not None
    for count in (1, MAX_BATCH, 1):
        chain.run(latents(count), 2)
    assert isinstance(chain, OrtChain) and chain.held == (1, MAX_BATCH)
    backend.close()
    assert chain.held == ()
    with pytest.raises(RuntimeError, match="closed"):
        chain.run(latents(1), 2)
    backend.close()  # again: nothing left to release


def test_the_cpu_provider_does_not_chain_unless_asked(bundle: Bundle) -> None:
    backend = OnnxRuntimeBackend(CPU, threads=1)
    assert backend.chain([backend.load(spec.path) for spec in bundle.stages]) is None
    backend.close()


def _model(path: Path, nodes: list, inputs: list, output: str, initializers=()) -> Path:
    graph = helper.make_graph(
        nodes,
        path.stem,
        inputs,
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["n", 4, 1, 1])],
        list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def with_transform(tmp_path: Path) -> tuple[Path, Path]:
    """Stage 1: z plus the sum of each item's 3x3 transform; stage 2: twice its input."""
    first = _model(
        tmp_path / "first.onnx",
        [
            helper.make_node("ReduceSum", ["transform", "axes"], ["sum"], keepdims=0),
            helper.make_node("Reshape", ["sum", "column"], ["shift"]),
            helper.make_node("Add", ["z", "shift"], ["image"]),
        ],
        [
            helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", 4, 1, 1]),
            helper.make_tensor_value_info("transform", TensorProto.FLOAT, ["n", 3, 3]),
        ],
        "image",
        [
            helper.make_tensor("axes", TensorProto.INT64, [2], [1, 2]),
            helper.make_tensor("column", TensorProto.INT64, [4], [-1, 1, 1, 1]),
        ],
    )
    second = _model(
        tmp_path / "second.onnx",
        [helper.make_node("Mul", ["image", "two"], ["out"])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 4, 1, 1])],
        "out",
        [helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])],
    )
    return first, second


@pytest.mark.parametrize("count", [1, MAX_BATCH + 2])
def test_extra_inputs_reach_the_first_stage(with_transform: tuple[Path, Path], count: int) -> None:
    backend = OnnxRuntimeBackend(CPU, threads=1, chain=True)
    chain = backend.chain([backend.load(path) for path in with_transform])
    assert chain is not None
    rng = np.random.default_rng(9)
    z = rng.standard_normal((count, 4, 1, 1), dtype=np.float32)
    transform = rng.standard_normal((count, 3, 3), dtype=np.float32)
    shifted = z + transform.sum(axis=(1, 2)).reshape(-1, 1, 1, 1)
    np.testing.assert_allclose(chain.run(z, 1, {"transform": transform}), shifted, atol=1e-5)
    np.testing.assert_allclose(chain.run(z, 2, {"transform": transform}), 2 * shifted, atol=1e-5)
    backend.close()


def test_a_stage_for_any_picture_size_runs_after_the_linked_ones(
    with_transform: tuple[Path, Path], tmp_path: Path
) -> None:
    """A refinement exported for any size cannot have buffers made ahead: the chain links
    the stages before it and feeds it their output from the host, rather than refusing the
    whole chain the pipeline asks for (which would drop the show to the CPU)."""
    first, _ = with_transform
    graph = helper.make_graph(
        [helper.make_node("Mul", ["image", "two"], ["out"])],
        "any-size",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 4, "h", "w"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 4, "h", "w"])],
        [helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "any.onnx"))
    backend = OnnxRuntimeBackend(CPU, threads=1, chain=True)
    chain = backend.chain([backend.load(first), backend.load(tmp_path / "any.onnx")])
    assert isinstance(chain, OrtChain) and chain.linked == 1
    rng = np.random.default_rng(3)
    z = rng.standard_normal((MAX_BATCH + 1, 4, 1, 1), dtype=np.float32)
    transform = rng.standard_normal((MAX_BATCH + 1, 3, 3), dtype=np.float32)
    shifted = chain.run(z, 1, {"transform": transform})
    np.testing.assert_allclose(chain.run(z, 2, {"transform": transform}), 2 * shifted, atol=1e-6)
    assert chain.held == (MAX_BATCH, 1)
    backend.close()
