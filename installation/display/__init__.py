"""Showing frames on a screen: fullscreen in the gallery, windowed for rehearsal, headless
for tests; with OpenGL shaders (installation.display.gl) or SDL's renderer. Pick one with
:func:`make_display`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from installation.display.base import EXIT_DISPLAY_LOST, Action, Display, DisplayLost
from installation.display.fallback import FallbackDisplay
from installation.display.gl import GlDisplay, GlUnavailable
from installation.display.layout import fit_rect
from installation.display.modes import FullscreenDisplay, HeadlessDisplay, WindowedDisplay
from installation.display.outputs import OutputsDisplay
from installation.display.sdl import SdlDisplay
from installation.errors import UserError

if TYPE_CHECKING:
    from installation.score.outputs_settings import OutputSettings
    from installation.score.show import DisplaySettings

logger = logging.getLogger("installation.display")

__all__ = [
    "EXIT_DISPLAY_LOST",
    "Action",
    "Display",
    "DisplayLost",
    "FallbackDisplay",
    "FullscreenDisplay",
    "GlDisplay",
    "GlUnavailable",
    "HeadlessDisplay",
    "OutputsDisplay",
    "SdlDisplay",
    "WindowedDisplay",
    "fit_rect",
    "make_display",
]

_MODES: dict[str, type[SdlDisplay]] = {
    "fullscreen": FullscreenDisplay,
    "windowed": WindowedDisplay,
    "headless": HeadlessDisplay,
}


def make_display(
    mode: str,
    size: tuple[int, int] | None = None,
    settings: DisplaySettings | None = None,
    outputs: Sequence[OutputSettings] = (),
) -> Display:
    """Build the display for ``mode`` ("fullscreen", "windowed" or "headless"), not yet open.

    ``size`` overrides the mode's window size; it comes from the command line or a show file,
    so a bad value is the user's to fix. ``settings`` are the show's ``[display]``, whose
    ``renderer`` picks the GL presenter, SDL's renderer, or ("auto") GL on a GPU with SDL to
    fall back on; without them (tools that measure the loop, not the picture): SDL's.
    ``outputs``, the show's ``[[outputs]]``, are drawn on several screens with SDL's
    renderer; headless, the show plays them as its one picture.
    """
    display_class = _MODES.get(mode)
    if display_class is None:
        raise UserError(f"unknown display mode {mode!r}: choose one of {', '.join(_MODES)}")
    if size is not None and (len(size) != 2 or not all(isinstance(n, int) and n > 0 for n in size)):
        raise UserError(f"display size must be two positive whole numbers, got {size!r}")
    if outputs and mode != "headless":
        columns = 1 if settings is None else settings.grid[1]
        return OutputsDisplay(outputs, columns, mode == "windowed", size)
    if outputs:
        logger.info("headless: the show's %d outputs play as one picture", len(outputs))
    sdl = display_class(size)
    if settings is None or settings.renderer == "sdl":
        return sdl
    if settings.renderer == "gl":
        return GlDisplay(display_class, settings, size)
    return FallbackDisplay(GlDisplay(display_class, settings, size, hardware_only=True), sdl)
