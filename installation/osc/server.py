"""The OSC socket: python-osc's UDP server on its own thread, hardened for a gallery network.

Every datagram goes through the same steps, each of which can refuse it, count it and log it
(rate-limited): is the sender in the show's allowlist, is the sender within its rate, is
this well-formed OSC 1.0 (a message, or a bundle of messages and bundles), is the address
known, do the arguments fit. Nothing a sender does can end the thread: a failure in one step
is one counted, logged datagram, and the next one is handled as usual.

Bundles with a time tag in the future are held in a small bounded schedule and run at their
time, as OSC 1.0 asks, without sleeping in the thread (python-osc's own dispatcher would).

If the port cannot be bound (in use, or an address the network has not brought up yet at
boot), the show plays on without control and the server retries every few seconds, saying so
in the log, rather than leaving an installation that cannot be steered or cannot start.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import logging
import struct
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Any

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import build_msg
from pythonosc.osc_packet import OscPacket
from pythonosc.osc_server import BlockingOSCUDPServer

from installation.errors import UserError
from installation.osc.arguments import BadArguments
from installation.osc.settings import Network, OscSettings
from installation.ratelog import RateLimitedLog

log = logging.getLogger(__name__)

Client = tuple[str, int]

#: How often the thread looks up from the socket to run timed messages and notice a stop.
POLL = 0.01
RETRY_BIND = 5.0
#: Timed messages waiting for their time; beyond that, or too far ahead, they are refused.
MAX_SCHEDULED = 256
MAX_AHEAD = 3600.0
#: Bundles nested deeper than this are refused: real controllers nest one or two levels.
MAX_DEPTH = 8
#: Senders whose rate is tracked; the least recent is forgotten first.
MAX_SENDERS = 256
_BUNDLE = b"#bundle\x00"
#: The argument types python-osc reads.
_TYPE_TAGS = set(b"ihfdsbrmtTFN[]")


@dataclass
class OscStats:
    """Counters since start, written only by the server thread; read them from anywhere."""

    datagrams: int = 0
    messages: int = 0
    refused: int = 0
    over_rate: int = 0
    malformed: int = 0
    unknown: int = 0
    rejected: int = 0
    unschedulable: int = 0
    failed: int = 0

    def summary(self) -> str:
        return ", ".join(f"{f.name} {getattr(self, f.name)}" for f in fields(self))


class _Bucket:
    """A token bucket: ``rate`` tokens a second, holding at most one second's worth."""

    def __init__(self, rate: float, now: float) -> None:
        self.tokens = rate
        self.updated = now

    def take(self, wanted: int, rate: float, now: float) -> int:
        self.tokens = min(rate, self.tokens + (now - self.updated) * rate)
        self.updated = now
        granted = min(wanted, int(self.tokens))
        self.tokens -= granted
        return granted


