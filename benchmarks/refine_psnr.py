"""Does a refinement stage beat bicubic upscaling? PSNR on held-out photographs.

Each held-out photograph is cut into tiles of the stage's output size (overlapping by half);
every tile is degraded ``--repeats`` times exactly as in training (``export.degrade``, seeded,
so every run compares the same inputs), then brought back up by bicubic and bilinear
interpolation and by the stage, run from its ONNX file by ONNX Runtime as the gallery runs it.
Every result is rounded to 8 bits, as the screen shows it, before PSNR against the original
tile. The issue's bar: the stage beats bicubic by at least 0.5 dB.

    python benchmarks/refine_psnr.py bundles/faces-256 /tmp/photos/heldout
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from export.degrade import degrade
from export.image_folder import load_images
from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.bundle import load_bundle
from installation.engine.convention import from_unit, to_unit

MARGIN_DB = 0.5


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two 0..1 images after rounding both to 8 bits."""
    a8, b8 = (torch.round(x.clamp(0, 1) * 255) for x in (a, b))
    mse = float(torch.mean((a8 - b8) ** 2))
    return 10 * float(np.log10(255**2 / mse)) if mse > 0 else float("inf")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path, help="bundle folder")
    parser.add_argument("photos", type=Path, help="folder of held-out photographs")
    parser.add_argument("--stage", type=int, default=1, help="index of the stage (default: 1)")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the degradations")
    parser.add_argument(
        "--repeats", type=int, default=4, help="degradations drawn per tile (default: 4)"
    )
    args = parser.parse_args()

    bundle = load_bundle(args.bundle)
    spec = bundle.stages[args.stage]
    assert spec.input_layout is not None and spec.input_range is not None
    model = OnnxRuntimeBackend(CPU, threads=0).load(spec.path)
    size, _ = spec.output_size
    scale = size // bundle.stages[args.stage - 1].output_size[0]
    photos = load_images(args.photos, size)
    generator = torch.Generator().manual_seed(args.seed)

    print(f"{spec.name} ({spec.path.name}) against interpolation, x{scale}, {size} px tiles")
    print(f"{'photo':>24} {'tiles':>5} {'bilinear':>9} {'bicubic':>9} {'stage':>9} {'gain':>7}")
    totals: list[list[float]] = []
    for name, image in zip(photos.names, photos.images, strict=True):
        tiles = image.float().unfold(1, size, size // 2).unfold(2, size, size // 2)
        tiles = (
            tiles.permute(1, 2, 0, 3, 4).reshape(-1, 3, size, size).repeat(args.repeats, 1, 1, 1)
        )
        tiles = tiles / 255
        small = degrade(tiles, scale, generator)
        scores = []
        for tile, low in zip(tiles, small, strict=True):
            bilinear = F.interpolate(low[None], scale_factor=scale, mode="bilinear")
            bicubic = F.interpolate(low[None], scale_factor=scale, mode="bicubic")
            output = model.run(from_unit(low[None].numpy(), spec.input_layout, spec.input_range))
            refined = torch.from_numpy(to_unit(output, spec.layout, spec.range))
            scores.append([psnr(x, tile[None]) for x in (bilinear, bicubic, refined)])
        mean = np.mean(scores, axis=0)
        totals += scores
        gain = mean[2] - mean[1]
        print(
            f"{name:>24} {len(scores):>5} {mean[0]:>9.2f} {mean[1]:>9.2f} {mean[2]:>9.2f} "
            f"{gain:>+7.2f}"
        )
    mean = np.mean(totals, axis=0)
    gain = mean[2] - mean[1]
    print(
        f"{'all tiles':>24} {len(totals):>5} {mean[0]:>9.2f} {mean[1]:>9.2f} {mean[2]:>9.2f} "
        f"{gain:>+7.2f}"
    )
    verdict = "beats" if gain >= MARGIN_DB else "does NOT beat"
    print(f"the stage {verdict} bicubic by the required {MARGIN_DB} dB (gain {gain:+.2f} dB)")
    return 0 if gain >= MARGIN_DB else 1


if __name__ == "__main__":
    sys.exit(main())
