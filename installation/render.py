"""Offline rendering of a show to numbered PNG frames.

Frames are computed for the times ``i / fps`` synchronously (no worker, no clock), so the
same show and seed give the same frames on every run: for previews, for a video made with
ffmpeg, and to compare two machines. A render plays the show as nobody steers it: its scenes,
playlist and fades, without OSC.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pygame

from installation.conductor import Conductor
from installation.display import fit_rect
from installation.display.textures import frame_surface
from installation.paint import paint
from installation.pipeline import Pipeline
from installation.progress import Progress

BATCH = 8


def render(
    pipeline: Pipeline,
    conductor: Conductor,
    seconds: float,
    fps: float,
    out: Path,
    size: tuple[int, int] | None = None,
) -> int:
    """Write ``frame_000000.png`` ... into ``out``; returns the number of frames written.

    ``size`` scales each frame (aspect kept, on black) to that width and height.
    """
    out.mkdir(parents=True, exist_ok=True)
    count = max(1, round(seconds * fps))
    progress = Progress(f"rendering {out}", count)
    for start in range(0, count, BATCH):
        times = [i / fps for i in range(start, min(count, start + BATCH))]
        images = paint(pipeline, conductor.plans_at(times))
        for offset, (t, image) in enumerate(zip(times, images, strict=True)):
            picture = _dimmed(image, conductor.tick(t))
            pygame.image.save(_sized(picture, size), str(out / f"frame_{start + offset:06d}.png"))
        progress.advance(len(times))
    progress.finish()
    return count


def _dimmed(image: np.ndarray, brightness: float) -> np.ndarray:
    """The frame as the screen shows it during a fade (rounded like the display's 0..255)."""
    level = round(min(max(brightness, 0.0), 1.0) * 255)
    if level == 255:
        return image
    return ((image.astype(np.uint16) * level + 127) // 255).astype(np.uint8)


def _sized(image: np.ndarray, size: tuple[int, int] | None) -> pygame.Surface:
    surface = frame_surface(image)
    if size is None or size == surface.get_size():
        return surface
    canvas = pygame.Surface(size)
    x, y, w, h = fit_rect(*surface.get_size(), *size)
    canvas.blit(pygame.transform.smoothscale(surface, (w, h)), (x, y))
    return canvas