class OscServer:
    """Listens as ``settings`` say and calls the handlers ``dispatcher`` maps."""

    def __init__(self, settings: OscSettings, dispatcher: Dispatcher) -> None:
        self.settings = settings
        self.dispatcher = dispatcher
        self.stats = OscStats()
        self.problems = RateLimitedLog(log)
        self._server: _UdpServer | None = None
        self._bound = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="osc", daemon=True)
        self._allowed: OrderedDict[str, bool] = OrderedDict()
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._schedule: list[tuple[float, int, OscMessage, Client]] = []
        self._order = itertools.count()

    @property
    def address(self) -> Client | None:
        """Host and port actually listened on (port 0 resolved), or None until bound."""
        server = self._server
        return None if server is None else server.server_address[:2]

    def start(self) -> None:
        self._thread.start()

    def wait_bound(self, timeout: float) -> bool:
        return self._bound.wait(timeout)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=2.0)
        log.info("osc: %s", self.stats.summary())

    def update(self, settings: OscSettings) -> None:
        """Take a reloaded show's allowlist and rate; where to listen needs a restart."""
        if (settings.enabled, settings.address, settings.port) != (
            self.settings.enabled,
            self.settings.address,
            self.settings.port,
        ):
            log.warning("osc: enabled, address and port take effect when the show restarts")
        self.settings = OscSettings(
            self.settings.enabled,
            self.settings.address,
            self.settings.port,
            settings.allow,
            settings.max_rate,
        )
        self._allowed = OrderedDict()  # a fresh cache; the server thread may hold the old one

    def reply(self, client: Client, address: str, args: list[Any]) -> None:
        """Send one message to ``client`` from the listening socket (so the receiver sees it
        come from the port it sends to)."""
        server = self._server
        if server is None:
            return
        try:
            server.socket.sendto(build_msg(address, args).dgram, client)
        except OSError as exc:
            self.stats.failed += 1
            self.problems.warning("reply", f"osc: cannot reply {address} to {_host(client)}: {exc}")

    # The server thread.

    def _serve(self) -> None:
        server = self._bind()
        if server is None:
            return
        try:
            while not self._stopping.is_set():
                server.handle_request()
                self._run_due()
        finally:
            server.server_close()

    def _bind(self) -> _UdpServer | None:
        where = (self.settings.address, self.settings.port)
        while not self._stopping.is_set():
            try:
                self._server = _UdpServer(where, self)
            except OSError as exc:
                self.problems.warning(
                    "bind",
                    f"osc: cannot listen on {where[0]}:{where[1]} ({exc}); the show plays "
                    f"on without OSC control and tries again every {RETRY_BIND:g} s",
                )
                self._stopping.wait(RETRY_BIND)
                continue
            self._server.timeout = POLL
            host, port = self._server.server_address[:2]
            log.info("osc: listening on %s:%d", host, port)
            self._bound.set()
            return self._server
        return None

    def admit(self, client: Client) -> bool:
        """Allowlist, then rate: the cheap checks that run before any parsing."""
        self.stats.datagrams += 1
        host = client[0]
        if not self._is_allowed(host):
            self.stats.refused += 1
            self.problems.warning(
                "refused", f"osc: refused a datagram from {host}: not in the show's osc.allow"
            )
            return False
        if self._take(host, 1) == 0:
            self._over_rate(host)
            return False
        return True

    def handle(self, data: bytes, client: Client) -> None:
        problem = _packet_problem(data)
        try:
            if problem is not None:
                raise ValueError(problem)
            messages = OscPacket(data).messages
        except Exception as exc:  # python-osc raises several types for broken datagrams
            self.stats.malformed += 1
            self.problems.warning(
                "malformed",
                f"osc: malformed datagram of {len(data)} bytes from {_host(client)}: {exc}",
            )
            return
        # The datagram paid one token at the door; a bundle pays for its other messages.
        allowed = 1 + self._take(client[0], len(messages) - 1) if len(messages) > 1 else 1
        if allowed < len(messages):
            self._over_rate(client[0], len(messages) - allowed)
        now = time.time()
        for timed in messages[:allowed]:
            if timed.time <= now:
                self._dispatch(timed.message, client)
            else:
                self._schedule_message(timed.time, timed.message, client, now)

    def failed(self, client: Client) -> None:
        """A bug met in handling a datagram: logged with its traceback, and the show goes on."""
        self.stats.failed += 1
        self.problems.warning(
            "failed", f"osc: error while handling a datagram from {_host(client)}", exc_info=True
        )

    def _dispatch(self, message: OscMessage, client: Client) -> None:
        address = message.address
        handlers = list(self.dispatcher.handlers_for_address(address))
        if not handlers:
            self.stats.unknown += 1
            self.problems.warning(
                "unknown", f"osc: unknown address {_cut(address)} from {_host(client)}"
            )
            return
        for handler in handlers:
            try:
                handler.invoke(client, message)
            except (BadArguments, UserError) as exc:
                self.stats.rejected += 1
                self.problems.warning(
                    "rejected", f"osc: {_cut(address)} from {_host(client)} ignored: {exc}"
                )
            else:
                self.stats.messages += 1

    def _schedule_message(
        self, when: float, message: OscMessage, client: Client, now: float
    ) -> None:
        if when - now > MAX_AHEAD or len(self._schedule) >= MAX_SCHEDULED:
            self.stats.unschedulable += 1
            self.problems.warning(
                "unschedulable",
                f"osc: timed bundle from {_host(client)} refused: more than "
                f"{MAX_AHEAD:g} s ahead, or {MAX_SCHEDULED} messages already waiting",
            )
            return
        heapq.heappush(self._schedule, (when, next(self._order), message, client))

    def _run_due(self) -> None:
        now = time.time()
        while self._schedule and self._schedule[0][0] <= now:
            _, _, message, client = heapq.heappop(self._schedule)
            self._dispatch(message, client)

    def _is_allowed(self, host: str) -> bool:
        known = self._allowed.get(host)
        if known is None:
            known = _in_networks(host, self.settings.allow)
            self._allowed[host] = known
            if len(self._allowed) > MAX_SENDERS:
                self._allowed.popitem(last=False)
        return known

    def _take(self, host: str, wanted: int) -> int:
        now = time.monotonic()
        bucket = self._buckets.get(host)
        if bucket is None:
            bucket = self._buckets[host] = _Bucket(self.settings.max_rate, now)
            if len(self._buckets) > MAX_SENDERS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(host)
        return bucket.take(wanted, self.settings.max_rate, now)

    def _over_rate(self, host: str, dropped: int = 1) -> None:
        self.stats.over_rate += dropped
        self.problems.warning(
            "over_rate",
            f"osc: {host} sends more than {self.settings.max_rate:g} messages/s "
            "(osc.max_rate); dropping the excess",
        )


