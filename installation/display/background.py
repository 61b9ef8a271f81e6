"""The background image of the portrait layout, read once, checked when the show loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pygame

from installation.errors import UserError


def read_background(path: Path) -> np.ndarray:
    """The image at ``path`` as H x W x 3 uint8 RGB; a file that cannot be read or decoded is
    a UserError whose message says why (the caller names the file and key)."""
    try:
        surface = pygame.image.load(str(path))
    except (OSError, pygame.error) as exc:
        raise UserError(f"cannot read {path} as an image ({exc})") from exc
    width, height = surface.get_size()
    pixels = pygame.image.tobytes(surface, "RGB")
    return np.frombuffer(pixels, dtype=np.uint8).reshape(height, width, 3)
