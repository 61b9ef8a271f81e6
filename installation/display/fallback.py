"""``[display] renderer = "auto"``: the GL presenter where GL starts, else SDL's renderer.

Which one works is only known when the window opens (the driver, the GL version, the
shaders), so the choice is made in ``open`` and every other call goes to the one chosen. A
gallery PC whose GL is broken still shows the work, and the log says in one line why it is
not the GL presenter.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from installation.display.base import Action, Display
from installation.display.gl import GlDisplay, GlUnavailable
from installation.display.sdl import SdlDisplay
from installation.engine.frames import Frame

if TYPE_CHECKING:
    from installation.display.gpu_texture import GlOffer

logger = logging.getLogger("installation.display")


class FallbackDisplay(Display):
    """Opens ``gl``, or ``sdl`` when GL is unavailable."""

    def __init__(self, gl: GlDisplay, sdl: SdlDisplay) -> None:
        self._gl = gl
        self._sdl = sdl
        self._chosen: Display | None = None

    @property
    def chosen(self) -> Display:
        """The display that opened; only valid after ``open``."""
        if self._chosen is None:
            raise RuntimeError("display is not open")
        return self._chosen

    @property
    def description(self) -> str:
        return "not open" if self._chosen is None else self._chosen.description

    @property  # type: ignore[override]
    def gpu_offer(self) -> GlOffer | None:
        return None if self._chosen is None else self._chosen.gpu_offer

    def open(self, title: str) -> None:
        if self._chosen is not None:
            raise RuntimeError("display is already open")
        try:
            self._gl.open(title)
            self._chosen = self._gl
        except GlUnavailable as exc:
            logger.warning("GL presenter unavailable: %s; presenting with SDL's renderer", exc)
            self._sdl.open(title)
            self._chosen = self._sdl

    def present(self, a: Frame, b: Frame | None, weight: float, brightness: float = 1.0) -> None:
        self.chosen.present(a, b, weight, brightness)

    def poll(self) -> list[Action]:
        return self.chosen.poll()

    def close(self) -> None:
        if self._chosen is not None:
            self._chosen.close()
            self._chosen = None
