"""The one interface our clean-room StyleGAN2 and StyleGAN3 generators share.

The exporter and the tests treat both families alike: a mapping network from z (and a class
label c) to one w, and a synthesis network from a w per layer (``ws``) to an image. Keeping
the two halves as separate methods is what lets the bundle ship them as two ONNX files, so the
runtime can morph in W space without ever running the mapping network per frame.
"""

from __future__ import annotations

import torch
from torch import nn


class StyleGenerator(nn.Module):
    """A StyleGAN generator split into ``map`` (z, c -> w) and ``synthesize`` (ws -> image).

    Subclasses set the sizes in ``__init__`` and implement the two halves; ``forward`` is the
    reference path (truncation toward ``w_avg``, the same w for every layer) that parity checks
    against NVIDIA's code compare with.
    """

    z_dim: int
    c_dim: int
    w_dim: int
    num_ws: int
    img_resolution: int
    img_channels: int
    w_avg: torch.Tensor
    transform: torch.Tensor | None

    def __init__(
        self,
        *,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int,
        img_resolution: int,
        img_channels: int,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.num_ws = num_ws
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.transform = None

    def map(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """z [N, z_dim] (and c [N, c_dim] for a conditional model) -> w [N, w_dim], untruncated."""
        raise NotImplementedError

    def synthesize(self, ws: torch.Tensor, transform: torch.Tensor | None = None) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> image [N, img_channels, R, R] in about -1..1, unclamped.

        The noise is the pickle's constant noise, so the same ws always give the same image.
        ``transform`` [N, 3, 3] is StyleGAN3's input transform (None: the stored one).
        """
        raise NotImplementedError

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
    ) -> torch.Tensor:
        """The reference image for z (and c): w truncated toward ``w_avg`` by
        ``truncation_psi`` (0: the average face, 1: untouched), the same w for every layer."""
        w = self.w_avg.lerp(self.map(z, c), truncation_psi)
        ws = w.unsqueeze(1).expand(-1, self.num_ws, -1)
        return self.synthesize(ws)
