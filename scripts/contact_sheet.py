"""Render the README's contact sheet: rows of imaginary faces, each row one morph.

Every picture comes from the runtime itself (the default show's bundle and first scene, on
ONNX Runtime), so the sheet shows what a visitor sees, not a hand-picked illustration.
Run: python scripts/contact_sheet.py [SHOW] --out docs/contact-sheet.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pygame

from installation.display.textures import frame_surface
from installation.engine.paint import paint
from installation.session import open_show

GAP = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("show", type=Path, nargs="?", help="show file (default: the default show)")
    parser.add_argument("--out", type=Path, default=Path("docs/contact-sheet.png"))
    parser.add_argument("--rows", type=int, default=4, help="morphs, one per row")
    parser.add_argument("--columns", type=int, default=7, help="steps of each morph")
    parser.add_argument("--cell", type=int, default=160, help="size of each face in pixels")
    args = parser.parse_args()

    show, pipeline, conductor = open_show(args.show)
    scene = show.scenes[0]
    period = scene.hold + scene.morph
    steps = [scene.hold + scene.morph * c / (args.columns - 1) for c in range(args.columns)]
    times = [row * period + step for row in range(args.rows) for step in steps]
    images = paint(pipeline, conductor.plans_at(times))

    cell = args.cell
    sheet = pygame.Surface((GAP + args.columns * (cell + GAP), GAP + args.rows * (cell + GAP)))
    sheet.fill((0, 0, 0))
    for index, image in enumerate(images):
        row, column = divmod(index, args.columns)
        face = pygame.transform.smoothscale(frame_surface(image), (cell, cell))
        sheet.blit(face, (GAP + column * (cell + GAP), GAP + row * (cell + GAP)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pygame.image.save(sheet, str(args.out))
    print(f"wrote {args.out}: {args.rows} morphs of {args.columns} steps")


if __name__ == "__main__":
    main()
