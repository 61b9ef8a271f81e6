"""A real systemd notification socket for tests: a unix datagram socket bound in a temporary
folder, the way systemd binds one for a ``Type=notify`` service, collecting what arrives."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path


class NotifySocket:
    """Receives sd_notify datagrams on its own thread, each with the monotonic time it came."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "notify"
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(str(self.path))
        self._socket.settimeout(0.05)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._socket.recv(65536)
            except TimeoutError:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
            self.messages.append((time.monotonic(), fields))

    def close(self) -> None:
        self._closed.set()
        self._thread.join()
        self._socket.close()

    def times_of(self, key: str, value: str | None = None) -> list[float]:
        return [t for t, f in self.messages if key in f and (value is None or f[key] == value)]

    def values_of(self, key: str) -> list[str]:
        return [f[key] for _, f in self.messages if key in f]


def ended_pid() -> int:
    """The id of a process that has ended (the record of an instance that is gone)."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(child.stdout)
