"""Does a refinement stage beat bicubic upscaling? PSNR and SSIM on held-out photographs.

Each held-out photograph is cut into tiles of the stage's output size (overlapping by half);
every tile is degraded ``--repeats`` times exactly as in training (``export.degrade``, seeded,
so every run compares the same inputs), then brought back up by bicubic and bilinear
interpolation and by the stage, run from its ONNX file by ONNX Runtime as the gallery runs it.
Every result is rounded to 8 bits, as the screen shows it, before it is compared with the
original tile. The procedure is ``export.figures``', the one training reports every epoch.
The issue's bar: the stage beats bicubic by at least 0.5 dB.

    python benchmarks/refine_psnr.py bundles/faces-256 /tmp/photos/heldout
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from export.figures import baselines, holdout_set, upscale_figures
from export.image_folder import load_images
from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.bundle import load_bundle
from installation.engine.convention import from_unit
from installation.engine.pipeline import Pipeline

MARGIN_DB = 0.5


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
    pipeline = Pipeline.load(bundle, OnnxRuntimeBackend(CPU, threads=0))
    spec = bundle.stages[args.stage]
    assert spec.input_layout is not None and spec.input_range is not None
    size, _ = spec.output_size
    scale = size // bundle.stages[args.stage - 1].output_size[0]
    holdout = holdout_set(load_images(args.photos, size), size, scale, args.seed, args.repeats)

    def stage(small: torch.Tensor) -> torch.Tensor:
        batch = from_unit(small.numpy(), spec.input_layout, spec.input_range)
        return torch.from_numpy(pipeline.run_stage(args.stage, batch))

    figures = baselines(holdout) | {"stage": upscale_figures(stage, holdout)}
    methods = ("bilinear", "bicubic", "stage")
    print(f"{spec.name} ({spec.path.name}) against interpolation, x{scale}, {size} px tiles")
    print(
        f"{'':>30} {'PSNR dB':-^37} {'SSIM':-^26}\n"
        f"{'photo':>24} {'tiles':>5} {'bilinear':>9} {'bicubic':>9} {'stage':>9} {'gain':>7} "
        f"{'bilinear':>8} {'bicubic':>8} {'stage':>8}"
    )
    for key in [*holdout.photos, "all"]:
        tiles = len(holdout.photo_of_tile) if key == "all" else holdout.photo_of_tile.count(key)
        psnr = [figures[method][key]["psnr"] for method in methods]
        ssim = [figures[method][key]["ssim"] for method in methods]
        print(
            f"{'all tiles' if key == 'all' else key:>24} {tiles:>5} "
            + " ".join(f"{value:>9.2f}" for value in psnr)
            + f" {psnr[2] - psnr[1]:>+7.2f} "
            + " ".join(f"{value:>8.4f}" for value in ssim)
        )
    gain = figures["stage"]["all"]["psnr"] - figures["bicubic"]["all"]["psnr"]
    verdict = "beats" if gain >= MARGIN_DB else "does NOT beat"
    print(f"the stage {verdict} bicubic by the required {MARGIN_DB} dB (gain {gain:+.2f} dB)")
    return 0 if gain >= MARGIN_DB else 1


if __name__ == "__main__":
    sys.exit(main())
