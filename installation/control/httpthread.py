"""An aiohttp server on an asyncio loop of its own thread, as the web remote and OSCQuery use.

Nothing a client does can then hold up the display: the show's thread only starts and stops
the server. If the port cannot be bound (in use, or an address the network has not brought up
yet), the show plays on without the server and it tries again every few seconds, as OSC does;
everything asyncio and aiohttp report goes through one ``RateLimitedLog``, so a flood of junk
is one line per 10 s and never a traceback per request.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from installation.errors import first_line
from installation.ratelog import RateLimitedLog, clipped

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
#: each for that hour.
IDLE = 15.0


class HttpThread:
    """Serves the application ``_app`` builds on ``_listening()`` (host, port; port 0 takes
    any free one); ``name`` starts its log lines, ``without`` says what the show lacks while
    it cannot bind, ``log`` and ``problems`` are the subclass's, so its lines keep its logger.
    Subclasses may override ``_serving``, which runs while bound."""

    def __init__(
        self,
        name: str,
        without: str,
        log: logging.Logger,
        problems: RateLimitedLog,
        workers: int | None = None,
    ) -> None:
        self.name = name
        self.without = without
        self.log = log
        self.problems = problems
        self._workers = workers
        self._address: tuple[str, int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._halt = threading.Event()
        self._tried = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    @property
    def address(self) -> tuple[str, int] | None:
        """Host and port listened on (port 0 resolved), or None while not listening."""
        return self._address

    def start(self) -> None:
        """Start serving; returns once listening, or once the first try has failed (said in
        the log; the thread keeps trying)."""
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
            self.log.warning("%s: the server thread did not end within %g s", self.name, STOP_WAIT)

    def _app(self) -> web.Application:
        raise NotImplementedError

    def _log_refusal(self, request: web.Request, kind: str, status: int, line: str) -> None:
        """One line per refused request, at most one per ``kind`` each 10 s."""
        self.problems.warning(
            kind,
            f"{self.name}: {status} {line} ({request.method} {clipped(request.path, 80)} "
            f"from {request.remote})",
        )

    def _listening(self) -> tuple[str, int]:
        raise NotImplementedError

    async def _serving(self) -> None:
        """Runs on the loop while the server listens, until ``stop``."""
        assert self._wake is not None
        await self._wake.wait()

    # The server's thread.

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        if self._workers:
            executor = ThreadPoolExecutor(self._workers, thread_name_prefix=f"{self.name}-work")
            loop.set_default_executor(executor)
        loop.set_exception_handler(self._loop_problem)
        try:
            loop.run_until_complete(self._main())
        except Exception:
            self.log.exception("%s: the server failed; the show plays on without it", self.name)
        finally:
            self._address = None
            self._tried.set()
            loop.close()

    def _loop_problem(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """What asyncio reports of the sockets, at the pace of every other problem: out of
        file descriptors, it would log a traceback for each accept it retries every second."""
        error = context.get("exception")
        detail = f" ({type(error).__name__}: {first_line(error)})" if error is not None else ""
        self.problems.warning("loop", f"{self.name}: {context.get('message', 'asyncio')}{detail}")

    async def _main(self) -> None:
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        runner = web.AppRunner(
            self._app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN,
            logger=_AiohttpLog(self.name, self.log, self.problems),
            keepalive_timeout=IDLE,
        )
        await runner.setup()
        try:
            if await self._bind(runner):
                await self._serving()
        finally:
            self._address = None
            await runner.cleanup()

    async def _bind(self, runner: web.AppRunner) -> bool:
        host, port = self._listening()
        where = where_text(host, port)
        while not self._halt.is_set():
            site = web.TCPSite(runner, host, port)
            try:
                await site.start()
            except OSError as exc:
                await site.stop()
                self.problems.warning(
                    "bind",
                    f"{self.name}: cannot listen on {where} ({exc}); the show plays on without "
                    f"{self.without} and tries again every {RETRY_BIND:g} s",
                )
                self._tried.set()
                assert self._wake is not None
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), RETRY_BIND)
                continue
            bound = runner.addresses[0]
            self._address = (bound[0], bound[1])
            self.log.info("%s: listening on http://%s", self.name, where_text(*self._address))
            self._tried.set()
            return True
        return False


class _AiohttpLog(logging.LoggerAdapter[logging.Logger]):
    """Where aiohttp reports what it handles itself. It would log a traceback for every
    request it cannot parse (a header over 8 KB, no Host: it answers 400 itself), so that a
    flood of junk would flood the log; here that is one line per 10 s like every other bad
    request, and a failure in a handler (a bug: 500) keeps its traceback, at the same pace."""

    def __init__(self, name: str, log: logging.Logger, problems: RateLimitedLog) -> None:
        super().__init__(log, {})
        self.prefix = name
        self.problems = problems

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if level < logging.WARNING:
            return
        error = kwargs.get("exc_info")
        if not isinstance(error, BaseException):
            error = sys.exc_info()[1]
        if isinstance(error, HttpProcessingError):
            line = " ".join(str(error).split())[:200]
            self.problems.warning("malformed", f"{self.prefix}: 400 malformed request: {line}")
            return
        self.problems.warning(
            "failed", f"{self.prefix}: {str(msg) % args}", exc_info=sys.exc_info()[1] is not None
        )


def where_text(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
