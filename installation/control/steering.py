"""Steering a running show from outside: OSC, the web remote, and reloading the show file.

``ShowControl`` is what ``installation run`` wraps around the show loop: the OSC server
(``osc/``) with its OSCQuery description (``oscquery/``) and the web server (``web/``) each
on its thread and the reloader (``reload``) on its own, all posting to the conductor and
never touching the engine or the display. SIGHUP reaches the same reloader through
``installation.service.signals``, which ``installation run`` installs first thing. In a room
in lockstep (``[sync]``) the sync peer (``sync/``) is one more input: on the leader it sends
the conductor's state to the room, on a follower it installs the leader's, and the conductor
then refuses the follower's own controls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType
from typing import Any

from installation.control.dmx import dmx_receiver
from installation.control.dmx.receiver import DmxReceiver
from installation.control.events import EventSender
from installation.control.midi import MidiInput
from installation.control.osc.addresses import AddressSpace
from installation.control.osc.server import Client, OscServer
from installation.control.oscquery.server import OscQueryServer
from installation.control.reload import Reloader
from installation.control.sync.clock import SharedClock
from installation.control.sync.identity import show_identity
from installation.control.sync.peer import SyncPeer
from installation.control.web.server import WebServer, WebSources
from installation.engine.bundle import Bundle
from installation.score.conductor import Conductor
from installation.score.show import Show
from installation.score.web_settings import WebSettings

log = logging.getLogger(__name__)


class ShowControl:
    """OSC server, web server and reloader around a running show; a context manager.
    ``bundle`` is the one the show runs; ``on_reload`` is handed every reloaded show after the
    conductor and the servers took theirs; ``web`` is what the web server reads of the running
    show (None: no web server, whatever the show says); ``clock`` is the room's show time for
    a show in lockstep (None: no sync peer, whatever the show says)."""

    def __init__(
        self,
        show: Show,
        conductor: Conductor,
        bundle: Bundle,
        on_reload: Callable[[Show], None] | None = None,
        web: WebSources | None = None,
        clock: SharedClock | None = None,
    ) -> None:
        self.conductor = conductor
        #: What the show started with and keeps until it restarts, whatever a reload reads.
        self.started = (show.display, show.sync, bundle)
        self.on_reload = on_reload
        self.reloader = Reloader(show, bundle, self._apply)
        self.osc: OscServer | None = None
        self.oscquery: OscQueryServer | None = None
        if show.osc.enabled:
            space = AddressSpace(conductor, self.reloader.request, self._reply)
            self.osc = OscServer(show.osc, space.dispatcher())
            self.oscquery = _oscquery(show, conductor, self.osc)
        else:
            log.info("osc: off (osc.enabled = false in the show)")
        self.web_sources = web
        self.web: WebServer | None = self._web_server(show.web)
        self.events = EventSender(conductor, show.osc.send_to)
        self.dmx: DmxReceiver | None = None
        if show.dmx is not None:
            self.dmx = dmx_receiver(show.dmx, conductor)
        self.midi: MidiInput | None = None
        if show.midi is not None:
            space = AddressSpace(conductor, self.reloader.request, self._reply)
            self.midi = MidiInput(show.midi, space)
        self.sync: SyncPeer | None = None
        if clock is not None and show.sync is not None:
            self.sync = SyncPeer(show.sync, conductor, clock, self._identity(show))

    def __enter__(self) -> ShowControl:
        self.reloader.start()
        if self.osc is not None:
            self.osc.start()
        if self.oscquery is not None:
            self.oscquery.start()
        if self.web is not None:
            self.web.start()
        self.events.start()
        if self.dmx is not None:
            self.dmx.start()
        if self.midi is not None:
            self.midi.start()
        if self.sync is not None:
            self.sync.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.reloader.stop()  # first: a reload may replace the web server
        if self.web is not None:
            self.web.stop()
        if self.oscquery is not None:
            self.oscquery.stop()
        if self.osc is not None:
            self.osc.stop()
        self.events.stop()
        if self.dmx is not None:
            self.dmx.stop()
        if self.midi is not None:
            self.midi.stop()
        if self.sync is not None:
            self.sync.stop()

    def _apply(self, show: Show) -> None:
        if self.sync is not None:
            # First: a leader whose show changed must not send its new scenes to followers
            # of the old identity, which would read them against their old scenes.
            self.sync.reidentify(self._identity(show))
        self.conductor.replace_show(show)
        if self.osc is not None:
            self.osc.update(show.osc)
        if self.oscquery is not None:
            self.oscquery.update(show.osc)
        if self.osc is not None and show.osc.query_port != (
            None if self.oscquery is None else self.oscquery.settings.query_port
        ):
            log.warning("oscquery: a changed query_port takes effect when the show restarts")
        self._reload_web(show.web)
        self.events.update(show.osc.send_to)
        if show.dmx != (None if self.dmx is None else self.dmx.settings):
            log.warning("dmx: changes to [dmx] take effect when the show restarts")
        if self.midi is not None and show.midi is not None:
            self.midi.update(show.midi)
        elif (self.midi is None) != (show.midi is None):
            log.warning("midi: adding or removing [midi] takes effect when the show restarts")
        if show.sync != self.started[1]:
            log.warning("sync: changes to [sync] take effect when the show restarts")
        if self.on_reload is not None:
            self.on_reload(show)

    def _identity(self, show: Show) -> str:
        """The identity of ``show`` as this PC plays it: a reload's new scenes, but the display
        and bundle the show started with, which change only at a restart."""
        display, _, bundle = self.started
        return show_identity(replace(show, display=display), bundle)

    def _web_server(self, settings: WebSettings) -> WebServer | None:
        if not settings.enabled or self.web_sources is None:
            return None
        return WebServer(settings, self.conductor, self.web_sources)

    def _reload_web(self, settings: WebSettings) -> None:
        """A reloaded ``[web]``: the allow list, token and rate apply at once (a new token
        logs everyone out); a change to where it listens, or turning it on or off, replaces
        the server (on this, the reload thread: stopping takes at most a few seconds)."""
        server = self.web
        if server is not None and server.settings.listening == settings.listening:
            server.update(settings)
            return
        if server is None and not settings.enabled:
            return
        if server is not None:
            log.info("web: reload: stopping the server on %s:%d", *server.settings.listening[1:])
            self.web = None
            server.stop()
        self.web = self._web_server(settings)
        if self.web is not None:
            self.web.start()

    def _reply(self, client: Client, address: str, args: list[Any]) -> None:
        if self.osc is not None:
            self.osc.reply(client, address, args)


def _oscquery(show: Show, conductor: Conductor, osc: OscServer) -> OscQueryServer | None:
    """The OSCQuery server where ``[osc] query_port`` asks for one: it describes the OSC
    server, so it runs only beside it."""
    if show.osc.query_port is None:
        return None
    return OscQueryServer(show.osc, conductor, lambda: osc.address)
