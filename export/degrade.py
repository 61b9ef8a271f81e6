"""Make a refinement stage's training inputs: large crops degraded the way the previous
stage's pictures look.

A stage learns to undo exactly the damage it is shown, so the damage must resemble what it
meets in the gallery: the previous GAN's output is soft (blurred), small (downscaled), grainy
(noise) and sometimes blocky (GAN upsampling artefacts look much like mild JPEG). Every
parameter is drawn per image from a seeded generator, so a training step, and the benchmark's
held-out set, are reproducible. Resizing and blurring use ``torch.nn.functional`` only, so they
run on the training device; only the small JPEG round trip goes through the CPU.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F


@dataclass(frozen=True)
class Degradation:
    """Ranges the per-image parameters are drawn from (uniformly)."""

    blur_sigma: tuple[float, float] = (0.3, 1.6)
    """Gaussian blur before downscaling, in pixels of the large image."""
    noise_sigma: tuple[float, float] = (0.0, 0.03)
    """Gaussian noise after downscaling, on the 0..1 scale."""
    jpeg_quality: tuple[int, int] = (60, 95)
    jpeg_probability: float = 0.5


def degrade(
    large: torch.Tensor, scale: int, generator: torch.Generator, spec: Degradation = Degradation()
) -> torch.Tensor:
    """(N, 3, H, W) images in 0..1 -> (N, 3, H/scale, W/scale) degraded images in 0..1."""
    if large.shape[-1] % scale or large.shape[-2] % scale:
        raise ValueError(f"image size {tuple(large.shape[-2:])} is not a multiple of {scale}")
    return torch.cat([_degrade_one(item[None], scale, generator, spec) for item in large])


def _uniform(generator: torch.Generator, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return low + (high - low) * float(torch.rand((), generator=generator))


def _degrade_one(
    image: torch.Tensor, scale: int, generator: torch.Generator, spec: Degradation
) -> torch.Tensor:
    image = gaussian_blur(image, _uniform(generator, spec.blur_sigma))
    small = F.interpolate(
        image, scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False
    )
    sigma = _uniform(generator, spec.noise_sigma)
    # Drawn on the CPU, where the seeded generator lives, so every device sees the same noise.
    small = small + sigma * torch.randn(small.shape, generator=generator).to(small.device)
    small = small.clamp(0.0, 1.0)
    if float(torch.rand((), generator=generator)) < spec.jpeg_probability:
        low, high = spec.jpeg_quality
        quality = int(torch.randint(low, high + 1, (), generator=generator))
        small = jpeg(small, quality)
    return small


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) with edge pixels repeated at the borders."""
    radius = max(1, int(3 * sigma + 0.5))
    offsets = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = image.shape[1]
    padded = F.pad(image, (radius, radius, radius, radius), mode="replicate")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)


def jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    """Round-trip one (1, 3, H, W) image in 0..1 through Pillow's JPEG encoder."""
    pixels = (image[0].permute(1, 2, 0).cpu().numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    tensor = torch.from_numpy(decoded.astype(np.float32) / 255).permute(2, 0, 1)[None]
    return tensor.to(image.device)
