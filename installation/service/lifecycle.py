"""The service side of a running show, as the show loop sees it.

The show loop sees only :class:`Service`: a master brightness to multiply its picture by, and
whether to stop. Behind it: the monitor thread (systemd notifications and watchdog, health
record, opening hours and the screen's power with them; monitor.py, power.py), stopping on
SIGTERM or SIGINT (fade to black, then exit 0; the signals come through signals.py), and a
record of the last error for ``installation status``. The supervisor that restarts a failed
inference worker is in installation.engine.supervisor; the running show (installation.player)
creates it and hands it over here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from installation.engine.supervisor import WorkerSupervisor
from installation.score.hours import ALWAYS_OPEN, OpeningHours
from installation.score.show import Show
from installation.service.dimmer import Dimmer
from installation.service.health import Record, status_file
from installation.service.monitor import (
    STALL_LIMIT,
    LoopProgress,
    Monitor,
    ServiceSettings,
    ShowInfo,
)
from installation.service.notify import Notifier
from installation.service.signals import RunSignals

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
        details: Callable[[], Record] = lambda: {"backend": "-", "scene": "-"},
        signals: RunSignals | None = None,
        wall_clock: Callable[[], datetime] = local_now,
        stall_limit: float = STALL_LIMIT,
    ) -> None:
        self.settings = ServiceSettings(
            info or ShowInfo(path="-", title="-"),
            hours,
            notifier or Notifier(),
            status_path,
            details,
            wall_clock,
            stall_limit,
        )
        self.signals = signals
        self.dimmer = Dimmer(1.0 if hours.is_open(wall_clock()) else 0.0)
        self.monitor: Monitor | None = None
        self._stopping = threading.Event()
        self._errors = _LastError(self)

    @classmethod
    def for_run(cls, show: Show, details: Callable[[], Record], signals: RunSignals) -> Service:
        """The service of ``installation run``: systemd when it started us, the health
        record for ``installation status`` (``details`` says the scene, the backend and
        stages in use and whether OSC listens), the show's opening hours, SIGTERM and SIGINT
        handled."""
        return cls(
            ShowInfo(str(show.path), show.title),
            hours=show.hours,
            notifier=Notifier.from_environment(),
            status_path=status_file(),
            details=details,
            signals=signals,
        )

    def reload(self, show: Show) -> None:
        """Take the opening hours of a reloaded show file from the monitor's next check on."""
        if show.hours != self.settings.hours:
            log.info("reload: new opening hours")
        self.settings.hours = show.hours

    def level(self) -> float:
        """The master brightness for this tick: 0 outside opening hours and after SIGTERM."""
        return self.dimmer.level()

    @property
    def finished(self) -> bool:
        """True once a requested stop has faded the picture to black."""
        return self._stopping.is_set() and self.dimmer.level() == 0.0

    def request_stop(self) -> None:
        """Fade to black and then stop (what SIGTERM and SIGINT do); asked again during the
        fade (an impatient second signal), go black at once: the run still ends cleanly."""
        if not self._stopping.is_set():
            log.info("stop requested: fading to black")
            self._stopping.set()
            self.dimmer.fade_to(0.0, STOP_FADE)
        elif not self.finished:
            log.info("stop requested again: cutting the fade short")
            self.dimmer.cut_to(0.0)

    def start(self, loop: LoopProgress, supervisor: WorkerSupervisor) -> None:
        """Begin watching the show loop's ``loop`` statistics and the ``supervisor``."""
        self.monitor = Monitor(self.settings, loop, supervisor, self.dimmer, self._stopping)
        logging.getLogger().addHandler(self._errors)
        if self.signals is not None:
            self.signals.playing(self.request_stop)
        self.monitor.start()

    def stop(self) -> None:
        if self.signals is not None:
            self.signals.ended()
        if self.monitor is not None:
            self.monitor.stop()
        logging.getLogger().removeHandler(self._errors)


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
