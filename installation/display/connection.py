"""Telling a display server that went away from a visitor who quit.

When the Wayland compositor dies (cage killed, crashed, or stopped with its unit), SDL posts
the same quit event that closing the window does, and the show would end with exit code 0 as
if someone had pressed Esc. So a quit is checked against the compositor's socket first. An X
server that goes away ends the process inside Xlib, which calls exit(1) after its I/O error
handler; ours says why and exits with the display-lost code instead.
"""

from __future__ import annotations

import ctypes
import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path

from installation.display.base import EXIT_DISPLAY_LOST
from installation.errors import reason

logger = logging.getLogger("installation.display")

_X_IO_ERROR_HANDLER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)


def wayland_socket(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The compositor socket a Wayland client connects to, as libwayland-client finds it;
    None when the connection was handed over as a file descriptor (WAYLAND_SOCKET)."""
    if environ.get("WAYLAND_SOCKET"):
        return None
    name = environ.get("WAYLAND_DISPLAY") or "wayland-0"
    if os.path.isabs(name):
        return Path(name)
    return Path(environ.get("XDG_RUNTIME_DIR", "")) / name


def lost_connection(driver: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """Why the display server of ``driver`` is gone, or None when it still takes clients
    (or cannot be asked: only the Wayland compositor is probed, by connecting to it)."""
    path = wayland_socket(environ) if driver == "wayland" else None
    if path is None:
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError as exc:
            return f"the Wayland compositor at {path} is gone ({reason(exc)})"
    return None


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
