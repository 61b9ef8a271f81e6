"""One PC's part in the room: hears the group, runs the election, leads or follows.

One daemon thread does it all, so the election needs no lock against itself: it reads the
group's socket with a short timeout, takes in each beat, and every ``heartbeat`` seconds sends
this PC's beat. The conductor's controllers call back from their own threads after each change
(``on_change``); a leader's thread then sends its state at its next look-up from the socket
(within ``POLL``), one state for all the changes made meanwhile: a fader moving a thousand
times a second costs the room fifty states, and the controller's thread never encodes.

Leading, the PC's controls act and every change is sent as the conductor's whole state,
taking effect ``delay`` seconds later. Following, its controls are refused with a line naming
the leader, and each new state of the leader is installed: before it takes effect, so every
screen changes on the same frame. A follower that adopts the leader's epoch (its show time
jumps) drops everything it made for the old times. Taking over keeps the epoch and the state
the PC already plays, so no screen jumps.

Nothing received can end the thread: a bad datagram is one counted, rate-limited log line.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from installation.control.limits import SenderRates, Tally, in_networks
from installation.control.sync.clock import SharedClock
from installation.control.sync.election import MAX_MEMBERS, Election, Member, Role
from installation.control.sync.multicast import GroupSocket, drop_file
from installation.control.sync.wire import (
    MAX_DATAGRAM,
    Beat,
    Malformed,
    decode_beat,
    encode_beat,
    sent_by,
)
from installation.ratelog import RateLimitedLog
from installation.score.conductor import Conductor
from installation.score.snapshot import SnapshotError, check_near, decode, encode
from installation.score.sync_settings import SyncSettings

log = logging.getLogger(__name__)

#: How often the thread looks up from the socket, at most, to send its beat or notice a stop.
POLL = 0.02
RETRY_BIND = 5.0
#: Datagrams read at most before each beat (``_backlog``): a room's beats of a few seconds.
MAX_BACKLOG = 256
JOINING = "the room's leader (not found yet)"
#: Datagrams a second one host may send: a leader sends a beat a heartbeat and at most one
#: state a look-up (``POLL``), about 70 a second; room tests run four PCs on one address. A
#: host beyond it (a flood, spoofed or mad) costs a token check a datagram, not a parse.
HOST_RATE = 500.0


@dataclass
class SyncStats(Tally):
    """Counters since start, written under the peer's lock. Every datagram heard ends as one
    of ``own``, ``refused`` (sender not in ``[sync] allow``), ``over_rate`` (more than
    ``HOST_RATE`` a second from its host), ``malformed``, ``other_show`` or ``accepted``;
    ``installed`` counts the leader's states taken in."""

    received: int = 0
    own: int = 0
    refused: int = 0
    over_rate: int = 0
    malformed: int = 0
    other_show: int = 0
    accepted: int = 0
    installed: int = 0
    sent: int = 0
    oversized: int = 0
    #: Bugs met while acting on a beat: logged with a traceback, and the thread goes on.
    failed: int = 0


