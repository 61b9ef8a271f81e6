"""The SDL2 implementation shared by all display modes: window, GPU renderer, crossfade.

Blending and scaling happen on the GPU (texture alpha and colour modulation, linear
filtering), so the CPU only uploads each generated frame once, whatever the screen size.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

import pygame
from pygame._sdl2 import video
from pygame._sdl2.sdl2 import error as SdlError

from installation.display.base import Action, Display, DisplayLost
from installation.display.connection import lost_connection, watch_x_connection
from installation.display.layout import fit_rect, to_byte
from installation.display.libraries import require_video_libraries
from installation.display.textures import TextureCache, tint
from installation.engine.frames import Frame
from installation.errors import UserError

logger = logging.getLogger("installation.display")

_ACCELERATED = 0x02
_BLACK = (0, 0, 0, 255)
_QUIT_KEYS = (pygame.K_ESCAPE, pygame.K_q)
# Video drivers that SDL falls back to when it finds no screen: a show there is invisible.
_INVISIBLE_DRIVERS = ("offscreen", "dummy")
# This pygame's SDL has no console (kmsdrm) driver: a screen needs a compositor or desktop.
_WHERE_TO_RUN = (
    "in a gallery run the show under the cage compositor as deploy/setup.sh installs it "
    "(docs/kiosk.md), on a workstation inside the desktop session with --windowed, or "
    "without a screen with --headless"
)
#: Seconds to keep asking an X server that refused us: one resets when its last client leaves
#: (the GL presenter's window, closed a moment ago to make way for SDL's renderer, on an X
#: server with no other client) and refuses new clients until the reset is done.
X_RESET_PATIENCE = 3.0


def desktop_size(display_index: int) -> tuple[int, int]:
    """The size of one screen, as the desktop uses it."""
    sizes = pygame.display.get_desktop_sizes()
    return sizes[display_index] if display_index < len(sizes) else sizes[0]


def start_video() -> str:
    """Start SDL's video subsystem and return the name of its video driver.

    A driver asked for by name is checked before SDL starts it, the one SDL picked before its
    first window: that is where a missing library crashes the process.
    """
    requested = [name for name in os.environ.get("SDL_VIDEODRIVER", "").split(",") if name]
    for name in requested:
        require_video_libraries(name)
    deadline = time.monotonic() + X_RESET_PATIENCE
    while True:
        try:
            pygame.display.init()
            break
        except pygame.error as exc:
            if not os.environ.get("DISPLAY") or time.monotonic() >= deadline:
                raise UserError(f"cannot start SDL video ({exc}): {_WHERE_TO_RUN}") from exc
            time.sleep(0.05)
    driver = pygame.display.get_driver()
    try:
        if driver not in requested:
            require_video_libraries(driver)
    except UserError:
        pygame.display.quit()
        raise
    if driver == "x11":
        watch_x_connection()
    return driver


def warn_if_invisible(driver: str) -> None:
    """Say so when SDL fell back to a video driver that shows nothing: a show there plays
    to nobody, which looks like success in every other way."""
    if driver in _INVISIBLE_DRIVERS:
        logger.warning(
            "SDL found no screen and uses its %s video driver: nothing is visible; %s",
            driver,
            _WHERE_TO_RUN,
        )


def actions_from(
    events: list[pygame.event.Event], driver: str, toggle: Callable[[], None] | None
) -> list[Action]:
    """What the window and keyboard ``events`` ask for; ``toggle`` switches fullscreen (None:
    the window's size is fixed). A quit is first checked against the display server."""
    actions = []
    for event in events:
        if event.type == pygame.QUIT:
            lost = lost_connection(driver)
            if lost is not None:
                raise DisplayLost(lost)
        if event.type in (pygame.QUIT, pygame.WINDOWCLOSE) or (
            event.type == pygame.KEYDOWN and event.key in _QUIT_KEYS
        ):
            actions.append(Action.QUIT)
        elif event.type == pygame.KEYDOWN and event.key == pygame.K_f and toggle is not None:
            toggle()
            actions.append(Action.TOGGLE_FULLSCREEN)
    return actions


def switch_fullscreen(switch: Callable[[], None]) -> bool:
    """Run ``switch``, which moves the window between desktop fullscreen and a window; False
    where SDL refuses, said in the log rather than raised: a failure must not end the show."""
    try:
        switch()
    except (SdlError, pygame.error) as exc:
        logger.warning("could not toggle fullscreen: %s", exc)
        return False
    return True


def open_renderer(window: video.Window, vsync: bool = True) -> tuple[video.Renderer, str]:
    """Create a renderer (vsynced unless told), trying accelerated drivers first and software
    last.

    Picking the driver ourselves, rather than letting SDL choose, tells us its name, so a
    silent fallback to the CPU is logged instead of showing up as stutter weeks later.
    """
    drivers = list(enumerate(video.get_drivers()))
    drivers.sort(key=lambda item: (item[1].name == "software", not item[1].flags & _ACCELERATED))
    failures = []
    for index, info in drivers:
        try:
            return video.Renderer(window, index=index, vsync=vsync), info.name
        except (SdlError, pygame.error) as exc:
            logger.debug("renderer %s unavailable: %s", info.name, exc)
            failures.append(f"{info.name}: {exc}")
    raise UserError("no SDL renderer works on this machine (" + "; ".join(failures) + ")")


def warn_if_software(renderer_name: str) -> None:
    """Say so when SDL draws on the CPU where a GPU was expected: it shows up weeks later as
    stutter and a hot PC, not as an error."""
    if renderer_name == "software":
        logger.warning(
            "SDL fell back to the software renderer: expect high CPU use and dropped "
            "frames; check the GPU driver"
        )


@dataclass
class _Session:
    """Everything that exists only while the display is open, released together by close()."""

    driver: str
    window: video.Window
    renderer: video.Renderer
    renderer_name: str
    textures: TextureCache
    fullscreen: bool


class SdlDisplay(Display):
    """A display drawn with pygame's SDL2 renderer; modes set the class attributes below."""

    #: Window size used when the mode (or a toggle to windowed) needs one.
    default_size: tuple[int, int] = (1280, 720)
    #: Whether the window starts covering the whole desktop.
    starts_fullscreen: bool = False
    #: A fixed-size window ignores resizing and the fullscreen key, so readbacks are stable.
    fixed_size: bool = False
    #: Whether the software renderer is normal here rather than a sign of a broken GPU setup.
    software_expected: bool = False

    def __init__(self, size: tuple[int, int] | None = None) -> None:
        self._size = size or self.default_size
        self._session: _Session | None = None

    @property
    def description(self) -> str:
        if self._session is None:
            return "not open"
        return f"video driver {self._session.driver}, renderer {self._session.renderer_name}"

    @property
    def texture_count(self) -> int:
        """How many frame textures are held on the GPU now; it must stay bounded for weeks."""
        return 0 if self._session is None else len(self._session.textures)

    def _prepare_video_driver(self) -> None:
        """Hook for modes that must choose the SDL video driver before SDL starts."""

    def open(self, title: str) -> None:
        if self._session is not None:
            raise RuntimeError("display is already open")
        self._prepare_video_driver()
        # SDL reads the hint when textures are created; a user's own setting wins.
        os.environ.setdefault("SDL_RENDER_SCALE_QUALITY", "linear")
        with ExitStack() as undo:
            driver = start_video()
            undo.callback(pygame.display.quit)
            window = self._open_window(title, driver)
            undo.callback(window.destroy)
            renderer, renderer_name = open_renderer(window)
            undo.pop_all()
        renderer.draw_color = _BLACK
        self._session = _Session(
            driver, window, renderer, renderer_name, TextureCache(renderer), self.starts_fullscreen
        )
        # SDL_ShowCursor is global, so this hides the cursor over _sdl2 windows too.
        pygame.mouse.set_visible(False)
        logger.info("display %s", self.description)
        if self.software_expected:
            return
        warn_if_invisible(driver)
        warn_if_software(renderer_name)

    def _open_window(self, title: str, driver: str) -> video.Window:
        """The window, fullscreen ones made as large as the screen they cover.

        An X server without a window manager ignores the request to go fullscreen, so a
        window made at its windowed size would stay that size in the middle of the screen.
        """
        size = desktop_size(0) if self.starts_fullscreen else self._size
        try:
            return video.Window(
                title,
                size=size,
                position=video.WINDOWPOS_CENTERED,
                fullscreen_desktop=self.starts_fullscreen,
                resizable=not self.fixed_size,
            )
        except (SdlError, pygame.error) as exc:
            raise UserError(
                f"cannot open a window with SDL's {driver} video driver ({exc}): check the "
                "GL/EGL driver (Mesa: libegl-mesa0 libgl1-mesa-dri) and, under systemd, the "
                "unit's sandbox (docs/kiosk.md)"
            ) from exc

    def _require_session(self) -> _Session:
        if self._session is None:
            raise RuntimeError("display is not open")
        return self._session

    def present(self, a: Frame, b: Frame | None, weight: float, brightness: float = 1.0) -> None:
        session = self._require_session()
        level = to_byte(brightness)
        alpha = to_byte(weight)
        session.renderer.clear()
        self._draw(session, a, pygame.BLENDMODE_NONE, 255, level)
        if b is not None and alpha > 0:
            self._draw(session, b, pygame.BLENDMODE_BLEND, alpha, level)
        session.renderer.present()

    @staticmethod
    def _draw(session: _Session, frame: Frame, blend_mode: int, alpha: int, level: int) -> None:
        """Draw one frame letterboxed into the current output.

        The output size is read on every call, so a resized window is right on the next frame.
        """
        texture = session.textures.texture_for(frame)
        tint(texture, blend_mode, alpha, level)
        output = session.renderer.get_viewport()
        texture.draw(dstrect=fit_rect(texture.width, texture.height, output.w, output.h))

    def poll(self) -> list[Action]:
        session = self._require_session()
        toggle = None if self.fixed_size else lambda: self._toggle_fullscreen(session)
        return actions_from(pygame.event.get(), session.driver, toggle)

    def _toggle_fullscreen(self, session: _Session) -> None:
        """Switch between desktop fullscreen and a window; a failure must not end the show."""
        if switch_fullscreen(lambda: self._switch_window(session.window, session.fullscreen)):
            session.fullscreen = not session.fullscreen

    def _switch_window(self, window: video.Window, fullscreen: bool) -> None:
        """To a window when ``fullscreen``, else to desktop fullscreen. The size is set as
        well, for an X server without a window manager (see _open_window)."""
        if fullscreen:
            window.set_windowed()
            window.size = self._size
            window.position = video.WINDOWPOS_CENTERED
        else:
            # Placed first: SDL does not move a window that is already fullscreen.
            window.size = desktop_size(window.display_index)
            window.position = video.WINDOWPOS_CENTERED
            window.set_fullscreen(desktop=True)

    def close(self) -> None:
        if self._session is None:
            return
        window = self._session.window
        self._session.textures.clear()
        # Dropping the session frees the renderer, which SDL2 needs gone before its window.
        self._session = None
        window.destroy()
        pygame.display.quit()
