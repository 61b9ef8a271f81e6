"""Outbound events: telling a sound system or a show controller what the show does.

Targets (``[osc] send_to``) receive ``/installation/scene`` (name, number) when the scene
changes, ``/installation/face`` (seed, index) when a new face is reached, ``/installation/
blackout`` (1 or 0) when a blackout begins or ends, and ``/installation/heartbeat`` (frames
per second shown) once a second.

The events are found by asking the conductor ten times a second from this module's own
thread, not by listeners inside the conductor: a face is reached in show time, on nobody's
thread, so it has to be watched for anyway, and a playlist changes scene inside the display's
tick, where nothing may be sent. One watcher for all of them keeps the conductor and the
display loop as they were. A blackout switched off and on again within a tenth of a second is
missed, which no listener downstream could act on anyway.

Each target has its own UDP socket, connected and non-blocking: sending never waits, and the
ICMP "port unreachable" a closed port answers with comes back as ECONNREFUSED on that target's
socket, naming it. An unreachable target is logged once, and again only after it has worked
for a while and failed anew; nothing a target does can stop the thread or reach the show.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable

from pythonosc.osc_message_builder import OscMessageBuilder

from installation.score.conductor import Conductor

log = logging.getLogger(__name__)

Target = tuple[str, int]
#: Seconds between looks at the conductor.
POLL = 0.1
HEARTBEAT = 1.0
#: A failing target counts as working again after this many seconds without an error.
RECOVERED = 5.0


def message(address: str, *args: tuple[str, object]) -> bytes:
    """One OSC message, each argument with its type tag given (seeds are always "h", 64-bit,
    so a receiver sees one type whatever the seed)."""
    builder = OscMessageBuilder(address)
    for tag, value in args:
        builder.add_arg(value, tag)
    return builder.build().dgram


class _Sender:
    """One target's socket and whether it is known to be unreachable."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.failed_at: float | None = None
        self.sock: socket.socket | None = None

    def send(self, data: bytes, now: float) -> None:
        try:
            if self.sock is None:
                family = socket.AF_INET6 if ":" in self.target[0] else socket.AF_INET
                self.sock = socket.socket(family, socket.SOCK_DGRAM)
                self.sock.setblocking(False)
                self.sock.connect(self.target)
            self.sock.send(data)
        except BlockingIOError:
            return  # the socket's buffer is full: this event is dropped, the next one sent
        except OSError as exc:
            if self.failed_at is None:
                host, port = self.target
                log.warning("events: cannot send to %s:%d: %s", host, port, exc.strerror or exc)
            self.failed_at = now
            return
        if self.failed_at is not None and now - self.failed_at >= RECOVERED:
            log.info("events: %s:%d works again", *self.target)
            self.failed_at = None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


class EventSender:
    """The watcher and sender thread; ``start``/``stop`` around the show, ``update`` on a
    reload. ``clock`` is monotonic seconds (the heartbeat's), injectable for tests."""

    def __init__(
        self,
        conductor: Conductor,
        targets: tuple[Target, ...],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.conductor = conductor
        self._clock = clock
        self._senders = tuple(_Sender(t) for t in targets)
        #: The senders the thread used last; it closes those a reload dropped.
        self._sending = self._senders
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: dict[str, object] = {}
        self._heartbeat = 0.0

    @property
    def targets(self) -> tuple[Target, ...]:
        return tuple(s.target for s in self._senders)

    def start(self) -> None:
        """Start watching; with no targets there is nothing to do until a reload names some."""
        if self._senders and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="osc-events", daemon=True)
            self._thread.start()
            listed = ", ".join(f"{host}:{port}" for host, port in self.targets)
            log.info("events: sending to %s", listed)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
        for sender in {*self._sending, *self._senders}:
            sender.close()

    def update(self, targets: tuple[Target, ...]) -> None:
        """New targets from a reloaded show; targets kept keep their socket and state. The
        tuple is replaced whole, so the thread sends to the old set or the new one, and it
        closes the sockets of dropped targets itself, never while sending on them."""
        if targets == self.targets:
            return
        kept = {s.target: s for s in self._senders}
        senders = tuple(kept.pop(t, None) or _Sender(t) for t in targets)
        self._senders = senders
        self._last = {}  # every target hears the present state again, the new ones first
        if not senders:
            log.info("events: no targets any more")
        self.start()

    def _run(self) -> None:
        while not self._stop.wait(POLL):
            try:
                self._look()
            except Exception:  # the watcher outlives any one bad look
                log.exception("events: could not read the show's state")

    def _look(self) -> None:
        now = self._clock()
        status = self.conductor.status()
        out = []
        scene = (status.scene, status.number)
        if self._changed("scene", scene):
            out.append(message("/installation/scene", ("s", scene[0]), ("i", scene[1])))
        face = self.conductor.face_reached()
        if face is not None and self._changed("face", face):
            out.append(message("/installation/face", ("h", face[0]), ("h", face[1])))
        if self._changed("blackout", status.blackout):
            out.append(message("/installation/blackout", ("i", int(status.blackout))))
        if now - self._heartbeat >= HEARTBEAT:
            self._heartbeat = now
            fps = float(status.frames_per_second)
            out.append(message("/installation/heartbeat", ("f", fps)))
        senders = self._senders
        for dropped in set(self._sending) - set(senders):
            dropped.close()
        self._sending = senders
        for sender in senders:
            for data in out:
                sender.send(data, now)

    def _changed(self, kind: str, value: object) -> bool:
        """Whether ``value`` differs from the last one seen of ``kind``; the first look
        sends the state the show starts in, so a target knows it without asking."""
        if self._last.get(kind, _UNSEEN) == value:
            return False
        self._last[kind] = value
        return True


_UNSEEN = object()