class SyncPeer:
    """This PC in the room of ``settings``; a context manager. ``identity`` is
    ``show_identity`` of the show played; ``monotonic`` times the election."""

    def __init__(
        self,
        settings: SyncSettings,
        conductor: Conductor,
        clock: SharedClock,
        identity: str,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.instance = secrets.token_hex(8)
        self.stats = SyncStats()
        self.problems = RateLimitedLog(log)
        self._conductor = conductor
        self._clock = clock
        self._identity = identity
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._election = Election(self.instance, settings.rank, settings.failover, monotonic())
        self._version = 0
        #: A controller changed the state since the leader last sent it.
        self._unsent = False
        #: (leader instance, term, version) of the state installed last.
        self._installed: tuple[str, int, int] | None = None
        self._socket: GroupSocket | None = None
        self._drop = drop_file()
        self._rates = SenderRates(MAX_MEMBERS)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sync", daemon=True)

    def __enter__(self) -> SyncPeer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._conductor.follow(JOINING)
        self._conductor.on_change(self._changed)
        log.info(
            "sync: joining %s as rank %d (instance %s)",
            self.settings.where,
            self.settings.rank,
            self.instance,
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=2.0)
        log.info("sync: %s", self.stats.summary())

    def reidentify(self, identity: str) -> None:
        """The show file was reloaded (as ``identity``). A follower takes the leader's state
        again at its next beat, whatever the reload changed here; a show that now decides
        the picture differently joins the room again, playing on meanwhile."""
        with self._lock:
            self._installed = None
            if identity == self._identity:
                return
            self._identity = identity
            self._election.restart(self._monotonic())
            self._conductor.follow(JOINING)
        log.info("sync: the show changed; joining the room again")

    @property
    def running(self) -> bool:
        """Whether the thread runs (``stop`` ends it within 2 s)."""
        return self._thread.is_alive()

    def describe(self) -> dict[str, Any]:
        """This PC's part, for the health record and ``installation status``."""
        with self._lock:
            election = self._election
            leader = election.leader
            return {
                "role": election.role.value,
                "rank": self.settings.rank,
                "term": election.term,
                "leader": None
                if leader is None or election.role is Role.LEADING
                else {"rank": leader.rank, "address": leader.address},
                "members": election.members(self._monotonic()),
                "group": self.settings.where,
            }

    # The controllers' side.

    def _changed(self) -> None:
        """After a controller's change: the leader's thread tells the room at its next look-up."""
        with self._lock:
            if self._election.role is Role.LEADING:
                self._version += 1
                self._unsent = True

    # The thread.

    def _run(self) -> None:
        next_bind = next_beat = next_state = self._monotonic()
        try:
            while not self._stopping.is_set():
                now = self._monotonic()
                if self._socket is None and now >= next_bind:
                    self._socket = self._bind()
                    next_bind = now + RETRY_BIND
                received = self._listen()
                with self._lock:
                    if received is not None:
                        self._receive(*received)
                    # One state a POLL at most: every datagram heard (its own sent back
                    # among them) ends a look-up, and would otherwise send again.
                    if self._unsent and (now := self._monotonic()) >= next_state:
                        self._unsent = False
                        next_state = now + POLL
                        self._beat(None)
                if self._monotonic() < next_beat:
                    continue
                # What waits in the socket is read before silence is judged: after a stall
                # of this PC (load, a long install) the leader's beats sit there unread.
                backlog = self._backlog()
                with self._lock:
                    for datagram in backlog:
                        self._receive(*datagram)
                    now = self._monotonic()
                    next_beat = now + self.settings.heartbeat
                    self._beat(now)
        finally:
            with self._lock:
                sock, self._socket = self._socket, None
            if sock is not None:
                sock.close()

    def _backlog(self) -> list[tuple[bytes, str]]:
        """The datagrams queued now, at most ``MAX_BACKLOG`` (a flood cannot hold up the beat)."""
        backlog: list[tuple[bytes, str]] = []
        while len(backlog) < MAX_BACKLOG and (datagram := self._listen(wait=False)) is not None:
            backlog.append(datagram)
        return backlog

    def _listen(self, wait: bool = True) -> tuple[bytes, str] | None:
        """The next datagram within ``POLL`` seconds (without ``wait``: one already queued), if
        any. A socket that fails (its network went away) is closed and opened again (every
        ``RETRY_BIND`` seconds at most)."""
        sock = self._socket
        if sock is None:
            if wait:
                self._stopping.wait(POLL)
            return None
        try:
            return sock.receive(wait)
        except OSError as exc:
            self.problems.warning(
                "receive",
                f"sync: cannot receive on {self.settings.where} ({exc}); opening it again",
            )
            with self._lock:
                self._socket = None
            sock.close()
            return None

    def _beat(self, now: float | None) -> None:
        """The heartbeat: the election's rules at ``now``, then this PC's beat (only the beat,
        with the state, for ``now`` None: after a change). Nothing raised ends the thread."""
        try:
            if now is not None:
                self._act(self._election.tick(now))
            self._send()
        except Exception:
            self.stats.failed += 1
            self.problems.warning("failed", "sync: error while sending the beat", exc_info=True)

    def _bind(self) -> GroupSocket | None:
        try:
            return GroupSocket(self.settings, POLL, self._drop)
        except OSError as exc:
            self.problems.warning(
                "bind",
                f"sync: cannot join {self.settings.where} ({exc}); playing on alone and "
                f"trying again every {RETRY_BIND:g} s",
            )
            return None

    def _receive(self, data: bytes, host: str) -> None:
        self.stats.received += 1
        if sent_by(data, self.instance):
            self.stats.own += 1
            return
        if not in_networks(host, self.settings.allow):
            self.stats.refused += 1
            self.problems.warning(
                "refused", f"sync: refused a beat from {host}: not in the show's sync.allow"
            )
            return
        if not self._rates.spend(host, 1.0, HOST_RATE, self._monotonic()):
            self.stats.over_rate += 1
            self.problems.warning(
                "over_rate", f"sync: {host} sends more than {HOST_RATE:g} datagrams a second"
            )
            return
        try:
            beat = decode_beat(data)
        except Malformed as exc:
            self.stats.malformed += 1
            self.problems.warning(
                "malformed", f"sync: malformed datagram of {len(data)} bytes from {host}: {exc}"
            )
            return
        if beat.identity != self._identity:
            self.stats.other_show += 1
            self.problems.warning(
                "other_show",
                f"sync: rank {beat.rank} at {host} plays another show (identity "
                f"{beat.identity[:12]}, this one {self._identity[:12]}); not following it",
            )
            return
        self.stats.accepted += 1
        try:
            member = Member(
                beat.instance,
                host,
                beat.rank,
                beat.term,
                beat.leading,
                self._monotonic(),
                beat.alone,
            )
            self._act(self._election.hear(member))
            if beat.leading and self._election.follows(beat.instance):
                self._install(beat, host)
        except Exception:
            self.stats.failed += 1
            self.problems.warning(
                "failed", f"sync: error while taking in a beat from {host}", exc_info=True
            )

    def _install(self, beat: Beat, host: str) -> None:
        """Take in the leader's state when it is new, and its epoch when that differs."""
        key = (beat.instance, beat.term, beat.version)
        new_epoch = beat.epoch != self._clock.epoch
        if not beat.state or (key == self._installed and not new_epoch):
            return
        try:
            snapshot = decode(beat.state, self._conductor.score)
            if new_epoch:
                # Checked before show time jumps: a state refused leaves it as it was, so the
                # next state comes with a new epoch again and is installed with ``force``.
                check_near(snapshot, self._clock.wall() - beat.epoch)
                self._clock.adopt(beat.epoch)
            self._conductor.install(snapshot, force=new_epoch)
        except SnapshotError as exc:
            self.stats.malformed += 1
            self.problems.warning(
                "state", f"sync: the state from rank {beat.rank} at {host} is unusable: {exc}"
            )
            return
        self._installed = key
        self._version = max(self._version, beat.version)
        self.stats.installed += 1

    def _act(self, change: str | None) -> None:
        """Carry out a change of role or leader (the election's log line) on the conductor."""
        if change is None:
            return
        log.info("%s", change)
        leader = self._election.leader
        if self._election.role is Role.LEADING:
            self._conductor.follow(None)
            self._send()
        elif leader is not None:
            self._conductor.follow(f"rank {leader.rank} at {leader.address}")

    def _send(self) -> None:
        """This PC's beat to the group; with the state when leading."""
        if self._socket is None:
            return
        leading = self._election.role is Role.LEADING
        state = encode(self._conductor.snapshot()) if leading else b""
        beat = Beat(
            self._identity,
            self.instance,
            self.settings.rank,
            self._election.term,
            leading,
            self._clock.epoch,
            self._version,
            state,
            leading and self._election.alone,
        )
        data = encode_beat(beat)
        if len(data) > MAX_DATAGRAM:
            self.stats.oversized += 1
            self.problems.warning(
                "oversized",
                f"sync: this show's state takes {len(data)} bytes, more than one datagram "
                f"({MAX_DATAGRAM}); followers keep the state they have",
            )
            data = encode_beat(replace(beat, state=b""))
        try:
            if self._socket.send(data):
                self.stats.sent += 1
        except OSError as exc:
            self.problems.warning(
                "send", f"sync: cannot send to {self.settings.where} ({exc}); opening it again"
            )
            sock, self._socket = self._socket, None
            sock.close()
