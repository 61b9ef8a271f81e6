"""The web server: the status page, the remote's API, /healthz and /metrics, on its own thread.

aiohttp serves on an asyncio loop of its own thread, so nothing a browser, a load balancer or
Prometheus does can hold up the display; handlers only read what the show already keeps
(records, counters, the conductor's state) or make one conductor call, which holds its lock
for a few assignments. The work that costs (the JPEG thumbnail, the metrics exposition, which
may ask the GPU) runs on a small pool of its own, so a slow encode delays no other request.

Every request first passes the ``security.Gate`` (allow list, rate, token, CSRF); a refusal
is one line to the client and at most one log line per kind per 10 s. The page's files are a
fixed map of names read once at start: no path from a request ever reaches the file system.

If the port cannot be bound (in use, or an address the network has not brought up yet), the
show plays on without the remote and the server tries again every few seconds, as OSC does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from installation.control.httpthread import HttpThread
from installation.control.osc.arguments import BadArguments
from installation.control.web.actions import ACTIONS, MORPH_SPEED, TRUNCATION
from installation.control.web.logtail import LogTail
from installation.control.web.security import (
    COOKIE,
    CSRF_HEADER,
    SESSION_SECONDS,
    Gate,
    Refused,
    Visitor,
)
from installation.errors import UserError, first_line
from installation.output.thumbnail import Thumbnails
from installation.ratelog import RateLimitedLog, clipped
from installation.score.conductor import Conductor
from installation.score.web_settings import WebSettings

log = logging.getLogger(__name__)

Record = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The largest request body read (the API's JSON objects and the login form are tiny).
MAX_BODY = 1024
#: Threads for the costly work (thumbnails, metrics); more would only queue on the GIL.
WORKERS = 2
STATIC = Path(__file__).resolve().parent / "static"
#: The page's files, by the path they are served at; nothing else is ever read.
PAGES = {
    "/": ("index.html", "text/html"),
    "/login": ("login.html", "text/html"),
    "/static/app.js": ("app.js", "text/javascript"),
    "/static/style.css": ("style.css", "text/css"),
}
#: What a client may fetch before it logs in: the login page and its style.
PUBLIC = ("/login", "/static/style.css")
#: Where the guard leaves the admitted visitor for the handler.
VISITOR = web.RequestKey("visitor", Visitor)
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
}


@dataclass(frozen=True)
class WebSources:
    """What the server reads from the running show, as plain callables (the running show,
    installation.player, builds them; control never reaches into the service): the health
    record as ``installation status`` sees it, whether the show makes progress (ok, reason),
    the Prometheus exposition (body, content type), the thumbnails, the log tail."""

    status: Callable[[], Record]
    health: Callable[[], tuple[bool, str]]
    metrics: Callable[[], tuple[bytes, str]]
    thumbnails: Thumbnails
    log: LogTail


class WebServer(HttpThread):
    """Serves as ``settings`` say; ``start`` and ``stop`` from the thread that owns it,
    ``update`` from the reload thread. ``clock`` paces rates, logins and log lines (tests set
    it)."""

    def __init__(
        self,
        settings: WebSettings,
        conductor: Conductor,
        sources: WebSources,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__("web", "the web remote", log, RateLimitedLog(log, clock=clock), WORKERS)
        self.gate = Gate(settings, clock)
        self.conductor = conductor
        self.sources = sources
        self._pages = _read_pages()

    @property
    def settings(self) -> WebSettings:
        return self.gate.settings

    def start(self) -> None:
        """Start serving; returns once listening, or once the first try has failed (said in
        the log; the thread keeps trying)."""
        logging.getLogger().addHandler(self.sources.log)
        super().start()

    def stop(self) -> None:
        """Stop serving (``HttpThread.stop``) and leave the log alone."""
        super().stop()
        logging.getLogger().removeHandler(self.sources.log)

    def update(self, settings: WebSettings) -> None:
        """A reloaded show's allow list, token and rate, at once; where it listens needs a
        new server (installation.control.steering does that)."""
        self.gate.update(settings)

    def _listening(self) -> tuple[str, int]:
        return self.settings.address, self.settings.port

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_BODY)
        app.on_response_prepare.append(_secure)
        for path in PAGES:
            app.router.add_get(path, self._page)
        app.router.add_post("/login", self._login)
        app.router.add_post("/logout", self._logout)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/api/log", self._log)
        app.router.add_get("/api/thumbnail.jpg", self._thumbnail)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        for path in ACTIONS:
            app.router.add_post(path, self._action)
        return app

    # Every request: the gate, then the handler; every refusal one line.

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            visitor = self._admit(request)
            if visitor is None:
                if request.path == "/" and request.method in ("GET", "HEAD"):
                    return web.Response(status=303, headers={"Location": "/login"})
                raise Refused(
                    401,
                    "unauthorized",
                    "unauthorized: send Authorization: Bearer TOKEN, or log in at /login",
                )
            request[VISITOR] = visitor
            return await handler(request)
        except Refused as refusal:
            return self._refuse(request, refusal)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return self._refuse(request, _http_refusal(request, exc))

    def _admit(self, request: web.Request) -> Visitor | None:
        """The gate's checks in their order; the visitor, or None where the request needs a
        login and has none (public pages get an anonymous visitor)."""
        host = request.remote or "-"
        self.gate.admit(host)
        visitor = self.gate.identify(
            host, request.host, request.headers.get("Authorization"), request.cookies.get(COOKIE)
        )
        if request.method != "POST":
            public = visitor is None and request.path in PUBLIC
            return Visitor(host, "") if public else visitor
        if request.path != "/login" and visitor is None:
            return None  # 401 comes before the CSRF checks
        self.gate.check_origin(
            f"{request.scheme}://{request.host}",
            request.headers.get("Origin"),
            request.headers.get("Referer"),
        )
        if request.path == "/login":
            return visitor or Visitor(host, "")
        assert visitor is not None
        self.gate.check_change(visitor, request.headers.get(CSRF_HEADER))
        return visitor

    def _refuse(self, request: web.Request, refusal: Refused) -> web.Response:
        if refusal.kind is not None:
            self._log_refusal(request, refusal.kind, refusal.status, refusal.line)
        return _problem(request, refusal.status, refusal.line, refusal.headers)

    # The handlers.

    async def _page(self, request: web.Request) -> web.Response:
        name, kind = PAGES[request.path]
        body = self._pages.get(name)
        if body is None:
            return _problem(request, 503, f"the page is not installed ({name} is missing)")
        return web.Response(body=body, content_type=kind, charset="utf-8")

    async def _login(self, request: web.Request) -> web.Response:
        form = parse_qs((await request.read()).decode("utf-8", "replace"), max_num_fields=4)
        session = self.gate.login(request.remote or "-", form.get("token", [""])[0])
        response = web.Response(status=303, headers={"Location": "/"})
        response.set_cookie(
            COOKIE,
            session,
            max_age=int(SESSION_SECONDS),
            path="/",
            httponly=True,
            samesite="Strict",
        )
        return response

    async def _logout(self, request: web.Request) -> web.Response:
        self.gate.logout(request[VISITOR].session)
        response = web.Response(status=303, headers={"Location": "/login"})
        response.del_cookie(COOKIE, path="/")
        return response

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(self.status(request[VISITOR]))

    async def _log(self, request: web.Request) -> web.Response:
        return web.json_response({"lines": self.sources.log.lines()})

    async def _thumbnail(self, request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        try:
            jpeg = await loop.run_in_executor(
                None, self.sources.thumbnails.jpeg, request[VISITOR].viewer
            )
        except Thumbnails.TooSoon as exc:
            wait = str(max(1, math.ceil(exc.retry_after)))
            raise Refused(429, None, str(exc), {"Retry-After": wait}) from None
        except Thumbnails.Unavailable as exc:
            return _problem(request, 503, f"no thumbnail: {exc.reason}")
        return web.Response(body=jpeg, content_type="image/jpeg")

    async def _healthz(self, request: web.Request) -> web.Response:
        ok, reason = self.sources.health()
        return web.Response(status=200 if ok else 503, text="ok\n" if ok else f"{reason}\n")

    async def _metrics(self, request: web.Request) -> web.Response:
        body, kind = await asyncio.get_running_loop().run_in_executor(None, self.sources.metrics)
        return web.Response(body=body, headers={"Content-Type": kind})

    async def _action(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            data = json.loads(body) if body.strip() else {}
        except (ValueError, RecursionError) as exc:
            raise Refused(400, "bad request", f"the body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise Refused(400, "bad request", "expected a JSON object")
        try:
            ACTIONS[request.path](self.conductor, data)
        except (BadArguments, UserError) as exc:
            raise Refused(400, "bad request", first_line(exc)[:200]) from None
        return web.json_response({"ok": True, "status": self.status(request[VISITOR])})

    def status(self, visitor: Visitor) -> Record:
        """``/api/status``: the health record as ``installation status`` reads it, with the
        conductor's state now and what the page needs to draw its controls."""
        record = dict(self.sources.status())
        now = self.conductor.status()
        ok, reason = self.sources.health()
        web_state = record.get("web") or {}
        record.update(
            scene=now.scene,
            scenes=self.conductor.scene_names(),
            scene_number=now.number,
            blackout=now.blackout,
            frozen=now.frozen,
            controls={
                "truncation": _control(now.truncation, TRUNCATION),
                "morph_speed": _control(now.speed, MORPH_SPEED),
            },
            health={"ok": ok, "reason": reason},
            web={**web_state, "thumbnail_interval": self.sources.thumbnails.interval},
            csrf=visitor.csrf,
        )
        return record


