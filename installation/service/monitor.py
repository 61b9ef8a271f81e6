"""The service thread: watches the display loop and the inference worker, tells systemd and
staff what it sees, and keeps opening hours.

It runs apart from the display loop because everything it does can wait (a socket send, a file
write, joining a worker) and the display must not. Each quarter of a second it looks at the
counters the other two threads advance:

- READY=1 goes to systemd once the first frame is on screen, not when the program starts.
- WATCHDOG=1 goes only while both the display loop shows frames and the worker finishes them
  (or rests on purpose); a stuck worker therefore stops the pings and systemd restarts us,
  while a worker that crashed is restarted by the supervisor without bothering systemd.
- STATUS= and the health file (see health.py) say the scene, the frame rates and the state.
- At closing time the picture fades to black and inference sleeps; at opening it resumes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from installation.engine.supervisor import WorkerState, WorkerSupervisor
from installation.errors import UserError
from installation.score.hours import OpeningHours
from installation.service.dimmer import Dimmer
from installation.service.health import (
    Record,
    kept_by_systemd,
    process_exists,
    read_status,
    write_status,
)
from installation.service.notify import Notifier

log = logging.getLogger(__name__)

TICK = 0.25
REPORT_INTERVAL = 2.0
HOURS_INTERVAL = 1.0
STALL_LIMIT = 10.0


@dataclass(frozen=True)
class ShowInfo:
    """What the health record says about the show itself."""

    path: str
    title: str


@dataclass
class ServiceSettings:
    """How one run's service is set up: what the record says about the show, whom it tells
    (systemd through ``notifier``, the health file at ``status_path``), and its clocks.

    One object that the service and its monitor share, so that a reload that replaces
    ``hours`` reaches both, and a new setting is added in one place. ``details`` gives the
    show's own part of the health record (the scene, the backend and stages in use, OSC): the
    running show knows those parts, the monitor only what it counts itself.
    """

    info: ShowInfo
    hours: OpeningHours
    notifier: Notifier
    status_path: Path | None
    details: Callable[[], Record]
    wall_clock: Callable[[], datetime]
    stall_limit: float = STALL_LIMIT


class LoopProgress(Protocol):
    """What the monitor reads of the show loop's statistics (installation.loop.LoopStats)."""

    shown: int
    budget: float


