"""The DCGAN generator of PyTorch's DCGAN tutorial, written here so we can load its weights.

Published face generators such as gan-face-generate ship only a state dict, so the importer
needs a module whose parameter names and shapes match it exactly: a ``Sequential`` called
``main`` of four transposed-convolution blocks (with batch norm and ReLU) and a final
transposed convolution with tanh, growing a (nz, 1, 1) latent to a 64x64 image in -1..1.
The sizes are read back from a state dict, so checkpoints trained with other widths import too.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise

import torch
from torch import nn

IMAGE_SIZE = 64
"""Width and height of the output: four doublings of the 4x4 first block."""


class DCGANGenerator(nn.Module):
    """Maps latents shaped (N, nz, 1, 1) to images shaped (N, nc, 64, 64) in -1..1.

    ``nz`` is the latent size, ``ngf`` the width of the last hidden block (the blocks before
    it are 8, 4 and 2 times as wide) and ``nc`` the number of output channels.
    """

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3) -> None:
        super().__init__()
        self.nz, self.ngf, self.nc = nz, ngf, nc
        widths = [ngf * 8, ngf * 4, ngf * 2, ngf]
        layers = _upsample(nz, widths[0], stride=1, padding=0)
        for wider, narrower in pairwise(widths):
            layers += _upsample(wider, narrower, stride=2, padding=1)
        layers += [nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


def _upsample(inputs: int, outputs: int, stride: int, padding: int) -> list[nn.Module]:
    """One block: no convolution bias, because the batch norm after it has its own."""
    return [
        nn.ConvTranspose2d(inputs, outputs, 4, stride, padding, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(),
    ]


def generator_from_state_dict(state: Mapping[str, object]) -> DCGANGenerator:
    """Build a generator sized after ``state`` and load it, ready for inference (eval mode).

    Raises ``ValueError`` with one line naming the first key that does not fit, instead of
    torch's multi-line report, so callers can prefix the file name and show it to a user.
    """
    nz, ngf, nc = _sizes(state)
    model = DCGANGenerator(nz, ngf, nc)
    expected = model.state_dict()
    where = f"the DCGAN generator (nz={nz}, ngf={ngf}, nc={nc})"
    missing = [key for key in expected if key not in state]
    if missing:
        raise ValueError(f"does not fit {where}: missing {', '.join(missing[:3])}")
    unexpected = [key for key in state if key not in expected]
    if unexpected:
        raise ValueError(f"does not fit {where}: unexpected {', '.join(unexpected[:3])}")
    for key, wanted in expected.items():
        got = state[key]
        if not isinstance(got, torch.Tensor):
            raise ValueError(f"{key} is {type(got).__name__}, not a tensor")
        if got.shape != wanted.shape:
            raise ValueError(
                f"does not fit {where}: {key} has shape {list(got.shape)}, "
                f"expected {list(wanted.shape)}"
            )
    model.load_state_dict(state)
    return model.eval()


def _sizes(state: Mapping[str, object]) -> tuple[int, int, int]:
    """(nz, ngf, nc) from the first and last weights, which are (nz, 8*ngf, 4, 4) and
    (ngf, nc, 4, 4); every other shape then follows and is checked by the caller."""
    first = _weight(state, "main.0.weight")
    last = _weight(state, "main.12.weight")
    return first.shape[0], last.shape[0], last.shape[1]


def _weight(state: Mapping[str, object], key: str) -> torch.Tensor:
    weight = state.get(key)
    if not isinstance(weight, torch.Tensor) or weight.dim() != 4:
        keys = ", ".join(list(state)[:4]) or "none"
        raise ValueError(f"not a DCGAN generator state dict: no 4-d tensor {key} (keys: {keys})")
    return weight
