"""Telling a display server that went away from a visitor who quit.

When the Wayland compositor dies (cage killed, crashed, or stopped with its unit), SDL posts
the same quit event that closing the window does, and the show would end with exit code 0 as
if someone had pressed Esc. So a quit is checked against the compositor first: connecting to
its socket is not enough, because a compositor that is shutting down (SIGTERM) still holds
its socket for a moment but no longer serves clients; so the probe asks it for a round trip
(wl_display.sync) and waits a bounded time for the answer. An X
server that goes away ends the process inside Xlib, which calls exit(1) after its I/O error
handler; ours says why and exits with the display-lost code instead.
"""

from __future__ import annotations

import ctypes
import logging
import os
import socket
import struct
import time
from collections.abc import Mapping
from pathlib import Path

from installation.display.base import EXIT_DISPLAY_LOST
from installation.errors import reason

logger = logging.getLogger("installation.display")

_X_IO_ERROR_HANDLER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)

#: How long a compositor may take to answer the probe: a live one answers in milliseconds,
#: even on a loaded machine; one that is shutting down never does.
SYNC_TIMEOUT = 2.0
#: The Wayland wire format: object id, then (message size << 16 | opcode), in host byte order.
_HEADER = struct.Struct("=II")
_DISPLAY, _CALLBACK = 1, 2
#: wl_display.sync (opcode 0) creating the callback object _CALLBACK.
_SYNC = _HEADER.pack(_DISPLAY, (12 << 16) | 0) + struct.pack("=I", _CALLBACK)


def wayland_socket(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The compositor socket a Wayland client connects to, as libwayland-client finds it;
    None when the connection was handed over as a file descriptor (WAYLAND_SOCKET)."""
    if environ.get("WAYLAND_SOCKET"):
        return None
    name = environ.get("WAYLAND_DISPLAY") or "wayland-0"
    if os.path.isabs(name):
        return Path(name)
    return Path(environ.get("XDG_RUNTIME_DIR", "")) / name


def lost_connection(
    driver: str, environ: Mapping[str, str] = os.environ, timeout: float = SYNC_TIMEOUT
) -> str | None:
    """Why the display server of ``driver`` is gone, or None when it still serves clients
    (or cannot be asked: only the Wayland compositor is probed, with a round trip on a
    connection of our own)."""
    path = wayland_socket(environ) if driver == "wayland" else None
    if path is None:
        return None
    gone = f"the Wayland compositor at {path} is gone"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(timeout)
        try:
            probe.connect(str(path))
            probe.sendall(_SYNC)
            answered = _callback_done(probe, time.monotonic() + timeout)
        except TimeoutError:
            return f"{gone} (it takes connections but did not answer within {timeout:g} s)"
        except OSError as exc:
            return f"{gone} ({reason(exc)})"
    return None if answered else f"{gone} (it closed the connection without answering)"


def _callback_done(probe: socket.socket, deadline: float) -> bool:
    """Read the compositor's events until our sync callback's ``done``: True; False when it
    hangs up first. Raises TimeoutError at ``deadline``."""
    buffer = b""
    while True:
        while len(buffer) >= _HEADER.size:
            target, size_opcode = _HEADER.unpack_from(buffer)
            size = size_opcode >> 16
            if size < _HEADER.size:
                raise OSError("it answered outside the Wayland protocol")
            if len(buffer) < size:
                break
            if target == _CALLBACK and size_opcode & 0xFFFF == 0:
                return True
            buffer = buffer[size:]
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        probe.settimeout(left)
        chunk = probe.recv(4096)
        if not chunk:
            return False
        buffer += chunk


@_X_IO_ERROR_HANDLER
def _x_connection_broken(_display: int | None) -> int:
    """Xlib's fatal I/O error handler: nothing may be drawn or asked any more, and returning
    makes Xlib exit(1), so say why and end the process here."""
    logger.error(
        "display lost: the X server at %s closed the connection",
        os.environ.get("DISPLAY", "(DISPLAY unset)"),
    )
    logging.shutdown()
    os._exit(EXIT_DISPLAY_LOST)


def watch_x_connection() -> None:
    """Install the handler above in the libX11 that SDL's x11 video driver has loaded."""
    libx11 = ctypes.CDLL("libX11.so.6")
    libx11.XSetIOErrorHandler.argtypes = [_X_IO_ERROR_HANDLER]
    libx11.XSetIOErrorHandler.restype = ctypes.c_void_p
    libx11.XSetIOErrorHandler(_x_connection_broken)
