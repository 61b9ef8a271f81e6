"""Image files the show uses, read into arrays, and the largest picture it sends out.

The portrait layout's background image is checked when the show loads (``score.show``) and
drawn by the GL presenter (``display.gl``): reading it belongs to neither, so it lives here,
below both; so does ``MAX_SIZE``, which the show file's ``[ndi]`` and the command line's
sizes are checked against before ``installation.output`` makes such pictures. pygame, which
decodes the file, is imported only when an image is read, so that loading a show stays
light.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from installation.errors import UserError

#: The largest picture that leaves the show (``--size``, ``--record-size``, NDI's ``size``):
#: 4K UHD, the most that players, editors and NDI receivers commonly take.
MAX_SIZE = (3840, 2160)


def read_image(path: Path) -> np.ndarray:
    """The image at ``path`` as H x W x 3 uint8 RGB; a file that cannot be read or decoded is
    a UserError whose message says why (the caller names the file and key)."""
    import pygame

    try:
        surface = pygame.image.load(str(path))
    except (OSError, pygame.error) as exc:
        raise UserError(f"cannot read {path} as an image ({exc})") from exc
    width, height = surface.get_size()
    pixels = pygame.image.tobytes(surface, "RGB")
    return np.frombuffer(pixels, dtype=np.uint8).reshape(height, width, 3)