def _control(value: float, limits: tuple[float, float]) -> Record:
    return {"value": value, "min": limits[0], "max": limits[1]}


def _http_refusal(request: web.Request, exc: web.HTTPException) -> Refused:
    """aiohttp's own refusals (no such path, wrong method, body too large) as one line."""
    path = clipped(request.path, 80)
    if exc.status == 404:
        return Refused(404, "not found", f"not found: {path}")
    if exc.status == 405:
        return Refused(405, "method", f"method not allowed: {request.method} {path}")
    if exc.status == 413:
        return Refused(413, "too large", f"request body over {MAX_BODY} bytes")
    return Refused(exc.status, "bad request", f"{exc.status} {exc.reason}")


def _problem(
    request: web.Request, status: int, line: str, headers: dict[str, str] | None = None
) -> web.Response:
    """One line: JSON ``{"error": ...}`` under /api/, else text."""
    if request.path.startswith("/api/"):
        return web.json_response({"error": line}, status=status, headers=headers)
    return web.Response(status=status, text=f"{line}\n", headers=headers)


async def _secure(request: web.Request, response: web.StreamResponse) -> None:
    """Headers on every response: no framing (the buttons cannot be clicked through another
    site's page), no sniffing, no caching of what changes by the second."""
    response.headers.update(HEADERS)
    response.headers.setdefault("Cache-Control", "no-store")


def _read_pages() -> dict[str, bytes]:
    """The page's files, read once: a request only ever picks one of them by name."""
    pages = {}
    for name, _ in PAGES.values():
        try:
            pages[name] = (STATIC / name).read_bytes()
        except OSError as exc:
            log.warning("web: cannot read the page's %s: %s", name, exc)
    return pages
