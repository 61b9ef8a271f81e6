"""The screens SDL sees: their index, name and place on the desktop.

pygame tells only the screens' sizes, but placing a window on the second projector needs
where that projector's screen starts, and a technician names screens by their connector
(``HDMI-1``), not by a number that can change when a cable moves. Both are asked from the
SDL library pygame itself loaded, through ctypes, so they describe the same video session.
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from installation.errors import UserError

#: pygame's own copy (``libSDL2-2-1667c208.0.so...``) or the system's (``libSDL2-2.0.so.0``).
_SDL_LIBRARY = re.compile(r"/libSDL2-2[.-][^/]*\.so[^/]*$")


@dataclass(frozen=True)
class Screen:
    """One screen as SDL numbers and names it; x, y: its top-left corner on the desktop."""

    index: int
    name: str
    x: int
    y: int
    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.index} {self.name!r} {self.width}x{self.height} at {self.x},{self.y}"


class _Rect(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int) for name in ("x", "y", "w", "h")]


@cache
def _sdl() -> ctypes.CDLL:
    """The SDL library already mapped into this process by pygame (Linux: /proc/self/maps)."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        path = line.split(maxsplit=5)[-1]
        if _SDL_LIBRARY.search(path):
            library = ctypes.CDLL(path)
            library.SDL_GetDisplayName.restype = ctypes.c_char_p
            library.SDL_GetDisplayBounds.argtypes = [ctypes.c_int, ctypes.POINTER(_Rect)]
            return library
    raise UserError("cannot find the SDL library pygame loaded: several outputs need it")


def list_screens() -> list[Screen]:
    """Every screen of the started video subsystem, in SDL's order."""
    sdl = _sdl()
    screens = []
    for index in range(sdl.SDL_GetNumVideoDisplays()):
        bounds = _Rect()
        if sdl.SDL_GetDisplayBounds(index, ctypes.byref(bounds)) != 0:
            continue
        raw = sdl.SDL_GetDisplayName(index) or b""
        name = raw.decode("utf-8", "replace") or f"display {index}"
        screens.append(Screen(index, name, bounds.x, bounds.y, bounds.w, bounds.h))
    return screens


def hidden_behind(screens: list[Screen], screen: Screen) -> Screen | None:
    """An earlier screen whose area overlaps ``screen``'s, as separate X screens (``:0.0``,
    ``:0.1``) each start at 0,0: SDL places a window on the first screen holding its position,
    so windows meant for ``screen`` open on that one. None when ``screen`` has its own area."""
    for other in screens[: screens.index(screen)]:
        if (
            other.x < screen.x + screen.width
            and screen.x < other.x + other.width
            and other.y < screen.y + screen.height
            and screen.y < other.y + other.height
        ):
            return other
    return None


def find_screen(screens: list[Screen], wanted: int | str, origin: str) -> Screen:
    """The screen an output names by index or name; a UserError listing what SDL sees when
    there is none (``origin`` names the output's table in the show file)."""
    for screen in screens:
        if wanted in (screen.index, screen.name):
            return screen
    seen = "; ".join(str(screen) for screen in screens) or "none"
    raise UserError(f"{origin}: display {wanted!r} not found; SDL sees: {seen}")
