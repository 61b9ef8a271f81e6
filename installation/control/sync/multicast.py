"""The sync group's socket: every PC of the room sends to and hears the same IPv4 group.

Several instances may share one host (the room test runs four), so the port is bound with
SO_REUSEPORT and every one of them receives every datagram; each also hears its own, which the
peer recognises by instance id. TTL 1 by default keeps the group on the show network.

Test hook: with ``INSTALLATION_SYNC_DROP=PATH`` in the environment, every datagram in and out
is dropped while the file PATH exists, which partitions one instance from the room as a pulled
cable would (a test's network namespace can make neither veth pairs nor netem).
"""

from __future__ import annotations

import os
import select
import socket
from collections.abc import Mapping
from pathlib import Path

from installation.score.sync_settings import SyncSettings

DROP_ENV = "INSTALLATION_SYNC_DROP"
#: Larger than any datagram sent (``wire.MAX_DATAGRAM``), so that an oversized one is read
#: whole and judged as it is.
_RECEIVE = 65_536


def drop_file(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The test hook's file, None without the hook."""
    path = environ.get(DROP_ENV, "")
    return Path(path) if path else None


class GroupSocket:
    """A UDP socket joined to ``settings.group``; ``receive`` waits at most ``timeout``;
    while the file ``drop`` exists (the test hook) nothing goes in or out."""

    def __init__(self, settings: SyncSettings, timeout: float, drop: Path | None) -> None:
        self._target = (settings.group, settings.port)
        self._drop = drop
        interface = socket.inet_aton(settings.interface or "0.0.0.0")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(("", settings.port))
            membership = socket.inet_aton(settings.group) + interface
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, settings.ttl)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            if settings.interface:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, interface)
            sock.settimeout(timeout)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        #: Whether a datagram is queued, asked without waiting (poll: any descriptor number).
        self._queued = select.poll()
        self._queued.register(sock, select.POLLIN)

    def dropping(self) -> bool:
        """Whether the test hook's file exists: the network is "unplugged"."""
        return self._drop is not None and self._drop.exists()

    def send(self, data: bytes) -> bool:
        """Send one datagram (at most ``MAX_DATAGRAM`` bytes: the caller's to check) to the
        group; False when the test hook dropped it."""
        if self.dropping():
            return False
        self._sock.sendto(data, self._target)
        return True

    def receive(self, wait: bool = True) -> tuple[bytes, str] | None:
        """The next datagram and its sender's address, or None after the timeout (at once
        without ``wait`` when none is queued, or when the test hook dropped it)."""
        if not wait and not self._queued.poll(0):
            return None
        try:
            data, sender = self._sock.recvfrom(_RECEIVE)
        except TimeoutError:
            return None
        return None if self.dropping() else (data, sender[0])

    def close(self) -> None:
        self._sock.close()
