"""The service side of a running show, as the show loop sees it.

The show loop sees only :class:`Service`: a master brightness to multiply its picture by, and
whether to stop. Behind it: the monitor thread (systemd notifications and watchdog, health
record, opening hours; monitor.py), SIGTERM handling (fade to black, then exit 0), and a record
of the last error for ``installation status``. The supervisor that restarts a failed inference
worker is in supervisor.py; the show loop creates it and hands it over here.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from installation.hours import ALWAYS_OPEN, OpeningHours
from installation.service.dimmer import Dimmer
from installation.service.health import Record, status_file
from installation.service.monitor import STALL_LIMIT, LoopProgress, Monitor, ShowInfo
from installation.service.notify import Notifier
from installation.service.supervisor import WorkerSupervisor
from installation.show import Show

log = logging.getLogger(__name__)

#: Seconds from full brightness to black after SIGTERM: the whole stop must fit in 2 s.
STOP_FADE = 0.8


def local_now() -> datetime:
    """Wall-clock time in the system's time zone, which is what opening hours are written in."""
    return datetime.now().astimezone()


class Service:
    """Owns the dimmer, the monitor thread and signal handling for one run of a show.

    A bare ``Service()`` (tests, ``installation bench``) talks to nobody: no systemd, no
    health file, no signal handlers, always open; ``installation run`` configures one fully.
    """

    def __init__(
        self,
        info: ShowInfo | None = None,
        hours: OpeningHours = ALWAYS_OPEN,
        notifier: Notifier | None = None,
        status_path: Path | None = None,
        scene: Callable[[], str] = lambda: "-",
        engine: Callable[[], Record] = lambda: {"backend": "-"},
        handle_signals: bool = False,
        wall_clock: Callable[[], datetime] = local_now,
        stall_limit: float = STALL_LIMIT,
    ) -> None:
        self.info = info or ShowInfo(path="-", title="-")
        self.hours = hours
        self.notifier = notifier or Notifier()
        self.status_path = status_path
        self.scene = scene
        self.engine = engine
        self.handle_signals = handle_signals
        self.wall_clock = wall_clock
        self.stall_limit = stall_limit
        self.dimmer = Dimmer(1.0 if hours.is_open(wall_clock()) else 0.0)
        self.monitor: Monitor | None = None
        self._stopping = threading.Event()
        self._previous_handler: Any = None
        self._errors = _LastError(self)

    @classmethod
    def for_run(cls, show: Show, engine: Callable[[], Record], scene: Callable[[], str]) -> Service:
        """The service of ``installation run``: systemd when it started us, the health
        record for ``installation status`` (``engine`` says the backend and stages in use),
        the show's opening hours, SIGTERM handled."""
        return cls(
            ShowInfo(str(show.path), show.title),
            hours=show.hours,
            notifier=Notifier.from_environment(),
            status_path=status_file(),
            scene=scene,
            engine=engine,
            handle_signals=True,
        )

    def reload(self, show: Show) -> None:
        """Take the opening hours of a reloaded show file from the next check on."""
        if show.hours != self.hours:
            log.info("reload: new opening hours")
        self.hours = show.hours
        if self.monitor is not None:
            self.monitor.hours = show.hours

    def level(self) -> float:
        """The master brightness for this tick: 0 outside opening hours and after SIGTERM."""
        return self.dimmer.level()

    @property
    def finished(self) -> bool:
        """True once a requested stop has faded the picture to black."""
        return self._stopping.is_set() and self.dimmer.level() == 0.0

    def request_stop(self) -> None:
        """Fade to black and then stop (what SIGTERM does)."""
        if not self._stopping.is_set():
            log.info("stop requested: fading to black")
            self._stopping.set()
            self.dimmer.fade_to(0.0, STOP_FADE)

    def start(self, loop: LoopProgress, supervisor: WorkerSupervisor) -> None:
        """Begin watching the show loop's ``loop`` statistics and the ``supervisor``."""
        self.monitor = Monitor(
            self.info,
            loop,
            supervisor,
            self.dimmer,
            self.notifier,
            self.hours,
            self.status_path,
            self.scene,
            self.engine,
            self._stopping,
            self.wall_clock,
            self.stall_limit,
        )
        logging.getLogger().addHandler(self._errors)
        if self.handle_signals and threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGTERM, self._on_sigterm)
        self.monitor.start()

    def stop(self) -> None:
        if self._previous_handler is not None:
            signal.signal(signal.SIGTERM, self._previous_handler)
            self._previous_handler = None
        if self.monitor is not None:
            self.monitor.stop()
        logging.getLogger().removeHandler(self._errors)

    def _on_sigterm(self, _signum: int, _frame: FrameType | None) -> None:
        self.request_stop()


class _LastError(logging.Handler):
    """Hands every ERROR record to the monitor, whatever part of the program logged it."""

    def __init__(self, service: Service) -> None:
        super().__init__(logging.ERROR)
        self.service = service

    def emit(self, record: logging.LogRecord) -> None:
        monitor = self.service.monitor
        if monitor is not None:
            message = record.getMessage().strip().splitlines()
            monitor.note_error(record.created, message[0] if message else record.name)
