"""Offline rendering of a show to numbered PNG frames.

Frames are computed for the times ``i / fps`` synchronously (no worker, no clock), so the
same show and seed give the same frames on every run: for previews, for a video made with
ffmpeg, and to compare two machines. A render plays the show as nobody steers it: its scenes,
playlist and fades, without OSC.

A folder of frames is read by tools that trust every ``frame_*.png`` in it, so a render never
leaves a frame half written under its name (each is written beside it and renamed when whole,
even when the render is killed or the disk fills), and never mixes its frames with those of an
earlier render (a folder that is not empty is refused unless ``--force`` clears the old frames).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pygame

from installation.display import fit_rect
from installation.display.textures import frame_surface
from installation.engine.paint import paint
from installation.engine.pipeline import Pipeline
from installation.errors import UserError, reason
from installation.files import write_atomic
from installation.progress import Progress
from installation.score.conductor import Conductor

log = logging.getLogger(__name__)

BATCH = 8
#: What an earlier render left: its frames, and the temporary file of a frame it was writing
#: when it was killed (see installation.files).
OLD_FRAMES = ("frame_*.png", ".frame_*.png.*.tmp")


class FrameFolder:
    """The ``--out`` folder of a render, checked before any model is loaded so that a mistake
    costs nothing; every problem with it is a ``UserError`` naming the path."""

    def __init__(self, path: Path, force: bool) -> None:
        self.path = path
        try:
            if path.exists() and not path.is_dir():
                raise UserError(f"--out {path}: exists and is not a folder")
            entries = list(path.iterdir()) if path.is_dir() else []
            self.old = sorted({p for pattern in OLD_FRAMES for p in path.glob(pattern)})
        except OSError as exc:
            raise UserError(f"--out {path}: cannot read the folder: {reason(exc)}") from None
        if entries and not force:
            raise UserError(
                f"--out {path}: not empty ({len(entries)} entries); render into a new or empty "
                "folder, or pass --force to replace the frame_*.png files in it"
            )

    def open(self) -> None:
        """Create the folder, removing the frames of an earlier render (``--force``)."""
        for old in self.old:
            try:
                old.unlink(missing_ok=True)
            except OSError as exc:
                raise UserError(f"{old}: cannot remove an old frame: {reason(exc)}") from None
        if self.old:
            log.info(
                "--force: removed %d files of an earlier render from %s", len(self.old), self.path
            )
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"--out {self.path}: cannot create the folder: {reason(exc)}") from None

    def write(self, index: int, picture: pygame.Surface) -> None:
        """Encode in memory, then write whole or not at all: pygame writing to a path reports a
        full disk as an opaque ``pygame.error`` and leaves the truncated file behind."""
        encoded = io.BytesIO()
        pygame.image.save(picture, encoded, "png")
        path = self.path / f"frame_{index:06d}.png"
        try:
            write_atomic(path, encoded.getvalue())
        except OSError as exc:
            raise UserError(f"{path}: cannot write the frame: {reason(exc)}") from None


def render(
    pipeline: Pipeline,
    conductor: Conductor,
    seconds: float,
    fps: float,
    out: FrameFolder,
    size: tuple[int, int] | None = None,
) -> int:
    """Write ``frame_000000.png`` ... into ``out``; returns the number of frames written.

    ``size`` scales each frame (aspect kept, on black) to that width and height.
    """
    out.open()
    count = max(1, round(seconds * fps))
    progress = Progress(f"rendering {out.path}", count)
    try:
        for start in range(0, count, BATCH):
            times = [i / fps for i in range(start, min(count, start + BATCH))]
            images = paint(pipeline, conductor.plans_at(times))
            for offset, (t, image) in enumerate(zip(times, images, strict=True)):
                picture = _dimmed(image, conductor.tick(t))
                out.write(start + offset, _sized(picture, size))
            progress.advance(len(times))
    finally:
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
