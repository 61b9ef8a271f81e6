"""Adaptive quality: fewer refinement stages while the picture moves too far per generated frame.

A show built for a 1024 px GPU may land on a slower machine, or its backend may drop down the
ladder to the CPU, or another program may take the GPU for a while. Then generation may fall
behind what the picture needs. What the eye sees is not the generation rate itself: the
display blends between generated frames, so a slow morph at 8 frames a second looks as
smooth as at 24, and sharper frames are worth more than more of them. What shows is how far
the picture moves between two generated frames: the pace (the conductor's ``motion``, faces
per second: installation.score.motion) divided by the rate. So the rate is judged over a few
seconds at a time against the rate the fastest pace seen meanwhile needs, ``motion /
max_step``, and never less than ``min_rate``, a floor below which no motion is slow enough;
below it the last stage still in use is dropped (smaller frames, scaled up by the display),
and it is tried again later when the rate has headroom. A retry that fails doubles the wait
before the next, up to a quarter of an hour, and a stage that holds for a minute resets it:
that hysteresis keeps the picture from flapping between sharp and soft. Every change is
logged. ``quality = "full"`` in the show pins all stages instead.

The same measure tells the worker how many frames to make (``spacing``): a slow pace needs
only a few a second, and the time saved goes to the display and to other work rather than to
frames the blending would have shown anyway.

All of it runs on the inference worker's thread, between frames: the display never waits for
a judgement, and a cut (the queue invalidated) starts the next frame without one.
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

    #: Frames per second below which a stage always drops, however slowly the picture moves.
    min_rate: float = 4.0
    #: The most the picture may move between two generated frames, in faces (a whole morph
    #: from one face to the next is 1), for a stage to stay: small enough that the display's
    #: blending hides the steps. A 5 s smoothstep morph (peak 0.3 faces/s) keeps its stages
    #: down to 6 frames/s; a beat, or the same morph at speed 4, needs more.
    max_step: float = 0.05
    #: Seconds of frames, and at least this many frames, behind each judgement.
    window: float = 3.0
    min_frames: int = 3
    #: A dropped stage is only tried again when the rate without it is this many times the
    #: rate needed (``needed``): adding a stage always costs something.
    headroom: float = 1.25
    #: Wait before the first retry after a drop, doubled after every failed retry up to
    #: ``max_retry``; back to ``first_retry`` once a retried stage held for ``settle`` s.
    first_retry: float = 20.0
    max_retry: float = 900.0
    settle: float = 60.0

    def needed(self, motion: float) -> float:
        """Frames per second that keep each step below ``max_step`` at ``motion`` faces per
        second, and at least ``min_rate``."""
        return max(self.min_rate, motion / self.max_step)


class AdaptiveQuality:
    """How many stages frames may use (``cap``), from how fast they are generated and how fast
    the picture moves.

    ``labels`` names each stage of the pipeline for the log, best last. The inference worker
    reports every single-picture frame with ``record``; ``adaptive=False`` pins all stages.
    ``motion`` (the conductor's) says how fast the picture moves, in faces per second; it is
    asked once per recorded frame, so a beat between two judgements counts. Without it only
    the ``min_rate`` floor applies.
    """

    def __init__(
        self,
        labels: Sequence[str],
        policy: QualityPolicy | None = None,
        adaptive: bool = True,
        clock: Callable[[], float] = time.monotonic,
        motion: Callable[[], float] | None = None,
    ) -> None:
        self.labels = tuple(labels)
        self.policy = policy or QualityPolicy()
        self.adaptive = adaptive
        self._clock = clock
        self._motion = motion
        self._lock = threading.Lock()
        self._cap = len(self.labels)
        self._times: list[float] = []
        self._fastest = 0.0  # the fastest motion seen in the frames of ``_times``
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

    def spacing(self, fps: float) -> int:
        """How many of the worker's ``fps`` time steps the next frame may stand for: the pace
        needs only ``headroom`` times ``needed`` frames a second, the display blends between
        them, and the machine's time goes to sharp frames (and to the display) instead of to
        frames nobody can tell apart. The worker looks that much further ahead, so a smooth
        change (the first beat after a quiet spell) reaches the screen up to one spacing
        later, a fifth of a second at most at the default ``min_rate``; 1 when quality is
        pinned."""
        if not self.adaptive:
            return 1
        motion = self._pace()
        rate = self.policy.headroom * self.policy.needed(motion)
        return max(1, int(fps / rate))

    def record(self, seconds: float, stages: int) -> None:
        """One frame took ``seconds`` to generate through ``stages`` stages."""
        if not self.adaptive or stages != self._cap:
            return  # a scene that asks for fewer stages says nothing about the cap
        motion = self._pace()
        with self._lock:
            now = self._clock()
            self._times.append(seconds)
            self._fastest = max(self._fastest, motion)
            if self._since is None:
                self._since = now
            if now - self._since < self.policy.window or len(self._times) < self.policy.min_frames:
                return
            rate = 1.0 / max(statistics.median(self._times), 1e-9)
            fastest = self._fastest
            self._times.clear()
            self._fastest = 0.0
            self._since = None
            self._judge(rate, fastest, now)

    def _pace(self) -> float:
        """How fast the picture moves now, faces per second (0 without a ``motion``)."""
        return self._motion() if self._motion is not None else 0.0

    def reset(self) -> None:
        """Start over with all stages (the backend changed, so every measure is stale)."""
        with self._lock:
            if self._cap != self.full:
                log.info("quality: back to all %d stages on the new backend", self.full)
            self._cap = self.full
            self._times.clear()
            self._fastest = 0.0
            self._since = None
            self._retry_delay = self.policy.first_retry
            self._retried_at = None

    def _judge(self, rate: float, motion: float, now: float) -> None:
        policy = self.policy
        if rate < policy.needed(motion) and self._cap > 1:
            self._drop(rate, motion, now)
        elif (
            self._cap < self.full
            and now >= self._retry_at
            and rate >= policy.headroom * policy.needed(motion)
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

    def _drop(self, rate: float, motion: float, now: float) -> None:
        if self._retried_at is not None:  # the stage came back too early: wait longer next time
            self._retry_delay = min(2 * self._retry_delay, self.policy.max_retry)
            self._retried_at = None
        self._cap -= 1
        self._retry_at = now + self._retry_delay
        log.warning(
            "quality: %.1f frames/s with stage %s %s: dropping it, frames now end at %s; "
            "trying it again in %.0f s at the earliest",
            rate,
            self.labels[self._cap],
            self._shortfall(rate, motion),
            self.labels[self._cap - 1],
            self._retry_delay,
        )

    def _shortfall(self, rate: float, motion: float) -> str:
        """Why ``rate`` is too low, for the log: the floor, or the step the motion makes."""
        policy = self.policy
        if rate < policy.min_rate:
            return f"is below min_rate {policy.min_rate:g}"
        return (
            f"moves the picture {motion / rate:.3f} faces a frame at {motion:.2f} faces/s, "
            f"over max_step {policy.max_step:g}"
        )
