"""The OSCQuery server: the OSC namespace as JSON over HTTP, and its values pushed over a
websocket, as the OSCQuery proposal (Vidvox, github.com/Vidvox/OSCQueryProposal) describes.

``GET /`` is the whole tree, ``GET /scene`` one node, ``GET /scene?VALUE`` one attribute,
``GET /?HOST_INFO`` where the OSC server listens. A websocket opened on the same port takes
``{"COMMAND": "LISTEN", "DATA": "/scene"}`` (and ``IGNORE``) and then receives each change of
that address's value as an OSC message in a binary frame.

Values come from ``Conductor.status()``, read on this server's loop a few times a second;
changes are pushed from there, so the display thread is never asked for anything. Each
websocket has a bounded queue: a client that does not read is closed, never waited for.
The allow list and per-sender rate are the OSC server's (``[osc] allow`` and ``max_rate``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from aiohttp import WSMsgType, web
from pythonosc.osc_message_builder import OscMessageBuilder

from installation.control.httpthread import HttpThread
from installation.control.limits import SenderRates, in_networks
from installation.control.osc.addresses import ADDRESSES
from installation.control.oscquery import namespace
from installation.control.oscquery.announce import Announcement
from installation.ratelog import RateLimitedLog, clipped
from installation.score.conductor import Conductor
from installation.score.osc_settings import OscSettings

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Seconds between two reads of the conductor's state for LISTEN.
POLL = 0.25
#: Open websockets at most, and changes waiting to be sent to one.
MAX_SOCKETS = 32
QUEUE = 64
#: The largest websocket message read (a LISTEN command is tiny).
MAX_MESSAGE = 1024
#: Seconds between pings to a websocket (one that does not answer is closed), and that a
#: closing one gets to answer, so that stopping the show never waits long on a client.
HEARTBEAT = 10.0
CLOSE = 1.0
#: Senders whose rate is remembered.
MAX_SENDERS = 1024
EXTENSIONS = {
    "ACCESS": True,
    "VALUE": True,
    "RANGE": True,
    "DESCRIPTION": True,
    "LISTEN": True,
    "PATH_CHANGED": False,
    "TAGS": False,
    "CLIPMODE": False,
    "UNIT": False,
    "CRITICAL": False,
}


class OscQueryServer(HttpThread):
    """Serves on ``[osc] address`` and ``query_port``; ``osc_address()`` says where the OSC
    server listens (None until it has bound). ``announce`` adds the mDNS announcement once
    listening (tests of HTTP alone leave it off). ``clock`` paces rates and log lines."""

    def __init__(
        self,
        settings: OscSettings,
        conductor: Conductor,
        osc_address: Callable[[], tuple[str, int] | None],
        announce: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__("oscquery", "OSCQuery", log, RateLimitedLog(log, clock=clock))
        self.settings = settings
        self.conductor = conductor
        self.osc_address = osc_address
        self.announce = announce
        self.service_name = f"installation on {socket.gethostname()}"
        self.clock = clock
        self._rates = SenderRates(MAX_SENDERS)
        self._sockets: dict[web.WebSocketResponse, _Listener] = {}

    def update(self, settings: OscSettings) -> None:
        """A reloaded show's allow list and rate; where it listens needs a restart (the OSC
        server says so)."""
        self.settings = replace(
            settings, address=self.settings.address, query_port=self.settings.query_port
        )

    def _listening(self) -> tuple[str, int]:
        assert self.settings.query_port is not None
        return self.settings.address, self.settings.query_port

    async def _serving(self) -> None:
        announcement = None
        if self.announce and self.address is not None:
            announcement = Announcement(
                self.service_name, self.settings.address, self.address[1], self._osc_port
            )
            announcement.start()
        poll = asyncio.create_task(self._poll())
        try:
            await super()._serving()
        finally:
            poll.cancel()
            # One still in its handshake cannot be closed yet (RuntimeError): the runner's
            # cleanup ends it; nothing here may skip withdrawing the announcement.
            await asyncio.gather(
                *(ws.close() for ws in list(self._sockets)), return_exceptions=True
            )
            if announcement is not None:
                await asyncio.get_running_loop().run_in_executor(None, announcement.stop)

    def _osc_port(self) -> int | None:
        address = self.osc_address()
        return None if address is None else address[1]

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/{path:.*}", self._get)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.remote or "-"
        if not in_networks(host, self.settings.allow):
            return self._refuse(request, 403, "refused", f"forbidden: {host} is not in allow")
        if not self._rates.spend(host, 1.0, self.settings.max_rate, self.clock()):
            return self._refuse(
                request, 429, "over_rate", f"too many requests: over {self.settings.max_rate:g}/s"
            )
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return self._refuse(request, exc.status, "bad request", f"{exc.status} {exc.reason}")

    def _refuse(self, request: web.Request, status: int, kind: str, line: str) -> web.Response:
        self._log_refusal(request, kind, status, line)
        return web.Response(status=status, text=f"{line}\n")

    async def _get(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        query = request.query_string
        if query == "HOST_INFO":
            return web.json_response(self.host_info())
        status = self.conductor.status()
        node = namespace.find(namespace.tree(status, self.conductor.scene_names()), request.path)
        if node is None:
            return self._refuse(request, 404, "not found", f"no such node: {request.path}")
        if not query:
            return web.json_response(node)
        if query not in namespace.ATTRIBUTES:
            return self._refuse(request, 400, "bad request", f"unknown attribute: {query}")
        if query not in node:
            return web.Response(status=204)
        return web.json_response({query: node[query]})

    def host_info(self) -> dict[str, Any]:
        """``?HOST_INFO``: the name, and where and how OSC is sent to the show."""
        info: dict[str, Any] = {
            "NAME": self.service_name,
            "EXTENSIONS": EXTENSIONS,
            "OSC_TRANSPORT": "UDP",
        }
        osc = self.osc_address()
        if osc is not None:
            info["OSC_IP"], info["OSC_PORT"] = osc
        return info

    # LISTEN over websockets.

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if len(self._sockets) >= MAX_SOCKETS:
            return self._refuse(request, 503, "busy", f"over {MAX_SOCKETS} websockets open")
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE, heartbeat=HEARTBEAT, timeout=CLOSE)
        listener = self._sockets[ws] = _Listener(ws)  # counted before the handshake's await
        sender = asyncio.create_task(listener.send())
        host = request.remote or "-"
        try:
            await ws.prepare(request)
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                if not self._rates.spend(host, 1.0, self.settings.max_rate, self.clock()):
                    self.problems.warning("over_rate", f"oscquery: {host} sends too fast")
                    continue
                self._command(listener, host, message.data)
        finally:
            del self._sockets[ws]
            sender.cancel()
        return ws

    def _command(self, listener: _Listener, host: str, text: str) -> None:
        try:
            command = json.loads(text)
            verb, path = command["COMMAND"], command["DATA"]
        except (ValueError, TypeError, KeyError, RecursionError):
            verb = path = None
        if verb not in ("LISTEN", "IGNORE") or path not in ADDRESSES:
            self.problems.warning(
                "command",
                f"oscquery: ignored websocket command from {host}: {clipped(text, 80)} "
                "(expected LISTEN or IGNORE and an address)",
            )
            return
        if verb == "LISTEN":
            listener.paths.add(path)
        else:
            listener.paths.discard(path)

    async def _poll(self) -> None:
        """Read the values a few times a second and queue each change to whoever listens."""
        last = namespace.values(self.conductor.status())
        while True:
            await asyncio.sleep(POLL)
            now = namespace.values(self.conductor.status())
            for address, value in now.items():
                if value != last.get(address):
                    self._push(address, value)
            last = now

    def _push(self, address: str, value: tuple[Any, ...]) -> None:
        builder = OscMessageBuilder(address)
        for tag, argument in zip(ADDRESSES[address].type, value, strict=True):
            builder.add_arg(argument, tag)
        packet = builder.build().dgram
        for listener in list(self._sockets.values()):
            if address in listener.paths and not listener.offer(packet):
                self.problems.warning("slow", "oscquery: closed a websocket that does not read")


class _Listener:
    """One websocket: the addresses it listens to and its bounded queue of OSC packets."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.paths: set[str] = set()
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE)

    def offer(self, packet: bytes) -> bool:
        """Queue ``packet``; False, and the socket closing, if the client is that far behind."""
        try:
            self.queue.put_nowait(packet)
        except asyncio.QueueFull:
            asyncio.get_running_loop().create_task(self.ws.close())
            return False
        return True

    async def send(self) -> None:
        while True:
            packet = await self.queue.get()
            try:
                await self.ws.send_bytes(packet)
            except (ConnectionError, RuntimeError):  # closed under way: the reader ends it
                return
