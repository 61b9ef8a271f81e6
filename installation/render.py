"""Offline rendering of a show: numbered PNG frames into a folder, or a video file.

Frames are computed for the times ``i / fps`` synchronously (no worker, no clock), so the
same show and seed give the same frames on every run: for the artist's portfolio video, for
previews, and to compare two machines. A render plays the show as nobody steers it: its
scenes, playlist and fades, without OSC. PNG frames and video take the same path (dimmed and
scaled by installation.output.compose), so they hold the same pictures; ``--out`` ending in
``.mp4``, ``.mkv`` or ``.mov`` makes a video (installation.output.video_file), anything else
is a folder of frames.

A folder of frames is read by tools that trust every ``frame_*.png`` in it, so a render never
leaves a frame half written under its name (each is written beside it and renamed when whole,
even when the render is killed or the disk fills), and never mixes its frames with those of an
earlier render (a folder that is not empty is refused unless ``--force`` clears the old frames).
A video is likewise written under a temporary name and renamed when whole.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pygame

from installation.display.textures import frame_surface
from installation.engine.paint import paint
from installation.engine.pipeline import Pipeline
from installation.errors import UserError, reason
from installation.files import write_atomic
from installation.output import RENDER_PRESET
from installation.output.compose import dimmed, fit
from installation.output.video_file import VideoFile, VideoTarget
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

    def write(self, index: int, picture: np.ndarray) -> None:
        """Encode in memory, then write whole or not at all: pygame writing to a path reports a
        full disk as an opaque ``pygame.error`` and leaves the truncated file behind."""
        encoded = io.BytesIO()
        pygame.image.save(frame_surface(picture), encoded, "png")
        path = self.path / f"frame_{index:06d}.png"
        try:
            write_atomic(path, encoded.getvalue())
        except OSError as exc:
            raise UserError(f"{path}: cannot write the frame: {reason(exc)}") from None


@dataclass
class Rendered:
    """What a render wrote, and where its time went (seconds): ``inference`` runs the
    pipeline, ``scaling`` dims and scales, ``writing`` encodes and writes (PNG or video)."""

    frames: int
    seconds: float = 0.0
    inference: float = 0.0
    scaling: float = 0.0
    writing: float = 0.0

    def summary(self) -> str:
        """``300 frames in 12.0 s (25.0 frames/s; inference 70%, scaling 10%, writing 20%)``."""
        total = self.seconds or 1.0
        shares = ", ".join(
            f"{name} {part / total:.0%}"
            for name, part in (
                ("inference", self.inference),
                ("scaling", self.scaling),
                ("writing", self.writing),
            )
        )
        rate = self.frames / total
        return f"{self.frames} frames in {self.seconds:.1f} s ({rate:.1f} frames/s; {shares})"


def render(
    pipeline: Pipeline,
    conductor: Conductor,
    seconds: float,
    fps: float,
    out: FrameFolder | VideoTarget,
    size: tuple[int, int] | None = None,
) -> Rendered:
    """Write ``frame_000000.png`` ... into a folder, or a video file, for ``seconds`` of show.

    ``size`` scales each frame (aspect kept, on black) to that width and height.
    """
    count = max(1, round(seconds * fps))
    done = Rendered(count)
    video: VideoFile | None = None
    if isinstance(out, VideoTarget):
        video = out.open(fps, RENDER_PRESET)
    else:
        out.open()
    progress = Progress(f"rendering {out.path}", count, "frames")
    started = time.perf_counter()
    try:
        for start in range(0, count, BATCH):
            times = [i / fps for i in range(start, min(count, start + BATCH))]
            begun = time.perf_counter()
            images = paint(pipeline, conductor.plans_at(times))
            done.inference += time.perf_counter() - begun
            for offset, (t, image) in enumerate(zip(times, images, strict=True)):
                begun = time.perf_counter()
                picture = fit(dimmed(image, conductor.tick(t)), size)
                scaled = time.perf_counter()
                if video is not None:
                    video.write(picture, t)
                else:
                    out.write(start + offset, picture)
                done.scaling += scaled - begun
                done.writing += time.perf_counter() - scaled
            progress.advance(len(times))
        if video is not None:
            begun = time.perf_counter()
            video.close()
            done.writing += time.perf_counter() - begun
    except BaseException:
        if video is not None:
            video.abort()
        raise
    finally:
        progress.finish()
    done.seconds = time.perf_counter() - started
    return done
