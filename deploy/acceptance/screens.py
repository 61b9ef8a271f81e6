"""Is a face on the kiosk's screen, and does it move? Figures from a series of screenshots.

Run by deploy/acceptance.sh inside the booted root, with the show's own numpy and pygame (the
root has nothing else to read a PNG with):

    screens.py SMALL SHOT SHOT...

prints the mean brightness of the darkest shot and the largest mean absolute difference
between the first shot and a later one, both on the 0-255 scale of one colour channel, and
writes the first shot scaled to 640 pixels wide to SMALL, for docs/kiosk.md. The largest
difference, not the last: a show holds each face still for a while, so two shots can match.
"""

from __future__ import annotations

import sys

import numpy as np
import pygame

SMALL_WIDTH = 640


def pixels(surface: pygame.Surface) -> np.ndarray:
    return pygame.surfarray.array3d(surface).astype(np.float32)


def main(argv: list[str]) -> int:
    small, *paths = argv[1:]
    shots = [pygame.image.load(path) for path in paths]
    first, *later = (pixels(shot) for shot in shots)
    darkest = min(first.mean(), *(shot.mean() for shot in later))
    change = max(np.abs(first - shot).mean() for shot in later)
    print(f"{darkest:.1f} {change:.2f}")
    width, height = shots[0].get_size()
    size = (SMALL_WIDTH, round(height * SMALL_WIDTH / width))
    pygame.image.save(pygame.transform.smoothscale(shots[0], size), small)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
