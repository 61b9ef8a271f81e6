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
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

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

RETRY_BIND = 5.0
#: How long ``start`` waits for the first try to bind, and ``stop`` for the thread to end.
START_WAIT = 5.0
STOP_WAIT = 3.0
#: Seconds requests under way get to finish when the server stops.
SHUTDOWN = 1.0
#: Seconds a connection may stay open without a request under way, counted from when it
#: opened or its last answer. aiohttp's own default is an hour and half-sent headers do not
#: reset it, so a host that opens connections and sends nothing (slowloris, also from outside
#: the allow list, which is judged once a request has arrived) would hold a file descriptor
#: each for that hour; the page asks every second or two, so its connection stays open.
IDLE = 15.0
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


class WebServer:
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
        self.gate = Gate(settings, clock)
        self.conductor = conductor
        self.sources = sources
        self.problems = RateLimitedLog(log, clock=clock)
        self._pages = _read_pages()
        self._address: tuple[str, int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._halt = threading.Event()
        self._tried = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="web", daemon=True)

    @property
    def settings(self) -> WebSettings:
        return self.gate.settings

    @property
    def address(self) -> tuple[str, int] | None:
        """Host and port listened on (port 0 resolved), or None while not listening."""
        return self._address

    def start(self) -> None:
        """Start serving; returns once listening, or once the first try has failed (said in
        the log; the thread keeps trying)."""
        logging.getLogger().addHandler(self.sources.log)
        self._thread.start()
        self._tried.wait(START_WAIT)

    def stop(self) -> None:
        """Close the socket and end the thread, giving requests under way ``SHUTDOWN`` s."""
        self._halt.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(wake.set)
        if self._thread.ident is not None:
            self._thread.join(STOP_WAIT)
        if self._thread.is_alive():
            log.warning("web: the server thread did not end within %g s", STOP_WAIT)
        logging.getLogger().removeHandler(self.sources.log)

    def update(self, settings: WebSettings) -> None:
        """A reloaded show's allow list, token and rate, at once; where it listens needs a
        new server (installation.control.steering does that)."""
        self.gate.update(settings)

    # The server's thread.

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        loop.set_default_executor(ThreadPoolExecutor(WORKERS, thread_name_prefix="web-work"))
        loop.set_exception_handler(self._loop_problem)
        try:
            loop.run_until_complete(self._main())
        except Exception:
            log.exception("web: the server failed; the show plays on without it")
        finally:
            self._address = None
            self._tried.set()
            loop.close()

    def _loop_problem(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """What asyncio reports of the sockets, at the pace of every other problem: out of
        file descriptors, it would log a traceback for each accept it retries every second."""
        error = context.get("exception")
        detail = f" ({type(error).__name__}: {first_line(error)})" if error is not None else ""
        self.problems.warning("loop", f"web: {context.get('message', 'asyncio')}{detail}")

    async def _main(self) -> None:
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        runner = web.AppRunner(
            self._app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN,
            logger=_AiohttpLog(self.problems),
            keepalive_timeout=IDLE,
        )
        await runner.setup()
        try:
            if await self._bind(runner):
                await self._wake.wait()
        finally:
            self._address = None
            await runner.cleanup()

    async def _bind(self, runner: web.AppRunner) -> bool:
        settings = self.settings
        host, port = settings.address, settings.port
        where = _where(host, port)
        while not self._halt.is_set():
            site = web.TCPSite(runner, host, port)
            try:
                await site.start()
            except OSError as exc:
                await site.stop()
                self.problems.warning(
                    "bind",
                    f"web: cannot listen on {where} ({exc}); the show plays on without the "
                    f"web remote and tries again every {RETRY_BIND:g} s",
                )
                self._tried.set()
                assert self._wake is not None
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), RETRY_BIND)
                continue
            bound = runner.addresses[0]
            self._address = (bound[0], bound[1])
            log.info("web: listening on http://%s", _where(*self._address))
            self._tried.set()
            return True
        return False

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
            self.problems.warning(
                refusal.kind,
                f"web: {refusal.status} {refusal.line} ({request.method} "
                f"{clipped(request.path, 80)} from {request.remote})",
            )
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


class _AiohttpLog(logging.LoggerAdapter[logging.Logger]):
    """Where aiohttp reports what it handles itself. It would log a traceback for every
    request it cannot parse (a header over 8 KB, no Host: it answers 400 itself), so that a
    flood of junk would flood the log; here that is one line per 10 s like every other bad
    request, and a failure in a handler (a bug: 500) keeps its traceback, at the same pace."""

    def __init__(self, problems: RateLimitedLog) -> None:
        super().__init__(log, {})
        self.problems = problems

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if level < logging.WARNING:
            return
        error = kwargs.get("exc_info")
        if not isinstance(error, BaseException):
            error = sys.exc_info()[1]
        if isinstance(error, HttpProcessingError):
            line = " ".join(str(error).split())[:200]
            self.problems.warning("malformed", f"web: 400 malformed request: {line}")
            return
        self.problems.warning(
            "failed", f"web: {str(msg) % args}", exc_info=sys.exc_info()[1] is not None
        )


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


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
