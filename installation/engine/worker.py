"""The inference worker: a thread that generates frames a little ahead of the screen.

Frames are made for times on a fixed grid (``fps`` per second of show time), so a live show
and an offline render of the same show draw the same faces. The worker stays at most ``lead``
seconds ahead, which bounds both the queue and the latency of anything that changes the
picture; after a cut (the queue invalidated) it starts again at once, from the present or
after the frames the cut kept (those before a cut scheduled ahead). When it falls behind it
does not try to catch up frame by frame (that would only fall further behind); it jumps to
the time its next frame will be ready, and the display blends the frames it has.

A W bundle's keyframes are mapped on this thread too: the plans' latents are deferred
(``installation.score.plan.Deferred``) until ``paint`` asks for them, so neither the display
nor a controller ever waits for the mapping network.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from installation.engine.frames import Frame, FrameQueue
from installation.engine.gpu.device_frames import DeviceImage, DeviceRing, paint_on_device
from installation.engine.mapping import MappingFailed
from installation.engine.paint import paint, single_layer, stages_to_run
from installation.engine.pipeline import Pipeline
from installation.engine.quality import AdaptiveQuality
from installation.score.plan import FramePlan, Plan

log = logging.getLogger(__name__)

PlanSource = Callable[[Sequence[float]], list[Plan]]


#: Seconds behind beyond which the worker did not fall behind: show time jumped (a PC of a
#: room adopting the room's time), and the frames it passes over were never due.
CLOCK_JUMP = 10.0


class InferenceWorker:
    """Owns one thread that paints the plans from ``plans_at`` with ``pipeline`` into
    ``queue`` (the conductor's ``plans_at``, for example).

    ``serials`` numbers the frames; it is shared by every worker of a run, so a restarted
    worker never reuses a serial that the display still has a texture cached for. So is
    ``quality``, which hears how long each frame took and caps the stages frames run.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        plans_at: PlanSource,
        queue: FrameQueue,
        clock: Callable[[], float],
        fps: float,
        lead: float,
        serials: Iterator[int],
        quality: AdaptiveQuality | None = None,
        ring: DeviceRing | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.plans_at = plans_at
        self.queue = queue
        self.clock = clock
        self.fps = fps
        self.lead = lead
        self.serials = serials
        self.quality = quality
        #: Where frames wait on the GPU when they go straight to the GL presenter's texture
        #: (installation.engine.gpu.device_frames); None: every frame is painted on the host.
        self.ring = ring
        self.generated = 0
        self.skipped = 0
        self.error: BaseException | None = None
        self._latency = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inference", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._loop()
        except MappingFailed as exc:  # already one line naming the file; the supervisor logs it
            self.error = exc
        except Exception as exc:
            log.exception("inference worker failed")
            self.error = exc

    def _loop(self) -> None:
        index = math.ceil(self.clock() * self.fps)
        epoch = self.queue.epoch
        while not self._stop.is_set():
            now = self.clock()
            if self.queue.epoch != epoch:  # a cut: frames from its time on are gone
                epoch = self.queue.epoch
                index = math.ceil(now * self.fps)
                kept = self.queue.newest()  # frames before a cut scheduled ahead stay
                if kept is not None:
                    index = max(index, round(kept * self.fps) + 1)
            # To blend into a frame, the display needs it one generation interval early.
            ready_at = now + 2 * self._latency
            if index / self.fps < ready_at:
                behind = math.ceil(ready_at * self.fps)
                if ready_at - index / self.fps < CLOCK_JUMP:
                    self.skipped += behind - index
                index = behind
            # A slow machine needs to look further ahead than ``lead`` to have anything to blend.
            # A slow pace needs a frame only every ``step`` times (adaptive quality); the
            # display blends between them, so it needs each one that much earlier again.
            step = self.quality.spacing(self.fps) if self.quality else 1
            lead = max(self.lead, ready_at - now + 1 / self.fps) + (step - 1) / self.fps
            ahead = index / self.fps - now
            if ahead > lead:
                self.queue.wait_for_invalidation(epoch, ahead - lead)
                continue
            self._generate(index, epoch)
            index += step

    def _generate(self, index: int, epoch: int) -> None:
        t = index / self.fps
        plans = self.plans_at([t])
        cap = self.quality.cap if self.quality else None
        started = time.perf_counter()
        image, device = self._paint(plans[0], cap)
        elapsed = time.perf_counter() - started
        layer = single_layer(plans[0])
        if self.quality and layer is not None:  # a crossfade's two pictures cost double
            stages = stages_to_run(layer, cap)
            self.quality.record(elapsed, stages or len(self.pipeline.stages))
        self._latency = elapsed if self.generated == 0 else 0.9 * self._latency + 0.1 * elapsed
        # A frame begun before a cut belongs to an ended epoch: the queue drops it.
        self.queue.put([Frame(t, image, next(self.serials), device)], epoch)
        self.generated += 1

    def _paint(self, plan: Plan, cap: int | None) -> tuple[np.ndarray | None, DeviceImage | None]:
        """The frame on the GPU where it can stay there (one picture, a ring to wait in), else
        on the host: crossfades and mosaics are mixed there."""
        layer = single_layer(plan)
        if self.ring is not None and isinstance(plan, FramePlan) and layer is not None:
            stages = stages_to_run(layer, cap)
            device = paint_on_device(self.pipeline, layer.latent, stages, self.ring)
            if device is not None:
                return None, device
        return paint(self.pipeline, [plan], cap)[0], None
