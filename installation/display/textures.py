"""Frame uploads to GPU textures, bounded so that weeks of uptime allocate nothing new.

A crossfade shows the same two frames for many screen refreshes, so each frame is uploaded
once and kept by its serial. The oldest texture is refilled with the next frame when it has
the right size, so a running show stops creating textures after its first few frames.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pygame
from pygame._sdl2.video import Renderer, Texture

from installation.engine.frames import Frame


def frame_surface(image: np.ndarray) -> pygame.Surface:
    """Wrap an H x W x 3 uint8 RGB array as a surface without converting its pixels."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"frame image must be H x W x 3 uint8, got {image.shape} {image.dtype}")
    height, width = image.shape[:2]
    return pygame.image.frombuffer(np.ascontiguousarray(image), (width, height), "RGB")


class TextureCache:
    """At most ``capacity`` streaming textures, keyed by frame serial, least recently used
    evicted first.
    """

    def __init__(self, renderer: Renderer, capacity: int = 4) -> None:
        if capacity < 2:
            raise ValueError("a crossfade needs two textures at once: capacity must be >= 2")
        self._renderer = renderer
        self._capacity = capacity
        self._textures: OrderedDict[int, Texture] = OrderedDict()

    def __len__(self) -> int:
        return len(self._textures)

    def texture_for(self, frame: Frame) -> Texture:
        """Return the texture holding ``frame``, uploading it only if it is not cached."""
        texture = self._textures.get(frame.serial)
        if texture is not None:
            self._textures.move_to_end(frame.serial)
            return texture
        surface = frame_surface(frame.image)
        size = surface.get_size()
        spare = None
        if len(self._textures) >= self._capacity:
            spare = self._textures.popitem(last=False)[1]
        if spare is None or (spare.width, spare.height) != size:
            spare = Texture(self._renderer, size, streaming=True)
        spare.update(surface)
        self._textures[frame.serial] = spare
        return spare

    def clear(self) -> None:
        """Drop every texture; needed before the renderer that owns them goes away."""
        self._textures.clear()
