"""The inference worker: a thread that generates frames a little ahead of the screen.

Frames are made for times on a fixed grid (``fps`` per second of show time), so a live show
and an offline render of the same show draw the same faces. The worker stays at most ``lead``
seconds ahead, which bounds both the queue and the latency of anything that changes the
picture; after a cut (the queue invalidated) it starts again from the present at once. When
it falls behind it does not try to catch up frame by frame (that would only fall further
behind); it jumps to the time its next frame will be ready, and the display blends the
frames it has.

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

from installation.engine.frames import Frame, FrameQueue
from installation.engine.paint import paint, stages_to_run
from installation.engine.pipeline import Pipeline
from installation.engine.quality import AdaptiveQuality
from installation.score.plan import FramePlan

log = logging.getLogger(__name__)

PlanSource = Callable[[Sequence[float]], list[FramePlan]]


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
    ) -> None:
        self.pipeline = pipeline
        self.plans_at = plans_at
        self.queue = queue
        self.clock = clock
        self.fps = fps
        self.lead = lead
        self.serials = serials
        self.quality = quality
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
        except Exception as exc:
            log.exception("inference worker failed")
            self.error = exc

    def _loop(self) -> None:
        index = math.ceil(self.clock() * self.fps)
        epoch = self.queue.epoch
        while not self._stop.is_set():
            now = self.clock()
            if self.queue.epoch != epoch:  # a cut: queued frames are gone, start from now
                epoch = self.queue.epoch
                index = math.ceil(now * self.fps)
            # To blend into a frame, the display needs it one generation interval early.
            ready_at = now + 2 * self._latency
            if index / self.fps < ready_at:
                behind = math.ceil(ready_at * self.fps)
                self.skipped += behind - index
                index = behind
            # A slow machine needs to look further ahead than ``lead`` to have anything to blend.
            lead = max(self.lead, ready_at - now + 1 / self.fps)
            ahead = index / self.fps - now
            if ahead > lead:
                self.queue.wait_for_invalidation(epoch, ahead - lead)
                continue
            self._generate(index, epoch)
            index += 1

    def _generate(self, index: int, epoch: int) -> None:
        t = index / self.fps
        plans = self.plans_at([t])
        cap = self.quality.cap if self.quality else None
        started = time.perf_counter()
        image = paint(self.pipeline, plans, cap)[0]
        elapsed = time.perf_counter() - started
        if self.quality and len(plans[0].layers) == 1:  # a crossfade's two pictures cost double
            stages = stages_to_run(plans[0].layers[0], cap)
            self.quality.record(elapsed, stages or len(self.pipeline.stages))
        self._latency = elapsed if self.generated == 0 else 0.9 * self._latency + 0.1 * elapsed
        # A frame begun before a cut belongs to an ended epoch: the queue drops it.
        self.queue.put([Frame(t, image, next(self.serials))], epoch)
        self.generated += 1
