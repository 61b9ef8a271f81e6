"""Deliberate faults, for tests and for drills on the exhibition PC.

Self-healing that is never exercised does not work on the day it is needed. The environment
variable ``INSTALLATION_FAULTS`` makes the real runtime fail on purpose, in its real code paths,
so that a test, or a technician commissioning a kiosk, can watch it recover::

    INSTALLATION_FAULTS=worker-crash@60   one inference failure 60 s after the engine started:
                                          the worker is restarted, the screen holds meanwhile
    INSTALLATION_FAULTS=worker-crash      inference fails every time: the runtime gives up
                                          and exits 1, and systemd restarts it
    INSTALLATION_FAULTS=worker-hang@60    inference hangs for good after 60 s: the watchdog
                                          pings stop, and systemd restarts the service
    INSTALLATION_FAULTS=gpu-start         the GPU backends fail at start (tried even where
                                          there are none): the CPU backend takes over
    INSTALLATION_FAULTS=backend-crash@60  the backend the show started on fails for good 60 s
                                          after it started: the show drops to the next
                                          backend of the ladder (installation.engine.ladder)

Several faults are separated by commas (``worker-crash@10,worker-crash@20``). The runtime
warns loudly while any is set, so a drill is never left on by accident.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from installation.engine.pipeline import Pipeline
from installation.errors import UserError

log = logging.getLogger(__name__)

FAULTS_ENV = "INSTALLATION_FAULTS"
_USAGE = (
    "expected gpu-start, backend-crash[@SECONDS], worker-crash[@SECONDS] or "
    "worker-hang[@SECONDS], comma-separated"
)


class DeliberateFault(RuntimeError):
    """Raised where a fault was asked for, so logs cannot mistake it for a real one."""


@dataclass(frozen=True)
class Faults:
    """Which faults to cause; times are seconds after the engine started."""

    gpu_start: bool = False
    crash_at: tuple[float, ...] = ()
    crash_always: bool = False
    hang_at: float | None = None
    backend_crash_at: float | None = None

    @property
    def in_worker(self) -> bool:
        return (
            bool(self.crash_at)
            or self.crash_always
            or self.hang_at is not None
            or self.backend_crash_at is not None
        )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Faults:
        text = environ.get(FAULTS_ENV, "").strip()
        if not text:
            return cls()
        log.warning("%s=%s: deliberate faults are active", FAULTS_ENV, text)
        gpu_start, crash_always, crash_at, hang_at, backend_at = False, False, [], None, None
        for item in (part.strip() for part in text.split(",")):
            name, at, seconds = item.partition("@")
            when = _seconds(item, seconds) if at else None
            if name == "gpu-start" and not at:
                gpu_start = True
            elif name == "worker-crash" and when is None:
                crash_always = True
            elif name == "worker-crash":
                crash_at.append(when)
            elif name == "worker-hang":
                hang_at = when or 0.0
            elif name == "backend-crash":
                backend_at = when or 0.0
            else:
                raise UserError(f"{FAULTS_ENV}: unknown fault {item!r}: {_USAGE}")
        return cls(gpu_start, tuple(sorted(crash_at)), crash_always, hang_at, backend_at)


def _seconds(item: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1e7:
        raise UserError(f"{FAULTS_ENV}: {item!r}: expected seconds after @, such as @60")
    return value


class FaultyPipeline(Pipeline):
    """The real pipeline, failing on purpose in ``run`` as ``faults`` says.

    It raises or blocks inside the inference worker's thread, exactly where a broken driver
    or model would, so what recovers from it is the real worker and its supervisor.
    """

    def __init__(
        self, pipeline: Pipeline, faults: Faults, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(
            pipeline.bundle,
            pipeline.stages,
            pipeline.backend_name,
            pipeline.chain,
            pipeline.backend,
        )
        self.faults = faults
        self._clock = clock
        self._started = clock()
        self._crashes = list(faults.crash_at)
        self._lock = threading.Lock()
        self._released = threading.Event()

    def run(self, latents: np.ndarray, stages: int | None = None) -> np.ndarray:
        elapsed = self._clock() - self._started
        if self.faults.crash_always:
            raise DeliberateFault("deliberate fault: worker-crash")
        crash = self.faults.backend_crash_at
        if crash is not None and elapsed >= crash:
            raise DeliberateFault(f"deliberate fault: backend-crash@{crash:g}")
        with self._lock:
            due = self._crashes[0] if self._crashes and self._crashes[0] <= elapsed else None
            if due is not None:
                self._crashes.pop(0)
        if due is not None:
            raise DeliberateFault(f"deliberate fault: worker-crash@{due:g}")
        if self.faults.hang_at is not None and elapsed >= self.faults.hang_at:
            log.warning(
                "deliberate fault: worker-hang@%g: inference hangs now", self.faults.hang_at
            )
            self._released.wait()
        return super().run(latents, stages)

    def release(self) -> None:
        """Let a hung worker go on (tests do, so their threads end)."""
        self._released.set()
