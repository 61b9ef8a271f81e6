"""Adaptive quality: fewer refinement stages while the machine cannot generate fast enough.

A show built for a 1024 px GPU may land on a slower machine, or its backend may drop down the
ladder to the CPU, or another program may take the GPU for a while. Then the last refinement
stage costs more than it gives: generation falls so far behind the display that faces move in
visible steps. So the generation rate is judged over a few seconds at a time; below the show's
``min_rate`` the last stage still in use is dropped (smaller frames, scaled up by the display),
and it is tried again later when the rate has headroom. A retry that fails doubles the wait
before the next, up to a quarter of an hour, and a stage that holds for a minute resets it:
that hysteresis keeps the picture from flapping between sharp and soft. Every change is
logged. ``quality = "full"`` in the show pins all stages instead.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QualityPolicy:
    """When to drop a stage and when to try it again."""

    #: Frames per second generation must reach with a stage for that stage to stay.
    min_rate: float = 24.0
    #: Seconds of frames, and at least this many frames, behind each judgement.
    window: float = 3.0
    min_frames: int = 3
    #: A dropped stage is only tried again when the rate without it is this many times
    #: ``min_rate``: adding a stage always costs something.
    headroom: float = 1.25
    #: Wait before the first retry after a drop, doubled after every failed retry up to
    #: ``max_retry``; back to ``first_retry`` once a retried stage held for ``settle`` s.
    first_retry: float = 20.0
    max_retry: float = 900.0
    settle: float = 60.0


class AdaptiveQuality:
    """How many stages frames may use (``cap``), from how fast they are generated.

    ``labels`` names each stage of the pipeline for the log, best last. The inference worker
    reports every single-picture frame with ``record``; ``adaptive=False`` pins all stages.
    """

    def __init__(
        self,
        labels: Sequence[str],
        policy: QualityPolicy | None = None,
        adaptive: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.labels = tuple(labels)
        self.policy = policy or QualityPolicy()
        self.adaptive = adaptive
        self._clock = clock
        self._lock = threading.Lock()
        self._cap = len(self.labels)
        self._times: list[float] = []
        self._since: float | None = None
        self._retry_delay = self.policy.first_retry
        self._retry_at = 0.0
        self._retried_at: float | None = None

    @property
    def cap(self) -> int:
        """The most stages a frame may run now."""
        return self._cap

    @property
    def full(self) -> int:
        return len(self.labels)

    def record(self, seconds: float, stages: int) -> None:
        """One frame took ``seconds`` to generate through ``stages`` stages."""
        if not self.adaptive or stages != self._cap:
            return  # a scene that asks for fewer stages says nothing about the cap
        with self._lock:
            now = self._clock()
            self._times.append(seconds)
            if self._since is None:
                self._since = now
            if now - self._since < self.policy.window or len(self._times) < self.policy.min_frames:
                return
            rate = 1.0 / max(statistics.median(self._times), 1e-9)
            self._times.clear()
            self._since = None
            self._judge(rate, now)

    def reset(self) -> None:
        """Start over with all stages (the backend changed, so every measure is stale)."""
        with self._lock:
            if self._cap != self.full:
                log.info("quality: back to all %d stages on the new backend", self.full)
            self._cap = self.full
            self._times.clear()
            self._since = None
            self._retry_delay = self.policy.first_retry
            self._retried_at = None

    def _judge(self, rate: float, now: float) -> None:
        policy = self.policy
        if rate < policy.min_rate and self._cap > 1:
            self._drop(rate, now)
        elif (
            self._cap < self.full
            and now >= self._retry_at
            and rate >= policy.headroom * policy.min_rate
        ):
            self._cap += 1
            self._retried_at = now
            log.info(
                "quality: %.1f frames/s without stage %s leaves headroom; trying it again",
                rate,
                self.labels[self._cap - 1],
            )
        elif self._retried_at is not None and now - self._retried_at >= policy.settle:
            self._retried_at = None
            self._retry_delay = policy.first_retry

    def _drop(self, rate: float, now: float) -> None:
        if self._retried_at is not None:  # the stage came back too early: wait longer next time
            self._retry_delay = min(2 * self._retry_delay, self.policy.max_retry)
            self._retried_at = None
        self._cap -= 1
        self._retry_at = now + self._retry_delay
        log.warning(
            "quality: %.1f frames/s with stage %s is below min_rate %g: dropping it, frames "
            "now end at %s; trying it again in %.0f s at the earliest",
            rate,
            self.labels[self._cap],
            self.policy.min_rate,
            self.labels[self._cap - 1],
            self._retry_delay,
        )
