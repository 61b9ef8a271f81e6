"""The pieces StyleGAN2 and StyleGAN3 share: the mapping network, its dense layers, the
activation constants, and reading a pickled layer's attributes and tensors.

Both generations map z (and a class label) to w the same way, with the same equalised-
learning-rate fully connected layers and leaky ReLU; they differ only in synthesis. Keeping
one copy here means one place where those numerics are matched against NVIDIA's pickles, and
one wording for every refusal of a damaged or foreign pickle.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from export.stylegan_pickle import PickledModule
from installation.errors import UserError

EPSILON = 1e-8
"""Added under the square roots of the input normalisation and of the demodulation."""
LRELU_SLOPE = 0.2
ACTIVATION_GAINS = {"linear": 1.0, "relu": math.sqrt(2), "lrelu": math.sqrt(2)}
"""Activations the generators support, with the gain that keeps unit variance through them
(the gain fully connected layers use; convolution layers store theirs as ``act_gain``)."""


def normalize_2nd_moment(x: torch.Tensor) -> torch.Tensor:
    """Scale each row to unit mean square: z and the label embedding enter the mapping so."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + EPSILON)


def activate(x: torch.Tensor, activation: str, gain: float, clamp: float | None) -> torch.Tensor:
    """The activation (after the bias was added), then the gain, then the symmetric clamp."""
    if activation == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE)
    elif activation == "relu":
        x = F.relu(x)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


# ---------------------------------------------------------------------------------------------
# Reading a layer's attributes: every refusal names the dotted path of the layer


def attribute(node: PickledModule, path: str, key: str) -> Any:
    if key not in node.attributes:
        raise UserError(f"{path}: the {node.class_name} has no attribute {key!r}")
    return node.attributes[key]


def number(node: PickledModule, path: str, key: str) -> float:
    """A real number (Python or numpy; bools are not numbers here)."""
    value = attribute(node, path, key)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise UserError(f"{path}.{key} is {value!r}, expected a number")
    return float(value)


def whole(node: PickledModule, path: str, key: str, least: int = 0) -> int:
    """A count: a whole number (Python or numpy) of at least ``least``."""
    value = attribute(node, path, key)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise UserError(f"{path}.{key} is {value!r}, expected a whole number from {least}")
    return int(value)


def clamp_of(node: PickledModule, path: str) -> float | None:
    """The layer's ``conv_clamp``: None (no clamp) or a number."""
    return None if attribute(node, path, "conv_clamp") is None else number(node, path, "conv_clamp")


def activation_of(node: PickledModule, path: str) -> str:
    name = attribute(node, path, "activation")
    if not isinstance(name, str) or name not in ACTIVATION_GAINS:
        supported = ", ".join(ACTIVATION_GAINS)
        raise UserError(f"{path}.activation is {name!r}; supported: {supported}")
    return name


def check_tensors(
    found: Mapping[str, torch.Tensor], expected: Mapping[str, Sequence[int]], family: str
) -> None:
    """Every tensor the layout calls for, with its shape, and no other; else one line naming
    the dotted tensor and both shapes."""
    for name, shape in expected.items():
        if name not in found:
            raise UserError(f"tensor {name} {list(shape)} is missing")
        if tuple(found[name].shape) != tuple(shape):
            raise UserError(
                f"tensor {name} has shape {list(found[name].shape)}, expected {list(shape)}"
            )
    for name, tensor in found.items():
        if name not in expected:
            raise UserError(
                f"tensor {name} {list(tensor.shape)} is not part of a {family} generator "
                "with these settings"
            )


# ---------------------------------------------------------------------------------------------
# The mapping network


class Dense(nn.Module):
    """A FullyConnectedLayer with equalized learning rate: the stored weight times
    ``weight_gain`` (lr_multiplier / sqrt(fan-in)), the bias times ``bias_gain``, both folded
    in once (the same float32 values the scaled product would give), then the activation at
    its unit-variance gain."""

    def __init__(self, node: PickledModule, path: str) -> None:
        super().__init__()
        weight_gain = number(node, path, "weight_gain")
        bias_gain = number(node, path, "bias_gain")
        self.activation = activation_of(node, path)
        # A layer frozen in training (freeze_layers) keeps its weights as buffers.
        tensors = {**node.buffers, **node.parameters}
        self.register_buffer("weight", tensors["weight"] * weight_gain)
        bias = tensors["bias"]
        self.register_buffer("bias", bias * bias_gain if bias_gain != 1 else bias.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight, self.bias)
        return activate(x, self.activation, ACTIVATION_GAINS[self.activation], None)


class MappingNetwork(nn.Module):
    """z and the label's embedding, each normalised to unit mean square and concatenated (z
    first), through the ``fc0``, ``fc1``, ... stack to w."""

    def __init__(self, node: PickledModule, path: str, z_dim: int, c_dim: int, layers: int):
        super().__init__()
        self.use_z = z_dim > 0
        self.embed = Dense(node.children["embed"], f"{path}.embed") if c_dim else None
        self.layers = nn.ModuleList(
            Dense(node.children[f"fc{index}"], f"{path}.fc{index}") for index in range(layers)
        )

    def forward(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        parts = []
        if self.use_z:
            parts.append(normalize_2nd_moment(z))
        if self.embed is not None:
            if c is None:
                raise ValueError("this generator is conditional: map() needs c, the label")
            parts.append(normalize_2nd_moment(self.embed(c)))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for layer in self.layers:
            x = layer(x)
        return x
