"""Several screens or projectors from one PC (the show's ``[[outputs]]``), with SDL's renderer.

On X, one window per output, each with its own renderer and textures, all drawn by the
same ``present`` call of the show loop, so every output shows the same tick. Under Wayland
(the kiosk's cage compositor) a program cannot place its windows and cage shows one window,
stretched over every screen: there one window covers all the screens, and each output is
drawn into its screen's part of it, with one renderer and one present. An output shows the
whole picture (clone), its slice of one wide canvas with the overlap blended (span), or one
cell of the one-row mosaic of face streams the show paints as a single batch (stream).

Only the first window's renderer waits for its screen's refresh: were every window vsynced,
presenting N windows one after another could wait N refreshes and play at 1/N of the rate.
The others are presented right after it, at the top of the same refresh.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import pygame
from pygame._sdl2 import video
from pygame._sdl2.sdl2 import error as SdlError

from installation.display.base import Action, Display
from installation.display.layout import fit_rect, to_byte
from installation.display.output_geometry import Rect, blend_ramp, span_rects, stream_cell
from installation.display.screens import Screen, find_screen, hidden_behind, list_screens
from installation.display.sdl import (
    actions_from,
    open_renderer,
    start_video,
    warn_if_invisible,
    warn_if_software,
)
from installation.display.textures import TextureCache, frame_surface, tint
from installation.engine.frames import Frame
from installation.errors import UserError

if TYPE_CHECKING:
    from installation.score.outputs_settings import OutputSettings

logger = logging.getLogger("installation.display")

_BLACK = (0, 0, 0, 255)
#: Windowed rehearsal: outputs without a window rectangle are cascaded by this much.
_CASCADE = 48


@dataclass
class _Output:
    """One open output: the renderer it draws with and the part of that renderer's window it
    fills (``area``: all of its own window, or its screen's part of the one window), its frame
    textures (shared with the outputs of the same renderer that upload the same picture) and
    edge-blend ramps."""

    settings: OutputSettings
    renderer: video.Renderer
    area: Rect
    textures: TextureCache
    #: Multiplying ramps (texture, where in the area) over the overlaps of a span output.
    ramps: list[tuple[video.Texture, Rect]] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        return self.area[2], self.area[3]


class OutputsDisplay(Display):
    """A window on each output's screen, or one over them all; ``columns`` is the number of
    face streams (the one-row grid the show paints), ``windowed`` makes rehearsal windows of
    ``size`` where an output has no window rectangle instead of going fullscreen."""

    def __init__(
        self,
        outputs: Sequence[OutputSettings],
        columns: int,
        windowed: bool = False,
        size: tuple[int, int] | None = None,
    ) -> None:
        if not outputs:
            raise ValueError("an outputs display needs at least one output")
        self._settings = tuple(outputs)
        self._columns = columns
        self._windowed = windowed
        self._size = size or (640, 360)
        self._driver = ""
        self._windows: list[video.Window] = []
        #: The windows' renderers and their SDL driver names, in the windows' order.
        self._renderers: list[tuple[video.Renderer, str]] = []
        self._outputs: list[_Output] = []
        self._spans: list[_Output] = []

    @property
    def description(self) -> str:
        if not self._outputs:
            return "not open"
        windows = "one window" if len(self._windows) == 1 else f"{len(self._windows)} windows"
        renderers = ", ".join(sorted({name for _, name in self._renderers}))
        return (
            f"{len(self._outputs)} outputs, video driver {self._driver}, {windows}, "
            f"renderer {renderers}"
        )

    def open(self, title: str) -> None:
        if self._outputs:
            raise RuntimeError("display is already open")
        # SDL reads the hint when textures are created; a user's own setting wins.
        os.environ.setdefault("SDL_RENDER_SCALE_QUALITY", "linear")
        with ExitStack() as undo:
            self._driver = start_video()
            undo.callback(pygame.display.quit)
            screens = list_screens()
            logger.info("screens: %s", "; ".join(str(screen) for screen in screens))
            places = []
            for index, settings in enumerate(self._settings):
                screen = find_screen(screens, settings.display, settings.origin)
                _warn_if_hidden(screens, screen, settings)
                places.append(self._place(settings, screen, index))
                logger.info("output %r on screen %s: %s", settings.name, screen, _what(settings))
            if self._driver == "wayland":
                targets = self._open_cover(title, screens, places, undo)
            else:
                targets = self._open_each(title, places, undo)
            # Outputs of one window that show the same picture upload it once.
            caches: dict[tuple[int, int], TextureCache] = {}
            for settings, (renderer, area) in zip(self._settings, targets, strict=True):
                key = id(renderer), settings.stream if settings.show == "stream" else -1
                if key not in caches:
                    caches[key] = TextureCache(renderer)
                self._outputs.append(_Output(settings, renderer, area, caches[key]))
            undo.callback(self._outputs.clear)
            self._spans = [output for output in self._outputs if output.settings.show == "span"]
            undo.callback(self._spans.clear)
            self._add_ramps()
            undo.pop_all()
        pygame.mouse.set_visible(False)
        logger.info("display %s", self.description)
        warn_if_invisible(self._driver)
        for _, name in self._renderers:
            warn_if_software(name)

    def _place(self, settings: OutputSettings, screen: Screen, index: int) -> Rect:
        """Where the output goes on the desktop: its rectangle on its screen, else the whole
        screen, else (rehearsing in windows) a cascaded window."""
        if settings.window is not None:
            x, y, width, height = settings.window
        elif not self._windowed:
            x, y, width, height = 0, 0, screen.width, screen.height
        else:
            x, y = _CASCADE * index, _CASCADE * index
            width, height = self._size
        return screen.x + x, screen.y + y, width, height

    def _open_each(
        self, title: str, places: list[Rect], undo: ExitStack
    ) -> list[tuple[video.Renderer, Rect]]:
        """A window at each output's place, filled by the output; fullscreen where it covers
        a screen (made as large as the screen too, for an X server without a window manager,
        which ignores the request to go fullscreen)."""
        targets = []
        for index, (settings, place) in enumerate(zip(self._settings, places, strict=True)):
            fullscreen = settings.window is None and not self._windowed
            window = self._open_window(f"{title}: {settings.name}", settings, place, fullscreen)
            renderer = self._open_renderer(window, index == 0, undo)
            viewport = renderer.get_viewport()
            targets.append((renderer, (0, 0, viewport.w, viewport.h)))
        return targets

    def _open_cover(
        self, title: str, screens: list[Screen], places: list[Rect], undo: ExitStack
    ) -> list[tuple[video.Renderer, Rect]]:
        """One window over every screen (cage stretches its one window over them all, with
        -m extend, its default), each output drawn into its place in it. The renderer draws
        in desktop pixels (its logical size) whatever size the compositor makes the window:
        cage makes it the size of every screen together only after it is shown."""
        left = min(screen.x for screen in screens)
        top = min(screen.y for screen in screens)
        width = max(screen.x + screen.width for screen in screens) - left
        height = max(screen.y + screen.height for screen in screens) - top
        cover = (left, top, width, height)
        window = self._open_window(title, self._settings[0], cover, not self._windowed)
        renderer = self._open_renderer(window, True, undo)
        renderer.logical_size = (width, height)
        return [(renderer, (x - left, y - top, w, h)) for x, y, w, h in places]

    def _open_window(
        self, title: str, settings: OutputSettings, place: Rect, fullscreen: bool
    ) -> video.Window:
        """A window at ``place`` on the desktop; ``settings`` name the output in an error."""
        x, y, width, height = place
        try:
            return video.Window(
                title,
                size=(width, height),
                position=(x, y),
                fullscreen_desktop=fullscreen,
                borderless=not self._windowed,
            )
        except (SdlError, pygame.error) as exc:
            raise UserError(
                f"{settings.origin}: cannot open a window with SDL's {self._driver} video "
                f"driver ({exc})"
            ) from exc

    def _open_renderer(self, window: video.Window, vsync: bool, undo: ExitStack) -> video.Renderer:
        """The window's renderer, kept with the window; should opening the display fail
        later, both are let go, the renderer first, as SDL2 needs."""
        self._windows.append(window)
        undo.callback(window.destroy)
        undo.callback(self._windows.pop)
        renderer, name = open_renderer(window, vsync=vsync)
        renderer.draw_color = _BLACK
        self._renderers.append((renderer, name))
        undo.callback(self._renderers.pop)
        return renderer

    def _add_ramps(self) -> None:
        """Each span output's overlap with its neighbours, darkened by a ramp so that the
        two projectors' light adds up to the picture's."""
        for left, right in zip(self._spans, self._spans[1:], strict=False):
            overlap = left.settings.overlap
            if overlap == 0:
                continue
            if overlap >= min(left.size[0], right.size[0]):
                raise UserError(
                    f"{left.settings.origin}: overlap {overlap} is not less than the width of "
                    f"the outputs it joins ({left.size[0]} and {right.size[0]} px)"
                )
            gamma = left.settings.blend
            edge = (left.size[0] - overlap, 0, overlap, left.size[1])
            left.ramps.append(_ramp(left.renderer, blend_ramp(overlap, gamma, False), edge))
            edge = (0, 0, overlap, right.size[1])
            right.ramps.append(_ramp(right.renderer, blend_ramp(overlap, gamma, True), edge))

    def present(self, a: Frame, b: Frame | None, weight: float, brightness: float = 1.0) -> None:
        if not self._outputs:
            raise RuntimeError("display is not open")
        level = to_byte(brightness)
        alpha = to_byte(weight)
        for renderer, _ in self._renderers:
            renderer.clear()  # the whole window, whatever the viewport
        for output in self._outputs:
            output.renderer.set_viewport(output.area)
            self._draw(output, a, pygame.BLENDMODE_NONE, 255, level)
            if b is not None and alpha > 0:
                self._draw(output, b, pygame.BLENDMODE_BLEND, alpha, level)
            for ramp, rect in output.ramps:
                ramp.draw(dstrect=rect)
        for renderer, _ in self._renderers:
            renderer.present()

    def _draw(self, output: _Output, frame: Frame, blend_mode: int, alpha: int, level: int) -> None:
        settings = output.settings
        if settings.show == "stream":
            frame = self._cell(frame, settings.stream)
        texture = output.textures.texture_for(frame)
        tint(texture, blend_mode, alpha, level)
        source = (texture.width, texture.height)
        if settings.show == "span":
            sizes = [span.size for span in self._spans]
            overlaps = [span.settings.overlap for span in self._spans]
            rects = span_rects(sizes, overlaps, source)
            texture.draw(dstrect=rects[self._spans.index(output)])
        else:
            texture.draw(dstrect=fit_rect(*source, *output.size))

    def _cell(self, frame: Frame, stream: int) -> Frame:
        """Face stream ``stream`` of a one-row mosaic as a frame of its own (a view, copied
        only when uploaded). Uploading just the cell, rather than drawing part of the whole
        mosaic's texture, keeps linear filtering from smearing the gutter into the face's
        edge."""
        assert frame.image is not None, "SDL's renderer draws frames from the host"
        height, width = frame.image.shape[:2]
        x, y, w, h = stream_cell((width, height), self._columns, stream)
        return replace(frame, image=frame.image[y : y + h, x : x + w])

    def poll(self) -> list[Action]:
        return actions_from(pygame.event.get(), self._driver, None)

    def close(self) -> None:
        if not self._outputs:
            return
        for output in self._outputs:
            output.textures.clear()
            output.ramps.clear()
        # Dropping the outputs frees the renderers, which SDL2 needs gone before the windows.
        self._outputs.clear()
        self._spans.clear()
        self._renderers.clear()
        for window in self._windows:
            window.destroy()
        self._windows.clear()
        pygame.display.quit()


def _ramp(renderer: video.Renderer, levels: np.ndarray, rect: Rect) -> tuple[video.Texture, Rect]:
    """The ``levels`` (one row) as a texture stretched only vertically over ``rect``, which
    multiplies what is under it (SDL's modulate blend)."""
    texture = video.Texture.from_surface(renderer, frame_surface(levels))
    texture.blend_mode = pygame.BLENDMODE_MOD
    return texture, rect


def _warn_if_hidden(screens: list[Screen], screen: Screen, settings: OutputSettings) -> None:
    other = hidden_behind(screens, screen)
    if other is not None:
        logger.warning(
            "output %r: screen %d shares its desktop area with screen %d (separate X screens?), "
            "so SDL opens its window on screen %d; make the screens one X screen side by side "
            "(xrandr, or the desktop's display settings)",
            settings.name,
            screen.index,
            other.index,
            other.index,
        )


def _what(settings: OutputSettings) -> str:
    """What an output shows, for the log."""
    if settings.show == "stream":
        return f"face stream {settings.stream}"
    if settings.show == "span":
        return f"span, overlap {settings.overlap} px, blend gamma {settings.blend:g}"
    return "clone"
