"""The shared libraries SDL opens for a video driver, checked before SDL gets to them.

pygame's SDL loads the Wayland and X11 client libraries with dlopen, and its Wayland driver
starts even when some of them are missing: the first window then calls a function that was
never loaded, and the show dies of a segmentation fault in ``video.Window`` with nothing in
the log to say why (a kiosk without ``libwayland-egl1`` or ``libwayland-cursor0``). Loading
the same sonames with ctypes first, the way SDL does, turns that into one line naming the
Debian package to install. None of them is bundled in pygame.libs, so the system's loader
finds them or nothing does.
"""

from __future__ import annotations

import ctypes
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from installation.errors import UserError

#: The libraries each video driver cannot work without, and the Debian package of each.
LIBRARIES: dict[str, tuple[tuple[str, str], ...]] = {
    "wayland": (
        ("libwayland-client.so.0", "libwayland-client0"),
        ("libwayland-egl.so.1", "libwayland-egl1"),
        ("libwayland-cursor.so.0", "libwayland-cursor0"),
        ("libxkbcommon.so.0", "libxkbcommon0"),
        ("libEGL.so.1", "libegl1"),
    ),
    "x11": (("libX11.so.6", "libx11-6"), ("libXext.so.6", "libxext6")),
}
#: Where libglvnd's libEGL looks for the EGL drivers it dispatches to, unless told otherwise.
EGL_VENDOR_DIRS = "/etc/glvnd/egl_vendor.d:/usr/share/glvnd/egl_vendor.d"
#: What provides an EGL driver on Debian when the GPU maker's own is not installed.
MESA_EGL = "libegl-mesa0 libgl1-mesa-dri"


def loads(soname: str) -> bool:
    """Whether the dynamic loader can load ``soname`` into this process, as SDL would."""
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def missing_libraries(
    driver: str, table: Mapping[str, tuple[tuple[str, str], ...]] = LIBRARIES
) -> list[tuple[str, str]]:
    """The (soname, Debian package) pairs ``driver`` needs that do not load here."""
    return [(soname, package) for soname, package in table.get(driver, ()) if not loads(soname)]


def egl_vendor_files(environ: Mapping[str, str] = os.environ) -> list[Path]:
    """The EGL driver description files libglvnd reads, found the way it finds them."""
    files = environ.get("__EGL_VENDOR_LIBRARY_FILENAMES")
    if files:
        return [Path(name) for name in files.split(":") if name]
    found: list[Path] = []
    for folder in environ.get("__EGL_VENDOR_LIBRARY_DIRS", EGL_VENDOR_DIRS).split(":"):
        if folder and Path(folder).is_dir():
            found.extend(sorted(Path(folder).glob("*.json")))
    return found


def _vendor_library(path: Path) -> str | None:
    """The library an EGL driver description names, or None when it cannot be read."""
    try:
        library = json.loads(path.read_text(encoding="utf-8"))["ICD"]["library_path"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None
    return library if isinstance(library, str) else None


def missing_egl_driver(
    environ: Mapping[str, str] = os.environ, can_load: Callable[[str], bool] = loads
) -> str | None:
    """Why no EGL driver would start here, or None when one can be loaded. SDL's Wayland
    driver draws only through EGL, and libEGL.so.1 is a dispatcher that needs a driver."""
    files = egl_vendor_files(environ)
    libraries = [library for library in map(_vendor_library, files) if library]
    if any(can_load(library) for library in libraries):
        return None
    if libraries:
        return f"no EGL driver loads ({', '.join(libraries)})"
    where = environ.get("__EGL_VENDOR_LIBRARY_FILENAMES") or environ.get(
        "__EGL_VENDOR_LIBRARY_DIRS", EGL_VENDOR_DIRS
    )
    return f"no EGL driver is installed (none described in {where.replace(':', ' or ')})"


def require_video_libraries(driver: str, environ: Mapping[str, str] = os.environ) -> None:
    """Refuse, naming what to install, to use a video driver whose libraries are missing."""
    missing = missing_libraries(driver)
    if missing:
        sonames = ", ".join(soname for soname, _ in missing)
        packages = " ".join(package for _, package in missing)
        verb = "is" if len(missing) == 1 else "are"
        raise UserError(
            f"SDL's {driver} video driver needs {sonames}, which {verb} missing "
            f"(Debian: apt-get install {packages})"
        )
    if driver == "wayland":
        reason = missing_egl_driver(environ)
        if reason is not None:
            raise UserError(
                f"SDL's wayland video driver draws through EGL, and {reason} "
                f"(Debian: apt-get install {MESA_EGL} for Mesa, or the GPU maker's driver)"
            )
