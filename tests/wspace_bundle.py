"""Tiny W-space bundles built with onnx.helper, for the runtime's tests of motion in W.

A real StyleGAN export takes torch and seconds; these take milliseconds and no torch, yet
are real ONNX files run by real ONNX Runtime sessions. The mapping is ``tanh(z A [+ c B])``;
the synthesis draws each pixel from every ws layer (and the transform, where it takes one)
through one random matrix and a tanh, so a change to any layer, or to the transform, changes
the picture, and the picture stays within -1..1 as a StyleGAN's about does.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZE = 16
OPSET = 17
#: The IR version opset 17 came with: an onnx newer than the ONNX Runtime that reads the file
#: (the GPU machine's) would otherwise write one the runtime refuses.
IR_VERSION = 8


def _save(model: onnx.ModelProto, path: Path) -> str:
    model.opset_import[0].version = OPSET
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _mapping(path: Path, z_dim: int, w_dim: int, c_dim: int, rng: np.random.Generator) -> str:
    inputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", z_dim])]
    weights = [
        numpy_helper.from_array((0.5 * rng.standard_normal((z_dim, w_dim))).astype(np.float32), "A")
    ]
    nodes = [helper.make_node("MatMul", ["z", "A"], ["zA"])]
    total = "zA"
    if c_dim:
        inputs.append(helper.make_tensor_value_info("c", TensorProto.FLOAT, ["batch", c_dim]))
        weights.append(
            numpy_helper.from_array(rng.standard_normal((c_dim, w_dim)).astype(np.float32), "B")
        )
        nodes += [
            helper.make_node("MatMul", ["c", "B"], ["cB"]),
            helper.make_node("Add", ["zA", "cB"], ["sum"]),
        ]
        total = "sum"
    nodes.append(helper.make_node("Tanh", [total], ["w"]))
    output = helper.make_tensor_value_info("w", TensorProto.FLOAT, ["batch", w_dim])
    graph = helper.make_graph(nodes, "mapping", inputs, [output], weights)
    return _save(helper.make_model(graph), path)


def _synthesis(
    path: Path, num_ws: int, w_dim: int, transform: bool, rng: np.random.Generator
) -> str:
    pixels = 3 * SIZE * SIZE
    inputs = [helper.make_tensor_value_info("ws", TensorProto.FLOAT, ["batch", num_ws, w_dim])]
    scale = 1.5 / np.sqrt(num_ws * w_dim)
    weights = [
        numpy_helper.from_array(
            (scale * rng.standard_normal((num_ws * w_dim, pixels))).astype(np.float32), "W"
        ),
        numpy_helper.from_array(np.array([-1, 3, SIZE, SIZE], np.int64), "shape"),
    ]
    nodes = [
        helper.make_node("Flatten", ["ws"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "W"], ["drawn"]),
    ]
    total = "drawn"
    if transform:
        inputs.append(
            helper.make_tensor_value_info("transform", TensorProto.FLOAT, ["batch", 3, 3])
        )
        weights.append(
            numpy_helper.from_array(rng.standard_normal((9, pixels)).astype(np.float32), "T")
        )
        nodes += [
            helper.make_node("Flatten", ["transform"], ["tflat"], axis=1),
            helper.make_node("MatMul", ["tflat", "T"], ["turned"]),
            helper.make_node("Add", ["drawn", "turned"], ["sum"]),
        ]
        total = "sum"
    nodes += [
        helper.make_node("Tanh", [total], ["squashed"]),
        helper.make_node("Reshape", ["squashed", "shape"], ["image"]),
    ]
    output = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])
    graph = helper.make_graph(nodes, "synthesis", inputs, [output], weights)
    return _save(helper.make_model(graph), path)


def write_w_bundle(
    folder: Path,
    *,
    z_dim: int = 8,
    w_dim: int = 6,
    num_ws: int = 4,
    c_dim: int = 0,
    transform: bool = False,
    stored: str = "[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]",
    seed: int = 0,
) -> Path:
    """A W bundle in ``folder`` (created): ``mapping.onnx``, ``synthesis.onnx`` ([N, 3, 16,
    16] in -1..1), ``w_avg.npy`` and its manifest; ``stored`` is the transform a StyleGAN3
    bundle states (``transform`` True)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    mapping_sha = _mapping(folder / "mapping.onnx", z_dim, w_dim, c_dim, rng)
    synthesis_sha = _synthesis(folder / "synthesis.onnx", num_ws, w_dim, transform, rng)
    np.save(folder / "w_avg.npy", (0.1 * rng.standard_normal(w_dim)).astype(np.float32))
    average_sha = hashlib.sha256((folder / "w_avg.npy").read_bytes()).hexdigest()
    transform_line = f"transform = {stored}\n" if transform else ""
    (folder / "bundle.toml").write_text(
        f"""format = 1
name = "tiny-w"

[latent]
size = {z_dim}
distribution = "normal"
space = "w"

[w]
mapping = "mapping.onnx"
mapping_sha256 = "{mapping_sha}"
w_dim = {w_dim}
num_ws = {num_ws}
c_dim = {c_dim}
average = "w_avg.npy"
average_sha256 = "{average_sha}"
{transform_line}
[provenance]
source = "random weights made by tests/wspace_bundle.py"
license = "MIT"

[[stages]]
name = "synthesis"
file = "synthesis.onnx"
sha256 = "{synthesis_sha}"
input_name = "ws"
input_shape = [{num_ws}, {w_dim}]
output_name = "image"
output_shape = [3, {SIZE}, {SIZE}]
layout = "NCHW"
range = [-1.0, 1.0]
"""
    )
    return folder


def write_show(folder: Path, bundle: Path, scenes: str) -> Path:
    """A headless show in ``folder`` playing ``bundle`` with the ``[[scenes]]`` in ``scenes``."""
    path = folder / "show.toml"
    path.write_text(
        f'bundle = "{bundle}"\n\n[display]\nmode = "headless"\n\n[osc]\nenabled = false\n\n'
        + scenes
    )
    return path
