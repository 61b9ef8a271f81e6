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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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
    batch axis; ``input_shape`` is per item, without the batch axis.

    The TorchScript exporter (``dynamo=False``) is chosen on purpose: for these plain
    feed-forward stages it gives a small static graph that keeps the state-dict names on its
    initializers, which makes the file easy to inspect against the checkpoint.
    """
    module.eval()
    example = torch.zeros(1, *input_shape)
    with torch.no_grad(), warnings.catch_warnings():
        # The exporter announces its own deprecation on every call; the choice is deliberate.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=[input_name],
            output_names=[output_name],
            dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


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
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1:
        raise UserError(
            f"{path}: expected one input and one output, the model has {len(inputs)} and "
            f"{len(outputs)}"
        )
    generator = torch.Generator().manual_seed(seed)
    module.eval()
    errors: list[float] = []
    for batch in BATCH_SIZES:
        shape = (batch, *input_shape)
        if distribution == "normal":
            sample = torch.randn(shape, generator=generator)
        else:
            sample = torch.rand(shape, generator=generator) * 2 - 1
        with torch.no_grad():
            expected = module(sample).numpy()
        (actual,) = session.run(None, {inputs[0].name: sample.numpy()})
        if actual.shape != expected.shape:
            raise UserError(
                f"{path}: ONNX Runtime gives shape {list(actual.shape)}, torch "
                f"{list(expected.shape)}, for a batch of {batch}"
            )
        errors.append(float(np.max(np.abs(actual - expected))))
    # np.max, unlike max(), lets a NaN through, and a NaN must fail the check below.
    worst = float(np.max(errors))
    count = sum(BATCH_SIZES)
    if not worst < tolerance:
        raise UserError(
            f"{path}: ONNX Runtime differs from torch by {worst:.1e} (limit {tolerance:.0e}) "
            f"over {count} inputs; the export is not faithful"
        )
    return Verification(worst, count)
