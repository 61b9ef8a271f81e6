"""The three ways to show the work: in the gallery, in rehearsal, and with no screen at all."""

from __future__ import annotations

import os

import numpy as np
import pygame

from installation.display.sdl import SdlDisplay


class FullscreenDisplay(SdlDisplay):
    """Desktop fullscreen for the gallery: no mode switch, so the projector never resyncs.

    ``size`` is the window used if a technician presses ``f`` to leave fullscreen.
    """

    starts_fullscreen = True


class WindowedDisplay(SdlDisplay):
    """A resizable window for rehearsing a show on a workstation."""


class HeadlessDisplay(SdlDisplay):
    """SDL's dummy video driver: no screen needed, for tests, CI and dry runs.

    The dummy driver only offers the software renderer, so that is expected here.
    """

    default_size = (640, 360)
    fixed_size = True
    software_expected = True

    def _prepare_video_driver(self) -> None:
        os.environ["SDL_VIDEODRIVER"] = "dummy"

    def snapshot(self) -> np.ndarray:
        """Return what was last presented as a read-only H x W x 3 uint8 RGB array.

        Reading after present() is only reliable because the dummy driver forces the software
        renderer, whose output survives presenting; GPU back buffers do not.
        """
        surface = self._require_session().renderer.to_surface()
        width, height = surface.get_size()
        pixels = pygame.image.tobytes(surface, "RGB")
        return np.frombuffer(pixels, dtype=np.uint8).reshape(height, width, 3)
