"""Pictures of what the screen shows, carried off the display's thread to a sink.

The display loop must never wait for an encoder or a network: ``offer`` only puts a
reference to what was presented (a ``Pick`` and a brightness, no pixels) into a bounded
queue, or counts the frame as dropped when the queue is full. The feed's own thread does
all the work: composes the picture (``compose.on_screen``), scales it to the feed's size and
hands it to the sink (a video file, an NDI sender). A slow sink costs recorded frames,
counted in ``dropped``, never the display's; memory stays bounded by the queue for weeks.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from types import TracebackType

import numpy as np

from installation.engine.frames import Pick
from installation.output.compose import fit, on_screen
from installation.ratelog import RateLimitedLog

log = logging.getLogger(__name__)

#: Frames waiting for the sink: a few ticks' worth absorbs a hiccup (a keyframe, a disk
#: flush) without dropping; more would only delay the drop and hold more frames in memory.
CAPACITY = 8
#: Seconds ``close`` waits for the feed's thread to drain the queue and finish the sink.
CLOSE_TIMEOUT = 30.0

#: Receives each picture, H x W x 3 uint8 RGB at the feed's size, with its show time.
Sink = Callable[[np.ndarray, float], None]
#: Makes a feed for a show at this many frames per second whose whole picture (every stage
#: run, every cell of a grid) is this (width, height) (``RunningShow.outputs``).
Output = Callable[[float, tuple[int, int]], "ScreenFeed"]


class ScreenFeed:
    """One consumer of the screen's pictures, on its own thread from construction on.

    ``kind`` says what it feeds (``record``, ``ndi``), for the metrics; ``name`` which one, for
    the logs. ``size`` (width, height) scales every picture to it; None keeps each picture's
    own size.
    ``finish`` runs on the feed's thread after the last picture (to close a file, say).
    Counters, for the logs and metrics: ``taken`` frames queued, ``dropped`` refused because
    the queue was full, ``failed`` taken but not delivered (the sink raised, or the picture
    was only on the GPU). Delivered frames are ``taken - failed`` once closed.
    """

    def __init__(
        self,
        kind: str,
        name: str,
        sink: Sink,
        size: tuple[int, int] | None = None,
        capacity: int = CAPACITY,
        finish: Callable[[], None] | None = None,
    ) -> None:
        self.kind = kind
        self.name = name
        self.size = size
        self.taken = 0
        self.dropped = 0
        self.failed = 0
        self._sink = sink
        self._finish = finish
        self._queue: queue.Queue[tuple[Pick, float, float] | None] = queue.Queue(capacity)
        self._log = RateLimitedLog(log)
        self._closed = False
        self._thread = threading.Thread(target=self._drain, name=f"feed {name}", daemon=True)
        self._thread.start()

    def offer(self, pick: Pick, brightness: float, t: float) -> None:
        """Queue what the screen shows at show time ``t``; never blocks (display thread)."""
        if self._closed:
            return
        try:
            self._queue.put_nowait((pick, brightness, t))
        except queue.Full:
            self.dropped += 1
        else:
            self.taken += 1

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Deliver what is queued, run ``finish``, stop the thread, and log the counts; a sink
        stuck for ``timeout`` seconds is left behind (its thread is a daemon) and said so."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            log.error("%s: still busy after %.0f s; left unfinished", self.name, timeout)
            return
        log.info(
            "%s: %d frames delivered, %d dropped (it fell behind the screen), %d failed",
            self.name,
            self.taken - self.failed,
            self.dropped,
            self.failed,
        )

    def __enter__(self) -> ScreenFeed:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _drain(self) -> None:
        while (item := self._queue.get()) is not None:
            pick, brightness, t = item
            try:
                self._sink(fit(on_screen(pick, brightness), self.size), t)
            except Exception as exc:
                self.failed += 1
                self._log.warning("failed", f"{self.name}: a frame was not delivered: {exc}")
        if self._finish is not None:
            try:
                self._finish()
            except Exception as exc:
                log.error("%s: could not be finished: %s", self.name, exc)
