"""Frame uploads to GPU textures, bounded so that weeks of uptime allocate nothing new.

A crossfade shows the same two frames for many screen refreshes, so each frame is uploaded
once and kept by its serial. The oldest texture is refilled with the next frame when it has
the right size, so a running show stops creating textures after its first few frames.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

import numpy as np
import pygame
from pygame._sdl2.video import Renderer, Texture

from installation.engine.frames import Frame

T = TypeVar("T")


def frame_surface(image: np.ndarray) -> pygame.Surface:
    """Wrap an H x W x 3 uint8 RGB array as a surface without converting its pixels."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"frame image must be H x W x 3 uint8, got {image.shape} {image.dtype}")
    height, width = image.shape[:2]
    return pygame.image.frombuffer(np.ascontiguousarray(image), (width, height), "RGB")


def tint(texture: Texture, blend_mode: int, alpha: int, level: int) -> None:
    """Set ``texture`` to draw over what is there by ``blend_mode`` at ``alpha`` (0..255, the
    crossfade's weight), every channel scaled by ``level`` (0..255, the brightness)."""
    texture.blend_mode = blend_mode
    texture.alpha = alpha
    texture.color = (level, level, level, 255)


class RecycledTextures(Generic[T]):
    """At most ``capacity`` textures, keyed by frame serial, least recently used refilled
    first; the SDL and GL presenters each keep their own kind of texture this way."""

    def __init__(self, capacity: int = 4) -> None:
        if capacity < 2:
            raise ValueError("a crossfade needs two textures at once: capacity must be >= 2")
        self._capacity = capacity
        self._textures: OrderedDict[int, T] = OrderedDict()

    def __len__(self) -> int:
        return len(self._textures)

    def _held(self, serial: int) -> T | None:
        """The texture holding frame ``serial``, now the most recently used; None if none."""
        texture = self._textures.get(serial)
        if texture is not None:
            self._textures.move_to_end(serial)
        return texture

    def _spare(self) -> T | None:
        """The least recently used texture, taken out to be refilled, once all are in use."""
        if len(self._textures) < self._capacity:
            return None
        return self._textures.popitem(last=False)[1]

    def _keep(self, serial: int, texture: T) -> T:
        self._textures[serial] = texture
        return texture


class TextureCache(RecycledTextures[Texture]):
    """SDL's streaming textures for the frames on screen."""

    def __init__(self, renderer: Renderer, capacity: int = 4) -> None:
        super().__init__(capacity)
        self._renderer = renderer

    def texture_for(self, frame: Frame) -> Texture:
        """Return the texture holding ``frame``, uploading it only if it is not cached."""
        texture = self._held(frame.serial)
        if texture is not None:
            return texture
        surface = frame_surface(frame.image)
        size = surface.get_size()
        spare = self._spare()
        if spare is None or (spare.width, spare.height) != size:
            spare = Texture(self._renderer, size, streaming=True)
        spare.update(surface)
        return self._keep(frame.serial, spare)

    def clear(self) -> None:
        """Drop every texture; needed before the renderer that owns them goes away."""
        self._textures.clear()
