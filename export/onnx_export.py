"""Export a torch stage to ONNX and prove that ONNX Runtime computes the same thing.

The runtime only ever sees the ONNX file, so an export that silently changes the maths (an
unsupported op approximated, a layer left in training mode) would show wrong faces in the
gallery with nobody able to tell why. Every export is therefore checked against torch on fresh
random inputs, several batch sizes included, because the batch axis is dynamic and the runtime
batches frames. The functions take the per-item input shape, so latent-input generators and
image-input refinement stages are exported and verified the same way.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from installation.errors import UserError
from installation.score.trajectory import DISTRIBUTIONS

OPSET = 17
TOLERANCE = 1e-4
BATCH_SIZES = (1, 3, 8)


@dataclass(frozen=True)
class Verification:
    """The largest absolute difference between ONNX Runtime and torch over ``count`` items."""

    max_abs_error: float
    count: int


def export_onnx(
    module: nn.Module,
    path: Path,
    input_shape: Sequence[int],
    input_name: str = "z",
    output_name: str = "image",
) -> None:
    """Write ``module`` (in eval mode) to ``path`` with one input and output and a dynamic
    batch axis; ``input_shape`` is per item, without the batch axis."""
    export_graph(module, path, {input_name: input_shape}, output_name)


def export_graph(
    module: nn.Module,
    path: Path,
    inputs: Mapping[str, Sequence[int]],
    output_name: str = "image",
) -> None:
    """Write ``module`` (in eval mode) to ``path``: its forward takes ``inputs`` (name ->
    per-item shape), in order, and returns one output; every axis 0 is a dynamic batch axis.

    The TorchScript exporter (``dynamo=False``) is chosen on purpose: for these plain
    feed-forward stages it gives a small static graph that keeps the state-dict names on its
    initializers, which makes the file easy to inspect against the checkpoint.
    """
    module.eval()
    examples = tuple(torch.zeros(1, *shape) for shape in inputs.values())
    names = [*inputs, output_name]
    with torch.no_grad(), warnings.catch_warnings():
        # The exporter announces its own deprecation on every call; the choice is deliberate.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            examples,
            str(path),
            input_names=list(inputs),
            output_names=[output_name],
            dynamic_axes={name: {0: "batch"} for name in names},
            opset_version=OPSET,
            dynamo=False,
        )
        output_shape = tuple(module(*examples).shape[1:])
    _finish_graph(path, output_shape)


def _finish_graph(path: Path, output_shape: tuple[int, ...]) -> None:
    """Two repairs of the exporter's graph, so that the runtime can check and run it.

    The output's per-item shape is written where the exporter left symbolic sizes (shapes it
    could not infer through, e.g., StyleGAN3's crops): the runtime checks fixed image sizes
    against the manifest, and the verification proves the real output has them.

    Each Identity of an initializer becomes a copy of that initializer: the exporter stores
    equal weights once and gives the others as Identity nodes (StyleGAN3's equal input
    gains, say), and ONNX Runtime 1.32's graph optimizer then loses some of those names and
    refuses the model; a few duplicated small tensors cost nothing.
    """
    model = onnx.load(str(path))
    graph = model.graph
    dims = graph.output[0].type.tensor_type.shape.dim
    for dim, size in zip(dims[1:], output_shape, strict=True):
        if not dim.dim_value:
            dim.dim_value = size
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    nodes = [n for n in graph.node if n.op_type != "Identity" or n.input[0] not in initializers]
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in initializers:
            copy = graph.initializer.add()
            copy.CopyFrom(initializers[node.input[0]])
            copy.name = node.output[0]
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(path))


def verify_onnx(
    module: nn.Module,
    path: Path,
    input_shape: Sequence[int],
    seed: int = 0,
    distribution: str = "normal",
    tolerance: float = TOLERANCE,
) -> Verification:
    """Run ONNX Runtime (CPU) and torch on the same seeded random inputs and compare.

    ``distribution`` is how inputs are drawn, in the manifest's words: "normal" for N(0, 1)
    latents, "uniform" for U(-1, 1), which suits stages that take images in -1..1. Raises
    ``UserError`` naming the file when the outputs differ by ``tolerance`` or more.
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for batch in BATCH_SIZES:
        shape = (batch, *input_shape)
        if distribution == "normal":
            batches.append((torch.randn(shape, generator=generator),))
        else:
            batches.append((torch.rand(shape, generator=generator) * 2 - 1,))
    return compare_onnx(module, path, batches, tolerance)


def compare_onnx(
    module: nn.Module,
    path: Path,
    batches: Sequence[tuple[torch.Tensor, ...]],
    tolerance: float = TOLERANCE,
) -> Verification:
    """Run ``module`` and the ONNX model at ``path`` (ONNX Runtime, CPU) on each batch of
    inputs (in the model's input order) and compare their one output; ``UserError`` naming
    the file when they differ by ``tolerance`` or more, or when the model's inputs and outputs
    are not those the batches feed."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != len(batches[0]) or len(outputs) != 1:
        raise UserError(
            f"{path}: expected {len(batches[0])} input(s) and one output, the model has "
            f"{len(inputs)} and {len(outputs)}"
        )
    module.eval()
    errors: list[float] = []
    for batch in batches:
        with torch.no_grad():
            expected = module(*batch).numpy()
        feed = {info.name: value.numpy() for info, value in zip(inputs, batch, strict=True)}
        (actual,) = session.run(None, feed)
        if actual.shape != expected.shape:
            raise UserError(
                f"{path}: ONNX Runtime gives shape {list(actual.shape)}, torch "
                f"{list(expected.shape)}, for a batch of {len(batch[0])}"
            )
        errors.append(float(np.max(np.abs(actual - expected))))
    # np.max, unlike max(), lets a NaN through, and a NaN must fail the check below.
    worst = float(np.max(errors))
    count = sum(len(batch[0]) for batch in batches)
    if not worst < tolerance:
        raise UserError(
            f"{path}: ONNX Runtime differs from torch by {worst:.1e} (limit {tolerance:.0e}) "
            f"over {count} inputs; the export is not faithful"
        )
    return Verification(worst, count)
