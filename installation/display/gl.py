"""The GL presenter: frames drawn with OpenGL shaders on pygame's window.

SDL's renderer can only stretch a frame with bilinear filtering and blend it in sRGB, so a
256 px face on a 1080p screen is soft and a crossfade between two faces dips in brightness.
Here the frame is scaled by a Lanczos-3 (or bicubic) filter, blended, faded and scaled in
linear light, and dithered to 8 bits (installation.display.shaders), with optional film grain,
vignette and a portrait layout. The window, events and fullscreen key behave as SDL's modes
do; ``moderngl`` drives the GL context that pygame's window (``OPENGL``) makes.

Headless, the window is made by SDL's offscreen video driver, which draws through EGL without
any screen (Mesa's llvmpipe on a machine without a GPU), so tests and CI run the same code.
Where GL cannot start (moderngl missing, no GL or EGL driver, GL older than 3.3, a shader the
driver refuses), :class:`GlUnavailable` says why in one line and ``renderer = "auto"``
presents with SDL's renderer instead (installation.display.fallback).
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pygame

from installation.display.base import Action, Display
from installation.display.modes import HeadlessDisplay
from installation.display.sdl import (
    SdlDisplay,
    actions_from,
    desktop_size,
    start_video,
    switch_fullscreen,
    warn_if_invisible,
)
from installation.engine.frames import Frame
from installation.errors import UserError, first_line
from installation.images import read_image

if TYPE_CHECKING:
    import moderngl

    from installation.display.gl_picture import FrameTextures, GlPicture
    from installation.score.show import DisplaySettings

logger = logging.getLogger("installation.display")

#: GL renderers that run on the CPU: fine headless, a broken GPU setup in a gallery.
_SOFTWARE_GL = ("llvmpipe", "softpipe", "swrast")


def _runs_on_cpu(renderer_name: str) -> bool:
    return any(name in renderer_name for name in _SOFTWARE_GL)


class GlUnavailable(UserError):
    """OpenGL 3.3 cannot be used here; the message says why, in one line."""


@dataclass
class _Session:
    """Everything that exists only while the display is open, released together by close()."""

    driver: str
    ctx: moderngl.Context
    picture: GlPicture
    textures: FrameTextures
    renderer_name: str
    fullscreen: bool


class GlDisplay(Display):
    """A display drawn with OpenGL shaders; ``mode`` is the SDL display class of the same
    mode, whose window size, fullscreen and fixed-size choices it takes.

    ``hardware_only`` refuses a GL that runs on the CPU (Mesa's llvmpipe): there the shaders
    cost several times what SDL's renderer does (docs/display.md), and the show would blend at
    a few frames a second while taking the CPU that inference needs.
    """

    def __init__(
        self,
        mode: type[SdlDisplay],
        settings: DisplaySettings,
        size: tuple[int, int] | None = None,
        hardware_only: bool = False,
    ) -> None:
        self._mode = mode
        self._hardware_only = hardware_only
        self._settings = settings
        self._size = size or mode.default_size
        self._session: _Session | None = None
        self._last: tuple[Frame, Frame | None, float, float] | None = None
        self._frame_number = 0

    @property
    def description(self) -> str:
        if self._session is None:
            return "not open"
        return (
            f"video driver {self._session.driver}, GL presenter on "
            f"{self._session.renderer_name} ({self._settings.scaler} scaler, "
            f"{self._settings.layout} layout)"
        )

    @property
    def texture_count(self) -> int:
        """How many frame textures are held on the GPU now; it must stay bounded for weeks."""
        return 0 if self._session is None else len(self._session.textures)

    def open(self, title: str) -> None:
        if self._session is not None:
            raise RuntimeError("display is already open")
        backdrop = None
        if self._settings.layout == "portrait" and self._settings.background_image is not None:
            backdrop = read_image(self._settings.background_image)
        headless = issubclass(self._mode, HeadlessDisplay)
        if headless:
            os.environ["SDL_VIDEODRIVER"] = "offscreen"
        driver = start_video()
        try:
            self._session = self._start_gl(title, driver, backdrop)
        except BaseException:
            pygame.display.quit()
            raise
        pygame.mouse.set_visible(False)
        from installation.display.gpu_texture import GlOffer

        self.gpu_offer = GlOffer.open(self._session.ctx)
        logger.info("display %s", self.description)
        if headless:
            return
        warn_if_invisible(driver)
        if _runs_on_cpu(self._session.renderer_name):
            logger.warning(
                "OpenGL runs on the CPU (%s): expect high CPU use and dropped frames; check "
                "the GPU driver",
                self._session.renderer_name,
            )

    def _start_gl(self, title: str, driver: str, backdrop: np.ndarray | None) -> _Session:
        """The GL window, context and passes; GlUnavailable where any of them cannot be had."""
        try:
            import moderngl

            from installation.display.gl_picture import FrameTextures, GlPicture
        except ImportError as exc:
            raise GlUnavailable(f"moderngl cannot be imported ({exc})") from exc
        fullscreen = self._mode.starts_fullscreen
        pygame.display.gl_set_attribute(pygame.GL_CONTEXT_MAJOR_VERSION, 3)
        pygame.display.gl_set_attribute(pygame.GL_CONTEXT_MINOR_VERSION, 3)
        pygame.display.gl_set_attribute(
            pygame.GL_CONTEXT_PROFILE_MASK, pygame.GL_CONTEXT_PROFILE_CORE
        )
        pygame.display.set_caption(title)
        flags = pygame.OPENGL | pygame.DOUBLEBUF
        if fullscreen:
            flags |= pygame.FULLSCREEN  # at the desktop's size: no mode switch
        elif not self._mode.fixed_size:
            flags |= pygame.RESIZABLE
        size = desktop_size(0) if fullscreen else self._size
        try:
            # pygame warns, rather than fails, where the driver cannot wait for vsync.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                pygame.display.set_mode(size, flags, vsync=1)
        except pygame.error as exc:
            raise GlUnavailable(f"no OpenGL 3.3 window on SDL's {driver} driver ({exc})") from exc
        for warning in caught:
            logger.info("display: %s", warning.message)
        try:
            # The window's own context, found through EGL or GLX, whichever SDL made it with.
            moderngl.init_context()
        except Exception as exc:  # moderngl raises plain Exceptions for a missing GL
            raise GlUnavailable(f"no OpenGL context ({first_line(exc)})") from exc
        ctx = moderngl.get_context()
        renderer_name = str(ctx.info.get("GL_RENDERER", "an unknown GL renderer"))
        try:
            if ctx.version_code < 330:
                raise GlUnavailable(f"OpenGL {ctx.info['GL_VERSION']} is older than 3.3")
            if self._hardware_only and _runs_on_cpu(renderer_name):
                raise GlUnavailable(
                    f"OpenGL runs on the CPU ({renderer_name}), where SDL's renderer costs "
                    'less (renderer = "gl" uses it all the same)'
                )
            picture = GlPicture(ctx, self._settings, backdrop)
        except moderngl.Error as exc:
            ctx.release()
            raise GlUnavailable(f"GL cannot set up the presenter ({first_line(exc)})") from exc
        except GlUnavailable:
            ctx.release()
            raise
        return _Session(driver, ctx, picture, FrameTextures(ctx), renderer_name, fullscreen)

    def _require_session(self) -> _Session:
        if self._session is None:
            raise RuntimeError("display is not open")
        return self._session

    def texture_for(self, frame: Frame) -> moderngl.Texture:
        """The texture holding ``frame``, uploaded from the host the first time it is shown.

        This is where a frame that is already on the GPU would take another path: pass its
        own fill to ``FrameTextures.texture_for`` (see installation.display.gl_picture).
        """
        from installation.display.gl_picture import host_fill

        textures = self._require_session().textures
        if frame.device is not None:  # never left the GPU: installation.display.gpu_texture
            assert self.gpu_offer is not None and self.gpu_offer.interop is not None
            fill = self.gpu_offer.interop.fill_for(frame.device)
            return textures.texture_for(frame.serial, frame.device.size, 4, fill)
        assert frame.image is not None
        height, width = frame.image.shape[:2]
        return textures.texture_for(frame.serial, (width, height), 3, host_fill(frame.image))

    def _draw(self) -> tuple[int, int]:
        """Draw the last picture asked for on the back buffer; returns the screen size."""
        session = self._require_session()
        assert self._last is not None
        a, b, weight, brightness = self._last
        screen = pygame.display.get_window_size()
        first = self.texture_for(a)
        second = self.texture_for(b) if b is not None else None
        session.picture.draw(
            session.ctx.screen, screen, first, second, weight, brightness, self._frame_number
        )
        return screen

    def present(self, a: Frame, b: Frame | None, weight: float, brightness: float = 1.0) -> None:
        self._last = (a, b, weight, brightness)
        self._frame_number += 1
        self._draw()
        pygame.display.flip()

    def snapshot(self) -> np.ndarray:
        """What was last presented, as H x W x 3 uint8 RGB: drawn again (the same grain) on the
        back buffer, which is read before it is shown, as presenting leaves it undefined."""
        from installation.display.gl_picture import read_framebuffer

        if self._last is None:
            raise RuntimeError("nothing has been presented yet")
        screen = self._draw()
        return read_framebuffer(self._require_session().ctx.screen, screen)

    def poll(self) -> list[Action]:
        session = self._require_session()
        toggle = None if self._mode.fixed_size else lambda: self._toggle_fullscreen(session)
        return actions_from(pygame.event.get(), session.driver, toggle)

    def _toggle_fullscreen(self, session: _Session) -> None:
        """Switch between desktop fullscreen and a window; a failure must not end the show."""
        if switch_fullscreen(pygame.display.toggle_fullscreen):
            session.fullscreen = not session.fullscreen

    def close(self) -> None:
        if self._session is None:
            return
        session, self._session = self._session, None
        if self.gpu_offer is not None:
            self.gpu_offer.close()
            self.gpu_offer = None
        session.textures.clear()
        session.picture.release()
        session.ctx.release()
        self._last = None
        pygame.display.quit()
