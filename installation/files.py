"""Replacing a file so that a reader, or a power cut, sees the old file or the whole new one.

The health record is read by ``installation status`` while the show rewrites it every 2 s, and
TensorRT engines are read at every start of a show that may lose power at any moment: neither
may ever be seen half written.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it, flushed to disk, then
    renamed over ``path``. ``mode`` sets the permissions whatever the umask (the kiosk unit's
    is 0027, and staff read the health record as themselves). The temporary file is named
    after the process, so two processes writing the same file never share one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
