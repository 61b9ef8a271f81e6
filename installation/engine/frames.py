"""Frames as the display receives them, and the bounded, timestamped queue between the
inference worker and the display.

A frame is an RGB image for one instant of show time. The worker fills the queue a little
ahead of the screen; the display asks for "now" and gets the two frames around it with a
blend weight, so it never waits: when generation falls behind it shows the nearest frames
instead of freezing or going black.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from installation.engine.gpu.device_frames import DeviceImage


@dataclass(frozen=True)
class Frame:
    """One generated picture: ``image`` is H x W x 3 uint8 RGB, ``t`` its show time in seconds.

    ``serial`` increases by one for every frame the worker makes, so the display can cache
    uploaded textures by it. A frame that never left the GPU (TensorRT drawing for the GL
    presenter, ``installation.engine.gpu.device_frames``) has ``device`` instead of ``image``.
    """

    t: float
    image: np.ndarray | None
    serial: int
    device: DeviceImage | None = None


@dataclass(frozen=True)
class Pick:
    """What the display should show at one instant: ``a`` blended towards ``b`` by ``weight``.

    ``b`` is None when no newer frame exists yet: the display holds ``a`` rather than wait.
    """

    a: Frame
    b: Frame | None
    weight: float


class FrameQueue:
    """Frames in show-time order, bounded, shared by the worker (put) and display (pick).

    The lock is only held for a few list operations, so the display never waits on the
    worker in any way that matters; memory is bounded by ``capacity`` frames for weeks.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 2:
            raise ValueError("a frame queue needs room for at least two frames to blend")
        self.capacity = capacity
        self._frames: deque[Frame] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._invalidated = threading.Condition(self._lock)
        self._epoch = 0

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def epoch(self) -> int:
        """Counts invalidations; a producer reads it before making frames and passes it to
        ``put``, so frames begun before a cut never reach the screen after it."""
        return self._epoch

    def put(self, frames: list[Frame], epoch: int | None = None) -> bool:
        """Append frames later than those queued (the oldest fall out when full).

        With ``epoch``, frames made for an older epoch are dropped; returns whether they
        were queued.
        """
        with self._lock:
            if epoch is not None and epoch != self._epoch:
                return False
            self._frames.extend(frames)
            return True

    def invalidate(self, from_time: float | None = None) -> None:
        """Drop the queued frames from show time ``from_time`` on (None: all of them): after
        a cut they show a state that no longer holds, and waiting for them to play out would
        delay the cut by the whole queue. Frames before a cut scheduled ahead stay: they
        are still right, and the cut lands on its own frame."""
        with self._lock:
            frames = self._frames
            if from_time is None:
                frames.clear()
            else:
                while frames and frames[-1].t >= from_time:
                    frames.pop()
            self._epoch += 1
            self._invalidated.notify_all()

    def newest(self) -> float | None:
        """The show time of the last queued frame (None: none queued): after a cut a
        producer goes on after the frames it kept."""
        with self._lock:
            return self._frames[-1].t if self._frames else None

    def wait_for_invalidation(self, epoch: int, timeout: float) -> None:
        """Sleep up to ``timeout`` seconds, or less if the queue is invalidated after
        ``epoch``: a producer waiting for its next frame time starts on a cut at once."""
        with self._invalidated:
            self._invalidated.wait_for(lambda: self._epoch != epoch, timeout)

    def pick(self, t: float) -> Pick | None:
        """The frames around show time ``t``; frames before them are dropped for good,
        because show time only moves forward."""
        with self._lock:
            frames = self._frames
            if not frames:
                return None
            while len(frames) > 1 and frames[1].t <= t:
                frames.popleft()
            a = frames[0]
            if len(frames) == 1 or t <= a.t:
                return Pick(a, None, 0.0)
            b = frames[1]
            return Pick(a, b, (t - a.t) / (b.t - a.t))
