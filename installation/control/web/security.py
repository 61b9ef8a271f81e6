"""Who may use the web remote: the checks every request passes, in order, before a handler runs.

A gallery network carries visitors' phones, and a status page is easy to find, so the rules
are those of ``[osc]`` and a little more: the allow list first (403), then the client's rate
(429), then who it is (401): this machine needs no token, anyone else sends it as a bearer
token or logs in once for a cookie; then, for anything that changes the show, a CSRF token
and an Origin that is this server (403), so a web page a visitor opens elsewhere cannot press
buttons through a technician's logged-in browser.

Two attacks on "this machine needs no token" are closed here: a page on another site that a
browser on the kiosk opens (the CSRF token, which it cannot read), and DNS rebinding (a name of
the attacker's that resolves to 127.0.0.1): a client on this machine gets in without a token
only when it calls the server by a loopback address or ``localhost``.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from installation.control.limits import SenderRates, in_networks
from installation.score.osc_settings import LOOPBACK
from installation.score.web_settings import WebSettings

COOKIE = "installation_session"
SESSION_SECONDS = 12 * 3600.0
#: Logged-in browsers remembered; the least recently seen is logged out first.
MAX_SESSIONS = 64
#: Clients whose rate is tracked.
MAX_CLIENTS = 256
#: Seconds of its rate a wrong token costs a client: one guess a second at most.
WRONG_TOKEN_SECONDS = 1.0
CSRF_HEADER = "X-CSRF-Token"


class Refused(Exception):
    """A request turned away: its HTTP status, the kind of problem (the log's rate-limited
    key, from a fixed set; None: not worth a log line) and one line for the client."""

    def __init__(
        self, status: int, kind: str | None, line: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(line)
        self.status = status
        self.kind = kind
        self.line = line
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class Visitor:
    """An admitted client: ``viewer`` paces its thumbnails (its session, else its address),
    ``csrf`` is what its POSTs must carry, ``session`` its login (None: token or loopback)."""

    viewer: str
    csrf: str
    session: str | None = None


@dataclass(frozen=True)
class _Session:
    csrf: str
    expires: float


class Gate:
    """The checks, with the state they keep: rates per client, logins. Called from the server's
    event loop; ``update`` comes from the reload thread, so the state is under a lock."""

    def __init__(self, settings: WebSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._rates = SenderRates(MAX_CLIENTS)
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        #: The CSRF token of clients without a login (this machine, bearer tokens).
        self._csrf = secrets.token_urlsafe(32)
        self._lock = threading.Lock()

    def update(self, settings: WebSettings) -> None:
        """A reloaded show's allow list, rate and token; a new token logs everyone out."""
        with self._lock:
            if settings.token != self.settings.token:
                self._sessions.clear()
            self.settings = settings

    def admit(self, host: str) -> None:
        """The allow list, then the rate: before anything reads the request."""
        settings = self.settings
        if not in_networks(host, settings.allow):
            raise Refused(403, "refused", f"forbidden: {host} is not in the show's web.allow")
        with self._lock:
            within = self._rates.spend(host, 1, settings.max_rate, self._clock())
        if not within:
            raise Refused(
                429,
                "over rate",
                f"too many requests: more than {settings.max_rate:g} a second from {host} "
                "(web.max_rate)",
                {"Retry-After": "1"},
            )

    def identify(
        self, host: str, called: str, authorization: str | None, cookie: str | None
    ) -> Visitor | None:
        """Who the client is: its login, its bearer token, or this machine (called by a
        loopback name: see the module docstring). None: it has to log in. A wrong token is
        refused (401) and costs the client a second of its rate."""
        session = self._session(cookie)
        if session is not None:
            return session
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not self._is_token(host, token.strip()):
                raise Refused(401, "unauthorized", "unauthorized: wrong token")
            return Visitor(host, self._csrf)
        if in_networks(host, LOOPBACK) and _loopback_name(called):
            return Visitor(host, self._csrf)
        return None

    def login(self, host: str, token: str) -> str:
        """A new session for the right ``token``: its id, for the cookie."""
        if not self._is_token(host, token):
            raise Refused(401, "unauthorized", "unauthorized: wrong token")
        session = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[session] = _Session(
                secrets.token_urlsafe(32), self._clock() + SESSION_SECONDS
            )
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return session

    def logout(self, session: str | None) -> None:
        with self._lock:
            self._sessions.pop(session or "", None)

    def check_change(self, visitor: Visitor, csrf: str | None) -> None:
        """A request that changes the show must carry the visitor's CSRF token."""
        if csrf is None or not hmac.compare_digest(csrf.encode(), visitor.csrf.encode()):
            raise Refused(
                403,
                "csrf",
                f"forbidden: missing or wrong {CSRF_HEADER} header (its value is csrf in "
                "GET /api/status)",
            )

    @staticmethod
    def check_origin(own: str, origin: str | None, referer: str | None) -> None:
        """Where the browser says a POST comes from, when it says: it must be this server
        (``own``, as ``http://host:port``)."""
        if origin is not None:
            sender = origin
        elif referer is not None:
            parts = urlsplit(referer)
            sender = f"{parts.scheme}://{parts.netloc}"
        else:
            return
        if sender != own:
            raise Refused(
                403, "origin", f"forbidden: a request from {sender[:80]!r} is not from this page"
            )

    def _session(self, cookie: str | None) -> Visitor | None:
        if not cookie:
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(cookie)
            if session is None:
                return None
            if session.expires <= now:
                del self._sessions[cookie]
                return None
            self._sessions.move_to_end(cookie)
        return Visitor(cookie, session.csrf, cookie)

    def _is_token(self, host: str, token: str) -> bool:
        settings = self.settings
        expected = settings.token
        if expected is not None and hmac.compare_digest(token.encode(), expected.encode()):
            return True
        with self._lock:
            bucket = self._rates.bucket(host, settings.max_rate, self._clock())
            bucket.drain(settings.max_rate * WRONG_TOKEN_SECONDS)
        return False


def _loopback_name(called: str) -> bool:
    """Whether the Host a client called is ``localhost`` or a loopback address."""
    try:
        name = urlsplit(f"//{called}").hostname or ""
        return name == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:  # not an address (a name), or a Host header urlsplit cannot read
        return False