class Monitor:
    """One daemon thread doing the service's periodic work; see the module docstring."""

    def __init__(
        self,
        settings: ServiceSettings,
        loop: LoopProgress,
        supervisor: WorkerSupervisor,
        dimmer: Dimmer,
        stopping: threading.Event,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.loop = loop
        self.supervisor = supervisor
        self.dimmer = dimmer
        self.stopping = stopping
        self._clock = clock
        self.started = clock()
        self.started_wall = time.time()
        self.ready = False
        self.last_error: Record | None = None
        self.process_restarts = 0
        self._first_frame: tuple[float, int] | None = None  # (when, frames shown by then)
        self._open = True
        self._stuck = False
        self._told_stopping = False
        self._write_failing = False
        self._tick_error: str | None = None  # the error the last tick ended in
        self._last_ping = (0, -float("inf"))  # (frames shown, when)
        self._last_report = (0, 0, -float("inf"))  # (shown, generated, when)
        self._last_hours = -float("inf")
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name="service", daemon=True)

    def start(self) -> None:
        self._inherit_previous()
        self._open = self.settings.hours.is_open(self.settings.wall_clock())
        self._thread.start()

    def stop(self) -> None:
        """End the thread, then write the final record and say STOPPING=1."""
        self._halt.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
        self._tell_stopping()
        self._report(self._clock(), final=True)

    def note_error(self, at: float, message: str) -> None:
        """Remember the last error logged anywhere, for the health record."""
        self.last_error = {"at": at, "message": message}

    def _run(self) -> None:
        while not self._halt.wait(TICK):
            self.tick()

    def tick(self) -> None:
        """One ``step``, outliving its own bugs. A bug here tends to repeat at every tick:
        its traceback is logged when it begins, not four times a second for weeks, and again
        if it comes back after a tick that went well or as a different error."""
        try:
            self.step()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if error != self._tick_error:
                log.exception("service thread error")
            self._tick_error = error
        else:
            self._tick_error = None

    def step(self) -> None:
        now = self._clock()
        shown = self.loop.shown
        if not self.ready and shown > 0:
            self.ready = True
            self._first_frame = (now, shown)
            log.info("first frame on screen after %.1f s", now - self.started)
            self.settings.notifier.ready(self._summary())
        if self.stopping.is_set():
            self._tell_stopping()
        else:
            self._keep_hours(now)
        self._watch(shown, now)
        if now - self._last_report[2] >= REPORT_INTERVAL:
            self._report(now)

    def _keep_hours(self, now: float) -> None:
        """Fade out at closing and put inference to sleep once black; wake and fade in at
        opening. The clock is read once a second, the fade followed on every tick."""
        is_open = self._open
        if now - self._last_hours >= HOURS_INTERVAL:
            self._last_hours = now
            is_open = self.settings.hours.is_open(self.settings.wall_clock())
        if is_open != self._open:
            self._open = is_open
            log.info("opening hours: %s", "open, fading in" if is_open else "closed, fading out")
            self.dimmer.fade_to(1.0 if is_open else 0.0, self.settings.hours.fade)
            if is_open:
                self.supervisor.wake()
        if not self._open and self.dimmer.settled():
            self.supervisor.sleep()

    def _watch(self, shown: int, now: float) -> None:
        """Ping the watchdog while both threads make progress; report a stuck worker once."""
        stalled = self.supervisor.stalled_for()
        stuck = stalled > self.settings.stall_limit
        if stuck and not self._stuck:
            log.error(
                "the inference worker has not finished a frame for %.0f s: it is stuck; %s",
                stalled,
                "withholding watchdog pings so that systemd restarts the service"
                if self.settings.notifier.watchdog_interval
                else "the screen holds the last frame (no systemd watchdog to restart us)",
            )
        self._stuck = stuck
        interval = self.settings.notifier.watchdog_interval
        if interval is None or now - self._last_ping[1] < interval:
            return
        if shown > self._last_ping[0] and not stuck:
            self.settings.notifier.watchdog()
            self._last_ping = (shown, now)

    def _tell_stopping(self) -> None:
        if not self._told_stopping:
            self._told_stopping = True
            self.settings.notifier.stopping("stopping: fading out")

    def _report(self, now: float, final: bool = False) -> None:
        shown = self.loop.shown
        generated = self.supervisor.generated
        last_shown, last_generated, last_when = self._last_report
        elapsed = now - last_when
        measured = not final and elapsed < 10 * REPORT_INTERVAL
        if measured:
            rates = ((shown - last_shown) / elapsed, (generated - last_generated) / elapsed)
        else:
            rates = (0.0, 0.0)
        self._last_report = (shown, generated, now)
        record = self.record(now, shown, generated, rates, final)
        if measured and self.ready:
            self.settings.notifier.status(self._summary(rates[0]))
        if self.settings.status_path is not None:
            self._write(self.settings.status_path, record)

    def _write(self, path: Path, record: Record) -> None:
        """Write the record, trying again at every report after a failure: a disk full for a
        few seconds must not leave ``installation status`` saying NOT RESPONDING for the rest
        of the run. A failure is logged when it begins and when it ends, not at each try."""
        try:
            write_status(path, record)
        except OSError as exc:
            if not self._write_failing:
                log.warning(
                    "cannot write the status file %s (trying again every %g s): %s",
                    path,
                    REPORT_INTERVAL,
                    exc,
                )
            self._write_failing = True
            return
        if self._write_failing:
            log.info("the status file %s is written again", path)
        self._write_failing = False

    def state(self, final: bool = False) -> str:
        worker = self.supervisor.state
        if final:
            return "failed" if worker is WorkerState.FAILED else "stopped"
        if self.stopping.is_set():
            return "stopping"
        if worker is WorkerState.FAILED:
            return "failed"
        if not self.ready:
            return "starting"
        if self._stuck:
            return "inference stuck"
        if worker is WorkerState.RESTARTING:
            return "restarting inference"
        if not self._open:
            return "closed" if worker is WorkerState.SLEEPING else "closing"
        return "playing"

    def dropped(self, shown: int, now: float) -> int:
        """Screen refreshes the loop missed since the first frame: it is paced at the show's
        rate, so every tick it did not make is a frame the audience did not get."""
        if self._first_frame is None:
            return 0
        began, shown_then = self._first_frame
        expected = int((now - began) / self.loop.budget)
        return max(0, expected - (shown - shown_then))

    def record(
        self, now: float, shown: int, generated: int, rates: tuple[float, float], final: bool
    ) -> Record:
        change = self.settings.hours.next_change(self.settings.wall_clock())
        return {
            "pid": os.getpid(),
            "state": self.state(final),
            "show": self.settings.info.path,
            "title": self.settings.info.title,
            **self.settings.details(),
            "started": self.started_wall,
            "updated": time.time(),
            "uptime": now - self.started,
            "fps": {
                "target": round(1 / self.loop.budget, 3),
                "shown": rates[0],
                "generated": rates[1],
            },
            "frames": {
                "shown": shown,
                "dropped": self.dropped(shown, now),
                "generated": generated,
                "skipped": self.supervisor.skipped,
            },
            "hours": {
                "open": self._open,
                "next_change": change.isoformat(timespec="minutes") if change else None,
            },
            "restarts": {"worker": self.supervisor.restarts, "process": self.process_restarts},
            "last_error": self.last_error,
            "watchdog": self.settings.notifier.watchdog_interval is not None,
        }

    def _summary(self, fps: float | None = None) -> str:
        rate = f", {fps:.1f} frames/s" if fps is not None else ""
        return f"{self.state()}: scene {self.settings.details()['scene']}{rate}"

    def _inherit_previous(self) -> None:
        """Carry over the restart count and last error of the instance before us, whose
        record systemd kept in the runtime directory when it restarted the service."""
        if self.settings.status_path is None or not self.settings.status_path.is_file():
            return
        if not kept_by_systemd(self.settings.status_path):
            return  # a record left by a run by hand says nothing about restarts
        try:
            previous = read_status(self.settings.status_path)
        except UserError as exc:
            log.warning("ignoring the previous status: %s", exc)
            return
        if previous["pid"] == os.getpid() or process_exists(previous["pid"]):
            return
        restarts = previous["restarts"]
        count = restarts.get("process") if isinstance(restarts, dict) else None
        error = previous["last_error"]
        if not (_is_count(count) and (error is None or _is_error(error))):
            log.warning(
                "ignoring the previous status: %s: its restarts or last error are damaged",
                self.settings.status_path,
            )
            return
        self.process_restarts = count + 1
        self.last_error = error
        log.info(
            "restart %d of the program; the instance before ended in state %r",
            self.process_restarts,
            previous.get("state"),
        )


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_error(value: object) -> bool:
    """Whether ``value`` is a last error as ``note_error`` records it."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("at"), int | float)
        and isinstance(value.get("message"), str)
    )
