"""Talking to systemd through its notification socket (sd_notify), via systemd-python.

With ``Type=notify`` systemd waits for READY=1 before it calls the service started, and with
``WatchdogSec=`` it restarts a service whose WATCHDOG=1 pings stop. Where there is no systemd
(a laptop in rehearsal, another OS) ``NOTIFY_SOCKET`` is unset and every call here does
nothing, so the runtime runs the same everywhere; systemd-python is only needed on the kiosk.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

Send = Callable[[str], bool]


class Notifier:
    """Sends state changes to systemd; a Notifier without ``send`` is silent."""

    def __init__(self, send: Send | None = None, watchdog_interval: float | None = None) -> None:
        self._send = send
        self.watchdog_interval = watchdog_interval
        self._warned = False

    @classmethod
    def from_environment(cls) -> Notifier:
        """A Notifier for the service manager that started us, if any: sd_notify itself
        reads ``NOTIFY_SOCKET`` from the process environment."""
        if not os.environ.get("NOTIFY_SOCKET"):
            return cls()
        try:
            from systemd.daemon import notify
        except ImportError:
            log.error(
                "NOTIFY_SOCKET is set but systemd-python is not installed: systemd will not "
                "hear that the show is ready (install the project with its 'kiosk' extra)"
            )
            return cls()
        return cls(notify, watchdog_interval(os.environ))

    @property
    def enabled(self) -> bool:
        return self._send is not None

    def ready(self, status: str) -> None:
        self._notify("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self._notify(f"STATUS={status}")

    def watchdog(self) -> None:
        self._notify("WATCHDOG=1")

    def stopping(self, status: str) -> None:
        self._notify("STOPPING=1", f"STATUS={status}")

    def _notify(self, *fields: str) -> None:
        if self._send is None:
            return
        try:
            self._send("\n".join(fields))
        except OSError as exc:
            # The socket can vanish while systemd restarts; the show must not mind.
            if not self._warned:
                log.warning("cannot notify systemd: %s", exc)
                self._warned = True


def watchdog_interval(environ: Mapping[str, str]) -> float | None:
    """How often to ping, from the variables systemd sets with ``WatchdogSec=``: half the
    timeout, as sd_watchdog_enabled(3) advises, or None when no watchdog watches us.

    ``WATCHDOG_PID`` names the process systemd watches; a child that merely inherited the
    variables must not ping on its parent's behalf.
    """
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2e6
