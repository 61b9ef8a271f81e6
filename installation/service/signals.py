"""The signals of ``installation run``, handled from its first line to its exit.

systemd and staff send signals whenever they like, not only while the show plays: SIGHUP
(``systemctl reload``) may come while the bundle still loads, and its default action ends the
process with no word in the log; an impatient second SIGTERM or Ctrl-C may come while threads
are being joined after the fade, and end with a signal a run that was stopping cleanly.
``RunSignals`` is installed before anything else and stays until the process exits; the parts
of the show take the signals while they are up and hand them back when they are done.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class RunSignals:
    """SIGHUP goes to the reloader while it is up (see ``reloading``) and is remembered until
    then. SIGTERM and SIGINT go to the running show's ``stop`` (see ``playing``); before it
    plays they end the start-up at once (SIGTERM with exit 0, Ctrl-C as ever). Once it has
    ended (``ended``) all three are ignored: the process is on its way out, its exit status
    decided."""

    def __init__(self) -> None:
        self._reload = False
        self._request: Callable[[], None] | None = None
        self._stop: Callable[[], None] | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> RunSignals:
        """Take SIGHUP, SIGTERM and SIGINT (from the main thread, as Python requires)."""
        for signum in (signal.SIGHUP, *STOP_SIGNALS):
            self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def uninstall(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def __enter__(self) -> RunSignals:
        return self.install()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.uninstall()

    def reloading(self, request: Callable[[], None] | None) -> bool:
        """From now on every SIGHUP calls ``request`` (None: remembered again, as before the
        reloader was up). Whether one came while none was set: the caller passes it on."""
        self._request = request
        requested, self._reload = self._reload, False
        return requested

    def playing(self, stop: Callable[[], None]) -> None:
        """From now on every SIGTERM and SIGINT calls ``stop``."""
        self._stop = stop

    def ended(self) -> None:
        """The show has stopped: later signals change nothing. Ignored by the kernel rather
        than by a handler, because Python puts back the default actions of its handlers as it
        shuts down, and a signal then would still end the process."""
        self._stop = None
        for signum in self._previous:
            signal.signal(signum, signal.SIG_IGN)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            if self._request is not None:
                self._request()
            else:
                self._reload = True
        elif self._stop is not None:
            self._stop()
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        else:
            log.info("stop requested during start-up")
            raise SystemExit(0)
