"""Steering a running show from outside: OSC, and reloading the show file.

``ShowControl`` is what ``installation run`` wraps around the show loop: the OSC server
(``osc/``) on its thread and the reloader (``reload``) on its own, both posting to the
conductor and never touching the engine or the display. SIGHUP reaches the same reloader
through ``installation.service.signals``, which ``installation run`` installs first thing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any

from installation.control.osc.addresses import AddressSpace
from installation.control.osc.server import Client, OscServer
from installation.control.reload import Reloader
from installation.engine.bundle import Bundle
from installation.score.conductor import Conductor
from installation.score.show import Show

log = logging.getLogger(__name__)


class ShowControl:
    """OSC server and reloader around a running show; a context manager. ``bundle`` is the
    one the show runs; ``on_reload`` is handed every reloaded show after the conductor and the
    OSC server took theirs."""

    def __init__(
        self,
        show: Show,
        conductor: Conductor,
        bundle: Bundle,
        on_reload: Callable[[Show], None] | None = None,
    ) -> None:
        self.conductor = conductor
        self.on_reload = on_reload
        self.reloader = Reloader(show, bundle, self._apply)
        self.osc: OscServer | None = None
        if show.osc.enabled:
            space = AddressSpace(conductor, self.reloader.request, self._reply)
            self.osc = OscServer(show.osc, space.dispatcher())
        else:
            log.info("osc: off (osc.enabled = false in the show)")

    def __enter__(self) -> ShowControl:
        self.reloader.start()
        if self.osc is not None:
            self.osc.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.osc is not None:
            self.osc.stop()
        self.reloader.stop()

    def _apply(self, show: Show) -> None:
        self.conductor.replace_show(show)
        if self.osc is not None:
            self.osc.update(show.osc)
        if self.on_reload is not None:
            self.on_reload(show)

    def _reply(self, client: Client, address: str, args: list[Any]) -> None:
        if self.osc is not None:
            self.osc.reply(client, address, args)
