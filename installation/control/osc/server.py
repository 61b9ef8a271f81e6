"""The OSC socket: python-osc's UDP server on its own thread, hardened for a gallery network.

Every datagram goes through the same steps, each of which can refuse it, count it and log it
(rate-limited): is the sender in the show's allowlist, is the sender within its rate, is
this well-formed OSC 1.0 (a message, or a bundle of messages and bundles, within the caps on
elements and address patterns), is the address known, do the arguments fit. Nothing a
sender does can end the thread: a failure in one step is one counted, logged datagram, and
the next one is handled as usual. The rate is charged by the datagram's size before anything
reads it, and a bundle's structure is checked (and its messages charged) before python-osc
parses it, because parsing costs time in proportion to size: a flood of 64 KB bundles once
took the thread, and the GIL, for 126 ms each.

Address patterns are matched by ``patterns`` (linear time), not by python-osc's dispatcher,
whose regular expressions backtrack exponentially on patterns such as ``/****...*!``.

Bundles with a time tag in the future are held in a small bounded schedule and run at their
time, as OSC 1.0 asks, without sleeping in the thread (python-osc's own dispatcher would).
Each sender has its own share of the schedule, so one host's cues an hour ahead cannot
crowd out the lighting desk's.

If the port cannot be bound (in use, or an address the network has not brought up yet at
boot), the show plays on without control and the server retries every few seconds, saying so
in the log, rather than leaving an installation that cannot be steered or cannot start.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import struct
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import build_msg
from pythonosc.osc_packet import OscPacket
from pythonosc.osc_server import BlockingOSCUDPServer

from installation.control.limits import SenderRates, Tally, in_networks
from installation.control.osc.arguments import BadArguments
from installation.control.osc.patterns import AddressMap, pattern_problem
from installation.errors import UserError
from installation.ratelog import RateLimitedLog, clipped
from installation.score.osc_settings import OscSettings

log = logging.getLogger(__name__)

Client = tuple[str, int]

#: How often the thread looks up from the socket to run timed messages and notice a stop.
POLL = 0.01
RETRY_BIND = 5.0
#: Timed messages waiting for their time, in all and from one sender; beyond that, or too
#: far ahead, they are refused.
MAX_SCHEDULED = 256
MAX_SCHEDULED_PER_SENDER = 64
MAX_AHEAD = 3600.0
#: Bundles nested deeper than this are refused: real controllers nest one or two levels.
MAX_DEPTH = 8
#: Messages and bundles in one datagram: a controller sends a few; python-osc's parsing
#: costs about 50 us each, so this bounds what one datagram can cost.
MAX_ELEMENTS = 128
#: A datagram pays one message of the sender's rate for each of these bytes (or part), at
#: the door, before anything reads it: parsing costs time in proportion to size, and a
#: typical message is 16 to 40 bytes.
BYTES_PER_MESSAGE = 64
#: Senders whose rate is tracked; the least recent is forgotten first.
MAX_SENDERS = 256
_BUNDLE = b"#bundle\x00"
#: The argument types python-osc reads.
_TYPE_TAGS = set(b"ihfdsbrmtTFN[]")


@dataclass
class OscStats(Tally):
    """Counters since start, written only by the server thread; read them from anywhere.

    Every datagram ends as exactly one of ``refused``, ``over_rate``, ``malformed`` or
    ``accepted``; the messages of accepted ones as ``messages`` (once per address a pattern
    reaches), ``unknown``, ``rejected`` or ``unschedulable``, or wait in the schedule.
    """

    datagrams: int = 0
    refused: int = 0
    over_rate: int = 0
    malformed: int = 0
    accepted: int = 0
    messages: int = 0
    unknown: int = 0
    rejected: int = 0
    unschedulable: int = 0
    failed: int = 0


@dataclass(frozen=True)
class _Admission:
    """The settings senders are admitted by, and the allowlist's verdict for each recent host
    under them; only the server thread touches ``allowed``."""

    settings: OscSettings
    allowed: OrderedDict[str, bool] = field(default_factory=OrderedDict)


class OscServer:
    """Listens as ``settings`` say and calls the handlers ``addresses`` maps."""

    def __init__(self, settings: OscSettings, addresses: AddressMap) -> None:
        self._admission = _Admission(settings)
        self.addresses = addresses
        self.stats = OscStats()
        self.problems = RateLimitedLog(log)
        self._server: _UdpServer | None = None
        self._bound = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="osc", daemon=True)
        self._rates = SenderRates(MAX_SENDERS)
        self._schedule: list[tuple[float, int, OscMessage, Client]] = []
        self._waiting: Counter[str] = Counter()  # scheduled messages by sender's host
        self._order = itertools.count()

    @property
    def settings(self) -> OscSettings:
        return self._admission.settings

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
        """Take a reloaded show's allowlist and rate; where to listen needs a restart.

        Called on the reload thread while the server thread admits senders: the settings and
        their cache of verdicts are replaced as one object, so the server thread, holding the
        old one through a whole check, can only ever cache an old verdict in the old cache."""
        current = self.settings
        if (settings.enabled, settings.address, settings.port) != (
            current.enabled,
            current.address,
            current.port,
        ):
            log.warning("osc: enabled, address and port take effect when the show restarts")
        self._admission = _Admission(
            OscSettings(
                current.enabled, current.address, current.port, settings.allow, settings.max_rate
            )
        )

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

    def admit(self, data: bytes, client: Client) -> bool:
        """Allowlist, then rate by size: the cheap checks that run before any parsing."""
        self.stats.datagrams += 1
        host = client[0]
        if not self._is_allowed(host):
            self.stats.refused += 1
            self.problems.warning(
                "refused", f"osc: refused a datagram from {host}: not in the show's osc.allow"
            )
            return False
        if not self._spend(host, _size_cost(len(data))):
            self._over_rate(host)
            return False
        return True

    def handle(self, data: bytes, client: Client) -> None:
        try:
            count = _count_messages(data)
            # The door charged for the size; a bundle of many small messages pays the rest.
            extra = count - _size_cost(len(data))
            if extra > 0 and not self._spend(client[0], extra):
                self._over_rate(client[0])
                return
            messages = OscPacket(data).messages
        except Exception as exc:  # python-osc raises several types for broken datagrams
            self.stats.malformed += 1
            self.problems.warning(
                "malformed",
                f"osc: malformed datagram of {len(data)} bytes from {_host(client)}: {exc}",
            )
            return
        self.stats.accepted += 1
        now = time.time()
        for timed in messages:
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
        handlers = self.addresses.match(address)
        if not handlers:
            self.stats.unknown += 1
            self.problems.warning(
                "unknown", f"osc: unknown address {clipped(address)} from {_host(client)}"
            )
            return
        for handler in handlers:
            try:
                handler(client, address, *message.params)
            except (BadArguments, UserError) as exc:
                self.stats.rejected += 1
                self.problems.warning(
                    "rejected", f"osc: {clipped(address)} from {_host(client)} ignored: {exc}"
                )
            else:
                self.stats.messages += 1

    def _schedule_message(
        self, when: float, message: OscMessage, client: Client, now: float
    ) -> None:
        refusal = self._unschedulable(when - now, client[0])
        if refusal is not None:
            kind, why = refusal
            self.stats.unschedulable += 1
            self.problems.warning(
                kind, f"osc: timed {clipped(message.address)} from {_host(client)} refused: {why}"
            )
            return
        heapq.heappush(self._schedule, (when, next(self._order), message, client))
        self._waiting[client[0]] += 1

    def _unschedulable(self, ahead: float, host: str) -> tuple[str, str] | None:
        """Why a message ``ahead`` seconds ahead from ``host`` cannot wait, or None; with a
        log kind for each reason, so that one sender filling its share does not keep the
        line about a full schedule (which names the sender holding most) out of the log."""
        if ahead > MAX_AHEAD:
            return "too far ahead", f"{ahead:.0f} s ahead, more than {MAX_AHEAD:g}"
        if self._waiting[host] >= MAX_SCHEDULED_PER_SENDER:
            return "share full", (
                f"this sender already has {MAX_SCHEDULED_PER_SENDER} messages waiting "
                "(its share of the schedule)"
            )
        if len(self._schedule) >= MAX_SCHEDULED:
            most, waiting = self._waiting.most_common(1)[0]
            return "schedule full", (
                f"{MAX_SCHEDULED} messages already waiting, {waiting} of them from {most}"
            )
        return None

    def _run_due(self) -> None:
        now = time.time()
        while self._schedule and self._schedule[0][0] <= now:
            _, _, message, client = heapq.heappop(self._schedule)
            self._waiting[client[0]] -= 1
            if not self._waiting[client[0]]:
                del self._waiting[client[0]]
            self._dispatch(message, client)

    def _is_allowed(self, host: str) -> bool:
        admission = self._admission  # one read: see ``update``
        known = admission.allowed.get(host)
        if known is None:
            known = in_networks(host, admission.settings.allow)
            admission.allowed[host] = known
            if len(admission.allowed) > MAX_SENDERS:
                admission.allowed.popitem(last=False)
        return known

    def _spend(self, host: str, cost: int) -> bool:
        return self._rates.spend(host, cost, self.settings.max_rate, time.monotonic())

    def _over_rate(self, host: str) -> None:
        self.stats.over_rate += 1
        self.problems.warning(
            "over_rate",
            f"osc: {host} sends more than {self.settings.max_rate:g} messages/s "
            f"(osc.max_rate; a datagram counts one per {BYTES_PER_MESSAGE} bytes too); "
            "dropping the excess",
        )


class _UdpServer(BlockingOSCUDPServer):
    """python-osc's blocking UDP server, with each step handed to the ``OscServer``."""

    #: Read whole datagrams, so an oversized one is judged as it is, not cut to look valid.
    max_packet_size = 65535

    def __init__(self, where: tuple[str, int], owner: OscServer) -> None:
        self.owner = owner
        super().__init__(where, Dispatcher())  # unused: the owner matches addresses itself

    def verify_request(self, request: Any, client_address: Any) -> bool:
        return self.owner.admit(request[0], client_address)

    def finish_request(self, request: Any, client_address: Any) -> None:
        self.owner.handle(request[0], client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.owner.failed(client_address)


class Malformed(ValueError):
    """A datagram that is not OSC 1.0 python-osc can read, or over a cap; says why."""


def _count_messages(data: bytes) -> int:
    """The number of messages in ``data``; raises ``Malformed`` if it is not well-formed.

    Checked before python-osc parses it, because python-osc logs an unthrottled warning for
    every bundle element it cannot identify and every type tag it does not know (and then
    acts on what is left, where OSC 1.0 says to discard the message): a flood of junk would
    become a flood of log lines and half-understood messages. The walk stops at the caps on
    nesting and elements, so it costs little whatever the datagram.
    """
    walk = _Walk()
    walk.packet(data, 0)
    return walk.messages


class _Walk:
    """The structure of one datagram, element by element, counting as it goes."""

    def __init__(self) -> None:
        self.elements = 0
        self.messages = 0

    def packet(self, data: bytes, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise Malformed(f"bundles nested more than {MAX_DEPTH} deep")
        self.elements += 1
        if self.elements > MAX_ELEMENTS:
            raise Malformed(f"more than {MAX_ELEMENTS} messages and bundles in one datagram")
        if not data.startswith(_BUNDLE):
            _check_message(data)
            self.messages += 1
            return
        if len(data) < 16:
            raise Malformed("bundle shorter than its header")
        index = 16
        while index < len(data):
            if index + 4 > len(data):
                raise Malformed("bundle element size cut short")
            (size,) = struct.unpack(">i", data[index : index + 4])
            index += 4
            if size <= 0 or size % 4 or index + size > len(data):
                raise Malformed(f"bundle element of impossible size {size}")
            self.packet(data[index : index + size], depth + 1)
            index += size


def _check_message(data: bytes) -> None:
    if not data.startswith(b"/"):
        raise Malformed("neither a message (address starting with /) nor a bundle")
    end = data.find(b"\x00")
    if end < 0:
        raise Malformed("address not terminated")
    try:
        address = data[:end].decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("address not UTF-8") from None
    problem = pattern_problem(address)
    if problem is not None:
        raise Malformed(problem)
    tags_start = (end // 4 + 1) * 4
    if tags_start >= len(data):
        return  # no type tag string: a message without arguments, as OSC 1.0 allows
    tags_end = data.find(b"\x00", tags_start)
    tags = data[tags_start : tags_end if tags_end >= 0 else len(data)]
    unknown = set(tags[1:]) - _TYPE_TAGS
    if tags.startswith(b",") and unknown:
        raise Malformed(f"unknown type tag {chr(min(unknown))!r}")


def _size_cost(size: int) -> int:
    """What a datagram of ``size`` bytes costs at the door, in messages of the rate."""
    return max(1, -(-size // BYTES_PER_MESSAGE))


def _host(client: Client) -> str:
    return f"{client[0]}:{client[1]}"
