"""Keeping the inference worker alive: restart after a failure with backoff, give up when
failures repeat, put it to sleep outside opening hours.

An exception in inference (a driver hiccup, memory briefly short) must not end a show that runs
for weeks: the worker is restarted after a short pause that doubles with each failure, while
the display holds the frames it has. When failures keep coming, restarting inside the process
is not helping, and the supervisor gives up so that the process exits non-zero and systemd
starts a fresh one. A failure may also be the backend's (a GPU engine gone bad): ``fallback``
then moves the show down the backend ladder and the worker restarts at once on the next
backend, without counting towards giving up. A failure of a W bundle's mapping network is
not the backend's (it runs on the CPU under every backend): it is restarted like any other.
All of this happens on the supervisor's own thread, because joining a worker (or loading the
next backend) can take as long as one inference and the display loop must never wait for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from installation.engine.mapping import MappingFailed
from installation.engine.worker import InferenceWorker

log = logging.getLogger(__name__)

POLL = 0.05


@dataclass(frozen=True)
class RestartPolicy:
    """Backoff and giving up: after a failure, wait ``first_delay`` doubled for every other
    failure within ``window`` seconds; at ``max_failures`` within ``window``, give up."""

    first_delay: float = 0.25
    max_failures: int = 4
    window: float = 60.0

    def delay(self, recent_failures: int) -> float:
        return self.first_delay * 2 ** max(0, recent_failures - 1)


class WorkerState(StrEnum):
    RUNNING = "running"
    RESTARTING = "restarting"
    SLEEPING = "sleeping"
    FAILED = "failed"
    STOPPED = "stopped"


class WorkerSupervisor:
    """Runs workers from ``make_worker`` one at a time; offers the worker's counters and an
    ``error`` that is only set once it has given up, so the show loop can treat it as one
    worker that never dies. ``fallback(error)`` (installation.engine.ladder's ``fall``) returns
    True when it moved inference to another backend after ``error``."""

    def __init__(
        self,
        make_worker: Callable[[], InferenceWorker],
        policy: RestartPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        fallback: Callable[[BaseException], bool] | None = None,
    ) -> None:
        self._make_worker = make_worker
        self._fallback = fallback
        self.policy = policy or RestartPolicy()
        self._clock = clock
        self.error: BaseException | None = None
        self.restarts = 0
        self._worker: InferenceWorker | None = None
        self._state = WorkerState.STOPPED
        self._failures: deque[float] = deque(maxlen=self.policy.max_failures)
        self._retry_at = 0.0
        self._done_generated = 0
        self._done_skipped = 0
        self._progress = (0, 0.0)  # (frames generated, when that count was first seen)
        self._lock = threading.Lock()
        self._asleep = threading.Event()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="supervisor", daemon=True)

    @property
    def state(self) -> WorkerState:
        return self._state

    @property
    def generated(self) -> int:
        with self._lock:
            worker = self._worker
            return self._done_generated + (worker.generated if worker else 0)

    @property
    def skipped(self) -> int:
        with self._lock:
            worker = self._worker
            return self._done_skipped + (worker.skipped if worker else 0)

    def stalled_for(self) -> float:
        """Seconds a running worker has gone without finishing a frame; 0 while it is not
        supposed to run (asleep, waiting to restart), so only a stuck worker counts."""
        if self._state is not WorkerState.RUNNING:
            return 0.0
        return self._clock() - self._progress[1]

    def start(self) -> None:
        self._start_worker()
        self._thread.start()

    def sleep(self) -> None:
        """Stop inference until ``wake`` (closing time); frames on screen stay as they are."""
        self._asleep.set()
        self._wake.set()

    def wake(self) -> None:
        self._asleep.clear()
        self._wake.set()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop supervising and the worker, waiting at most about ``timeout`` seconds: the
        threads are daemons, so one stuck in a driver cannot hold up the exit."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._retire(timeout)
        self._state = WorkerState.STOPPED if self.error is None else WorkerState.FAILED

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            try:
                self._step()
            except Exception as exc:  # a worker that cannot even be made is a failure too
                log.exception("cannot run the inference worker")
                self._failed(exc, self._clock())
            if self.error is not None:
                return
            self._wake.wait(POLL)
            self._wake.clear()

    def _step(self) -> None:
        worker = self._worker
        now = self._clock()
        if worker is not None and worker.error is not None and not worker.alive:
            self._failed(worker.error, now)
        elif self._asleep.is_set():
            if worker is not None:
                log.info("opening hours: inference sleeps")
                self._retire(timeout=5.0)
            self._state = WorkerState.SLEEPING
        elif worker is None and now >= self._retry_at:
            if self._state is WorkerState.RESTARTING:
                self.restarts += 1
                log.info("restarting the inference worker (restart %d)", self.restarts)
            elif self._state is WorkerState.SLEEPING:
                log.info("opening hours: inference resumes")
            self._start_worker()
        elif worker is not None:
            generated = worker.generated
            if generated != self._progress[0]:
                self._progress = (generated, now)

    def _failed(self, error: BaseException, now: float) -> None:
        self._retire(timeout=0.0)
        if (
            self._fallback is not None
            and not isinstance(error, MappingFailed)
            and self._fallback(error)
        ):
            self._retry_at = self._clock()
            self._state = WorkerState.RESTARTING
            return
        message = f"{type(error).__name__}: {error}"
        self._failures.append(now)
        recent = sum(1 for t in self._failures if now - t <= self.policy.window)
        if recent >= self.policy.max_failures:
            log.error(
                "inference failed %d times within %g s; giving up so that the service is "
                "restarted: %s",
                recent,
                self.policy.window,
                message,
            )
            self._state = WorkerState.FAILED
            self.error = error
            return
        delay = self.policy.delay(recent)
        log.warning(
            "inference worker failed (%d of %d failures within %g s before giving up); "
            "restarting it in %.2g s, the screen holds meanwhile: %s",
            recent,
            self.policy.max_failures,
            self.policy.window,
            delay,
            message,
        )
        self._retry_at = now + delay
        self._state = WorkerState.RESTARTING

    def _start_worker(self) -> None:
        worker = self._make_worker()
        self._progress = (0, self._clock())
        with self._lock:
            self._worker = worker
        self._state = WorkerState.RUNNING
        worker.start()

    def _retire(self, timeout: float) -> None:
        """Stop the current worker (if any) and fold its counters into the totals."""
        with self._lock:
            worker, self._worker = self._worker, None
            if worker is None:
                return
            self._done_generated += worker.generated
            self._done_skipped += worker.skipped
        worker.stop(timeout)
