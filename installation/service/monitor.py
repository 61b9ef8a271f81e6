"""The service thread: watches the display loop and the inference worker, tells systemd and
staff what it sees, and keeps opening hours.

It runs apart from the display loop because everything it does can wait (a socket send, a file
write, joining a worker) and the display must not. Each quarter of a second it looks at the
counters the other two threads advance:

- READY=1 goes to systemd once the first frame is on screen, not when the program starts.
- WATCHDOG=1 goes only while both the display loop shows frames and the worker finishes them
  (or rests on purpose); a stuck worker therefore stops the pings and systemd restarts us,
  while a worker that crashed is restarted by the supervisor without bothering systemd.
- STATUS= and the health file (see health.py) say the scene, the frame rates and the state;
  ``latest`` hands the same record, and ``health`` a verdict for /healthz, to the web server.
- At closing time the picture fades to black, inference sleeps and the screen is switched
  off (power.py); at opening the screen is switched on first, then inference wakes and the
  picture fades in.
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
from installation.errors import UserError, first_line
from installation.score.hours import OpeningHours, ScreenPower
from installation.service.dimmer import Dimmer
from installation.service.health import (
    Record,
    kept_by_systemd,
    process_exists,
    read_status,
    write_status,
)
from installation.service.notify import Notifier
from installation.service.power import ScreenSwitcher, switch_for

log = logging.getLogger(__name__)

TICK = 0.25
REPORT_INTERVAL = 2.0
HOURS_INTERVAL = 1.0
STALL_LIMIT = 10.0
#: Seconds without a new frame on screen after which ``health`` says the display is stuck.
DISPLAY_LIMIT = 3.0
#: Seconds the opening fade waits for the screen to say it is on (a projector warming up).
POWER_WAIT = 60.0


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
        power: ScreenSwitcher | None = None,
    ) -> None:
        self.settings = settings
        self.loop = loop
        self.supervisor = supervisor
        self.dimmer = dimmer
        self.stopping = stopping
        self._clock = clock
        self._screen = settings.hours.screen
        self.power = power or ScreenSwitcher(switch_for(self._screen))
        self.started = clock()
        self.started_wall = time.time()
        self.ready = False
        self.last_error: Record | None = None
        self.process_restarts = 0
        self._first_frame: tuple[float, int] | None = None  # (when, frames shown by then)
        self._dropped = 0
        self._open = True
        self._opening: float | None = None  # since when the opening fade waits for the screen
        self._stuck = False
        self._stalled = 0.0
        self._told_stopping = False
        self._write_failing = False
        self._tick_error: str | None = None  # the error the last tick ended in
        self._last_ping = (0, -float("inf"))  # (frames shown, when)
        self._last_report = (0, 0, -float("inf"))  # (shown, generated, when)
        self._last_hours = -float("inf")
        self._last_frame = (0, self.started)  # (frames shown, when that count was first seen)
        self._latest: Record | None = None
        # (healthy, why not, when judged): replaced whole by each step, read by any thread
        self._health = (False, "starting: no frame on screen yet", self.started)
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name="service", daemon=True)

    def start(self) -> None:
        self._inherit_previous()
        self._open = self.settings.hours.is_open(self.settings.wall_clock())
        self.power.request(self._open)  # after a restart the screen may be as the last run left it
        self._thread.start()

    def stop(self) -> None:
        """End the thread, then write the final record and say STOPPING=1."""
        self._halt.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
        self._tell_stopping()
        self._report(self._clock(), final=True)
        self.power.close()

    def latest(self) -> Record | None:
        """The last health record reported (every 2 s), None before the first."""
        return self._latest

    def health(self) -> tuple[bool, str]:
        """Whether the show makes progress, and why not in one line, as the last tick judged
        it: frames reach the screen and the worker finishes them (or sleeps on purpose). A
        verdict the monitor has stopped renewing is itself the answer."""
        healthy, reason, when = self._health
        silent = self._clock() - when
        if silent > DISPLAY_LIMIT:
            return False, f"service: no check for {silent:.0f} s"
        return healthy, reason

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
        self._health = (*self._judge(shown, now), now)
        if now - self._last_report[2] >= REPORT_INTERVAL:
            self._report(now)

    def _keep_hours(self, now: float) -> None:
        """Fade out at closing, then put inference to sleep and switch the screen off once
        black; at opening, switch the screen on and wake inference, then fade in once the
        screen answered (or ``POWER_WAIT`` passed). The clock is read once a second, the
        fade and the screen followed on every tick."""
        hours = self.settings.hours
        is_open = self._open
        late = 0.0
        if now - self._last_hours >= HOURS_INTERVAL:
            self._last_hours = now
            wall = self.settings.wall_clock()
            is_open = hours.is_open(wall)
            late = hours.since_change(wall, 2 * HOURS_INTERVAL)
            self._follow_screen(hours.screen)
        if is_open != self._open:
            self._open = is_open
            if is_open:
                log.info("opening hours: open, switching the screen on, then fading in")
                self.supervisor.wake()
                self.power.request(True)
                self._opening = now
            else:
                log.info("opening hours: closed, fading out")
                self._opening = None
                self.dimmer.fade_to(0.0, hours.fade, late)
        if self._opening is not None:
            waited = now - self._opening
            if self.power.answered() or waited >= POWER_WAIT:
                if not self.power.answered():
                    log.warning("screen: no answer after %.0f s; fading in all the same", waited)
                self._opening = None
                self.dimmer.fade_to(1.0, hours.fade)
        if not self._open and self.dimmer.settled():
            self.supervisor.sleep()
            self.power.request(False)

    def _follow_screen(self, screen: ScreenPower) -> None:
        """Switch the screen another way from now on when a reload changed ``screen``."""
        if screen != self._screen:
            self._screen = screen
            log.info("reload: the screen is switched by %s from now on", screen.kind)
            self.power.use(switch_for(screen))

    def _watch(self, shown: int, now: float) -> None:
        """Ping the watchdog while both threads make progress; report a stuck worker once."""
        stalled = self.supervisor.stalled_for()
        self._stalled = stalled
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

    def _judge(self, shown: int, now: float) -> tuple[bool, str]:
        """Health as the watchdog judges it, with the reason for staff and load balancers."""
        if shown != self._last_frame[0]:
            self._last_frame = (shown, now)
        if self.supervisor.state is WorkerState.FAILED:
            error = self.supervisor.error
            return False, f"inference failed: {first_line(error) if error else 'gave up'}"
        if not self.ready:
            return False, "starting: no frame on screen yet"
        idle = now - self._last_frame[1]
        if idle > DISPLAY_LIMIT:
            return False, f"display: no frame for {idle:.0f} s"
        if self._stuck:
            return False, f"inference stuck for {self._stalled:.0f} s"
        return True, "ok"

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
        self._latest = record
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
        if self._opening is not None:
            return "opening"
        return "playing"

    def dropped(self, shown: int, now: float) -> int:
        """Screen refreshes the loop missed since the first frame: it is paced at the show's
        rate, so every tick it did not make is a frame the audience did not get. The estimate
        wavers by a frame with the moment it is taken (just before or after a present); the
        count kept never goes back, as /metrics exports it as a counter."""
        if self._first_frame is None:
            return 0
        began, shown_then = self._first_frame
        expected = int((now - began) / self.loop.budget)
        self._dropped = max(self._dropped, expected - (shown - shown_then))
        return self._dropped

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
