"""The refinement stage: a small conditional GAN that draws an image again at ``scale`` times
its size, and the discriminator it is trained against.

One GAN alone draws faces at 64-256 px; larger pictures come from stacking stages, each taking
the previous stage's image up 4x with new detail. The generator is built to run in real time
at batch 1 on a CPU: every convolution works at the *input* resolution, the upscale is a
pixel shuffle (sub-pixel convolution) at the very end, and the network only predicts a
residual over a bilinear upscale of its input, so an untrained or barely trained stage already
shows a sensible picture and training spends its capacity on detail. Sizes are parameters, so
the same code makes the 64->256 and the 256->1024 stage: it is fully convolutional, and the
image size is only fixed when a stage is exported to ONNX.

Images are NCHW in -1..1 on both sides, the convention of the DCGAN stage before it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from export.stage_config import RefineConfig


class ResidualBlock(nn.Module):
    """conv-ReLU-conv with a skip connection and no normalisation: batch norm would tie the
    exported stage to training statistics and shift colours when batches are small."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class RefineGenerator(nn.Module):
    """(N, 3, h, w) in -1..1 -> (N, 3, scale*h, scale*w) in -1..1."""

    def __init__(self, config: RefineConfig) -> None:
        super().__init__()
        if config.scale < 2:
            raise ValueError(f"scale must be at least 2, got {config.scale}")
        self.config = config
        self.head = nn.Conv2d(3, config.width, 3, padding=1)
        self.body = nn.Sequential(*(ResidualBlock(config.width) for _ in range(config.blocks)))
        self.tail = nn.Conv2d(config.width, 3 * config.scale**2, 3, padding=1)
        self.shuffle = nn.PixelShuffle(config.scale)
        # The residual starts at zero: the untrained stage is exactly bilinear upscaling.
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = self.head(image)
        features = features + self.body(F.relu(features))
        detail = self.shuffle(self.tail(features))
        base = upscale(image, self.config.scale)
        return torch.clamp(base + detail, -1.0, 1.0)


def upscale(image: torch.Tensor, scale: int) -> torch.Tensor:
    """Bilinear, not bicubic, upscaling as the base the detail is added to: ONNX Runtime's
    cubic Resize takes 20 ms for 64->256 on a 2-core CPU, its linear one 0.3 ms, and the
    convolutions learn whatever sharpening bicubic would have added."""
    return F.interpolate(image, scale_factor=scale, mode="bilinear", align_corners=False)


class RefineDiscriminator(nn.Module):
    """A conditional patch discriminator: it sees the large image next to the bilinear upscale
    of the small one it was drawn from, so it judges detail *consistent with the input*, not
    just plausible texture. Its output is one logit per patch; more layers for larger
    images keep its receptive field a fixed fraction of the picture."""

    def __init__(self, config: RefineConfig) -> None:
        super().__init__()
        self.scale = config.scale
        width = config.disc_width
        layers: list[nn.Module] = [nn.Conv2d(6, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        for _ in range(2):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1), nn.LeakyReLU(0.2)]
            width *= 2
        layers += [nn.Conv2d(width, 1, 3, padding=1)]
        self.main = nn.Sequential(*layers)

    def forward(self, large: torch.Tensor, small: torch.Tensor) -> torch.Tensor:
        return self.main(torch.cat([large, upscale(small, self.scale)], dim=1))
