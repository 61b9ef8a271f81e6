"""Offline rendering of a show to numbered PNG frames.

Frames are computed for the times ``i / fps`` synchronously (no worker, no clock), so the
same show and seed give the same frames on every run: for previews, for a video made with
ffmpeg, and to compare two machines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pygame

from installation.display import fit_rect
from installation.display.textures import frame_surface
from installation.pipeline import Pipeline
from installation.progress import Progress
from installation.trajectory import Trajectory

BATCH = 8


def render(
    pipeline: Pipeline,
    trajectory: Trajectory,
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
        images = pipeline.run(trajectory.latents_at(times))
        for offset, image in enumerate(images):
            pygame.image.save(_sized(image, size), str(out / f"frame_{start + offset:06d}.png"))
        progress.advance(len(times))
    progress.finish()
    return count


def _sized(image: np.ndarray, size: tuple[int, int] | None) -> pygame.Surface:
    surface = frame_surface(image)
    if size is None or size == surface.get_size():
        return surface
    canvas = pygame.Surface(size)
    x, y, w, h = fit_rect(*surface.get_size(), *size)
    canvas.blit(pygame.transform.smoothscale(surface, (w, h)), (x, y))
    return canvas
