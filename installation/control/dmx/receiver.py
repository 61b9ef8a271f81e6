"""The DMX input's thread: one UDP socket, the checks every packet passes, loss and release.

Each packet goes through the OSC server's steps, each of which can refuse it, count it and log
it (at most once per 10 s per kind): is the sender in ``[dmx] allow``, is it within its rate,
is this a packet of the protocol for the fixture's universe. Only then do the channels move
the conductor (``channels``). The thread wakes at least every ``POLL`` seconds to notice that
the desk has gone quiet: after ``[dmx] loss`` seconds the show holds the last look and says so
once, until the desk is heard again. Nothing here touches the engine or the display.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from installation.control.dmx.channels import DmxSteering
from installation.control.limits import SenderRates, Tally, in_networks
from installation.ratelog import RateLimitedLog
from installation.score.conductor import Conductor
from installation.score.dmx_settings import DmxSettings

log = logging.getLogger(__name__)

POLL = 0.1
RETRY_BIND = 5.0
#: Senders whose rate is tracked; the least recent is forgotten first.
MAX_SENDERS = 256
#: Larger than any sACN (638 bytes) or ArtDmx (530 bytes) packet, so an oversized datagram is
#: read whole and judged as it is.
MAX_DATAGRAM = 2048


class Malformed(ValueError):
    """A packet that is not what its protocol says; the message says why."""


@dataclass
class DmxStats(Tally):
    """Counters since start, written only by the receiving thread. Every packet ends as one
    of ``refused``, ``over_rate``, ``malformed``, ``ignored`` (another universe, or a kind of
    packet a fixture has no use for) or ``accepted``. ``packets`` and ``releases`` count when
    the work is done, so whoever reads a count also sees what that packet moved."""

    packets: int = 0
    refused: int = 0
    over_rate: int = 0
    malformed: int = 0
    ignored: int = 0
    accepted: int = 0
    losses: int = 0
    releases: int = 0
    #: Bugs met while acting on a packet: logged with a traceback, and the thread goes on.
    failed: int = 0


class DmxReceiver:
    """Listens as ``settings`` say and steers ``conductor``; ``packet`` reads one datagram of
    the protocol (the subclasses). ``clock`` (monotonic seconds) times the loss."""

    protocol = ""

    def __init__(
        self,
        settings: DmxSettings,
        conductor: Conductor,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.stats = DmxStats()
        self.problems = RateLimitedLog(log)
        self.steering = DmxSteering(conductor, settings.start, self.problems)
        self._clock = clock
        self._rates = SenderRates(MAX_SENDERS)
        self._heard: float | None = None
        self._lost = False
        self._listening: tuple[str, int] | None = None
        self._bound = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, name=f"dmx-{self.protocol}", daemon=True
        )

    @property
    def address(self) -> tuple[str, int] | None:
        """Host and port listened on (port 0 resolved), or None until bound."""
        return self._listening

    def start(self) -> None:
        self._thread.start()

    def wait_bound(self, timeout: float) -> bool:
        return self._bound.wait(timeout)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=2.0)
        log.info(
            "dmx: %s, changes %d, rejected %d",
            self.stats.summary(),
            self.steering.changes,
            self.steering.rejected,
        )

    def packet(self, data: bytes, host: str) -> None:
        raise NotImplementedError

    def open(self) -> socket.socket:
        """The socket to listen on; sACN's multicast overrides it."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.settings.address, self.settings.port))
        except OSError:
            sock.close()
            raise
        return sock

    # For the subclasses, on the receiving thread.

    def heard(self) -> None:
        """A valid packet for the fixture's universe came: the desk is there."""
        self.stats.accepted += 1
        self._heard = self._clock()
        if self._lost:
            self._lost = False
            log.info("dmx: %s packets again; the desk steers the show", self.protocol)

    def released(self) -> None:
        """The desk said it stops sending: the show's own values come back."""
        self._heard = None
        self._lost = False
        self.steering.release()
        self.stats.releases += 1

    # The receiving thread.

    def _serve(self) -> None:
        sock = self._bind()
        if sock is None:
            return
        sock.settimeout(POLL)
        try:
            while not self._stopping.is_set():
                try:
                    data, sender = sock.recvfrom(MAX_DATAGRAM)
                except TimeoutError:
                    pass
                else:
                    self._receive(data, sender[0])
                self._watch()
        finally:
            sock.close()

    def _bind(self) -> socket.socket | None:
        where = f"{self.settings.address}:{self.settings.port}"
        while not self._stopping.is_set():
            try:
                sock = self.open()
            except OSError as exc:
                self.problems.warning(
                    "bind",
                    f"dmx: cannot listen on {where} ({exc}); the show plays on without DMX "
                    f"and tries again every {RETRY_BIND:g} s",
                )
                self._stopping.wait(RETRY_BIND)
                continue
            host, port = self._listening = sock.getsockname()[:2]
            log.info(
                "dmx: %s universe %d at channel %d, listening on %s:%d",
                self.protocol,
                self.settings.universe,
                self.settings.start,
                host,
                port,
            )
            self._bound.set()
            return sock
        return None

    def _receive(self, data: bytes, host: str) -> None:
        try:
            self._judge(data, host)
        finally:
            self.stats.packets += 1

    def _judge(self, data: bytes, host: str) -> None:
        if not in_networks(host, self.settings.allow):
            self.stats.refused += 1
            self.problems.warning(
                "refused", f"dmx: refused a packet from {host}: not in the show's dmx.allow"
            )
            return
        if not self._rates.spend(host, 1, self.settings.max_rate, self._clock()):
            self.stats.over_rate += 1
            self.problems.warning(
                "over_rate",
                f"dmx: {host} sends more than {self.settings.max_rate:g} packets/s "
                "(dmx.max_rate); dropping the excess",
            )
            return
        try:
            self.packet(data, host)
        except Malformed as exc:
            self.stats.malformed += 1
            self.problems.warning(
                "malformed", f"dmx: malformed packet of {len(data)} bytes from {host}: {exc}"
            )
        except Exception:
            self.stats.failed += 1
            self.problems.warning(
                "failed", f"dmx: error while handling a packet from {host}", exc_info=True
            )

    def _watch(self) -> None:
        heard = self._heard
        if heard is None or self._lost or self._clock() - heard < self.settings.loss:
            return
        self._lost = True
        self.stats.losses += 1
        log.warning(
            "dmx: no %s packet for %g s: holding the last look until the desk is back",
            self.protocol,
            self.settings.loss,
        )
