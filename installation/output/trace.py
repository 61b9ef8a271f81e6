"""The frame trace, a test hook: which frame each tick presented, and when, for lockstep tests.

Set ``INSTALLATION_FRAME_TRACE=PATH`` and every tick the display loop presents is noted: the
true wall time in nanoseconds (``time.time_ns()``, without the injected
``INSTALLATION_CLOCK_OFFSET``: the test compares PCs on the one real clock), the frame index
(presented show time x fps), and the scene number, seed and brightness the conductor had for
that time. Several instances' traces then say which frame each showed at the same moment
(tests/test_sync_room.py, benchmarks/sync_room.py).

The loop only writes one row into a fixed ring in memory (the last ``CAPACITY`` ticks, about
55 minutes at 60 fps). The trace's own thread saves the ring to PATH every second and at the
stop, so an instance that is killed leaves what it showed up to its last second; the file is a
NumPy ``.npy`` of ``RECORD`` rows in the order they were presented, replaced atomically.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from installation.files import write_atomic

log = logging.getLogger(__name__)

TRACE_ENV = "INSTALLATION_FRAME_TRACE"
#: Ticks kept: about 55 minutes at 60 fps, 6 MB.
CAPACITY = 200_000
#: Seconds between saves of the ring.
SAVE_INTERVAL = 1.0
RECORD = np.dtype(
    [
        ("wall_ns", "<i8"),
        ("frame", "<i8"),
        ("scene", "<i4"),
        ("seed", "<i8"),
        ("brightness", "<f4"),
    ]
)

#: Scene number (from 1), seed and brightness at a show time: ``Conductor.scene_at``.
SceneAt = Callable[[float], tuple[int, int, float]]


class FrameTrace:
    """The ring of presented ticks and the thread that saves it to ``path``; ``record`` is
    the loop's, ``close`` saves one last time and stops the thread."""

    def __init__(self, path: Path, scene_at: SceneAt, fps: float, capacity: int = CAPACITY) -> None:
        self.path = path
        self._scene_at = scene_at
        self._fps = fps
        self._rows = np.zeros(capacity, RECORD)
        self._count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._save_often, name="frame trace", daemon=True)
        self._thread.start()
        log.warning("%s=%s: every presented frame is traced (a test hook)", TRACE_ENV, path)

    def record(self, now: float) -> None:
        """The loop presented show time ``now``: one row, no allocation beyond it, no I/O."""
        wall_ns = time.time_ns()
        scene, seed, brightness = self._scene_at(now)
        self._rows[self._count % len(self._rows)] = (
            wall_ns,
            round(now * self._fps),
            scene,
            seed,
            brightness,
        )
        self._count += 1  # after the row: the saving thread copies only complete rows

    def rows(self) -> np.ndarray:
        """The ticks kept, oldest first (a copy)."""
        count, capacity = self._count, len(self._rows)
        if count <= capacity:
            return self._rows[:count].copy()
        start = count % capacity
        return np.concatenate((self._rows[start:], self._rows[:start]))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._save()

    def _save_often(self) -> None:
        while not self._stop.wait(SAVE_INTERVAL):
            self._save()

    def _save(self) -> None:
        data = io.BytesIO()
        np.save(data, self.rows(), allow_pickle=False)
        try:
            write_atomic(self.path, data.getvalue())
        except OSError as exc:
            log.error("%s: the frame trace could not be written: %s", self.path, exc.strerror)


def frame_trace(
    scene_at: SceneAt, fps: float, environ: Mapping[str, str] = os.environ
) -> FrameTrace | None:
    """The trace the test hook asks for, None without it."""
    path = environ.get(TRACE_ENV, "")
    return FrameTrace(Path(path), scene_at, fps) if path else None


def read_trace(path: Path) -> np.ndarray:
    """A saved trace's rows (``RECORD``)."""
    return np.load(path, allow_pickle=False)
