"""Side by side: faces from a bundle's first stage brought up 4x by bicubic interpolation
(left) and by the bundle's refinement stage (right), for docs/refine-side-by-side.png.

Everything runs as in the gallery (the bundle's ONNX files on ONNX Runtime, through the
runtime's Pipeline); bicubic is Pillow's, the resize an artist's image editor would offer.

    python scripts/refine_side_by_side.py bundles/faces-256 docs/refine-side-by-side.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.bundle import load_bundle
from installation.engine.pipeline import Pipeline
from installation.score.trajectory import keyframe

HEADER = 22


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("out", type=Path, help="PNG to write")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the faces")
    parser.add_argument("--faces", type=int, default=3, help="number of faces (rows)")
    args = parser.parse_args()

    bundle = load_bundle(args.bundle)
    pipeline = Pipeline.load(bundle, OnnxRuntimeBackend(CPU, threads=0))
    latents = np.stack(
        [
            keyframe(args.seed, i, bundle.latent_size, bundle.latent_distribution)
            for i in range(args.faces)
        ]
    )
    small = pipeline.run(latents, stages=1)
    refined = pipeline.run(latents)
    size = refined.shape[1]
    sheet = Image.new("RGB", (2 * size, HEADER + args.faces * size), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((6, 5), f"bicubic {small.shape[1]} -> {size} px", fill="black")
    draw.text((size + 6, 5), f"{bundle.stages[-1].name} (this bundle)", fill="black")
    for row, (face, ours) in enumerate(zip(small, refined, strict=True)):
        bicubic = Image.fromarray(face).resize((size, size), Image.Resampling.BICUBIC)
        sheet.paste(bicubic, (0, HEADER + row * size))
        sheet.paste(Image.fromarray(ours), (size, HEADER + row * size))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