class _UdpServer(BlockingOSCUDPServer):
    """python-osc's blocking UDP server, with each step handed to the ``OscServer``."""

    #: Read whole datagrams, so an oversized one is judged as it is, not cut to look valid.
    max_packet_size = 65535

    def __init__(self, where: tuple[str, int], owner: OscServer) -> None:
        self.owner = owner
        super().__init__(where, owner.dispatcher)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        return self.owner.admit(client_address)

    def finish_request(self, request: Any, client_address: Any) -> None:
        self.owner.handle(request[0], client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.owner.failed(client_address)


def _packet_problem(data: bytes, depth: int = 0) -> str | None:
    """Why a datagram is not well-formed OSC 1.0 that python-osc can read, or None.

    Checked before python-osc parses it, because python-osc logs an unthrottled warning for
    every bundle element it cannot identify and every type tag it does not know (and then
    acts on what is left, where OSC 1.0 says to discard the message): a flood of junk would
    become a flood of log lines and half-understood messages.
    """
    if depth > MAX_DEPTH:
        return f"bundles nested more than {MAX_DEPTH} deep"
    if not data.startswith(_BUNDLE):
        return _message_problem(data)
    if len(data) < 16:
        return "bundle shorter than its header"
    index = 16
    while index < len(data):
        if index + 4 > len(data):
            return "bundle element size cut short"
        (size,) = struct.unpack(">i", data[index : index + 4])
        index += 4
        if size <= 0 or size % 4 or index + size > len(data):
            return f"bundle element of impossible size {size}"
        problem = _packet_problem(data[index : index + size], depth + 1)
        if problem:
            return problem
        index += size
    return None


def _message_problem(data: bytes) -> str | None:
    if not data.startswith(b"/"):
        return "neither a message (address starting with /) nor a bundle"
    end = data.find(b"\x00")
    if end < 0:
        return "address not terminated"
    tags_start = (end // 4 + 1) * 4
    if tags_start >= len(data):
        return None  # no type tag string: a message without arguments, as OSC 1.0 allows
    tags_end = data.find(b"\x00", tags_start)
    tags = data[tags_start : tags_end if tags_end >= 0 else len(data)]
    unknown = set(tags[1:]) - _TYPE_TAGS
    if tags.startswith(b",") and unknown:
        return f"unknown type tag {chr(min(unknown))!r}"
    return None


def _in_networks(host: str, networks: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # an IPv4 sender on a dual-stack socket
    return any(address in network for network in networks)


def _host(client: Client) -> str:
    return f"{client[0]}:{client[1]}"


def _cut(text: str) -> str:
    """An address for a log line, cut short: it comes from the network."""
    return repr(text) if len(text) <= 60 else repr(text[:57] + "...")
