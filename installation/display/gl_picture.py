"""What the GL presenter draws, on any moderngl context into any framebuffer.

Kept apart from the window (installation.display.gl) so that tests and benchmarks can draw
on a context of their own (EGL without a screen) and read the pixels back. The passes and
their formulas are described in installation.display.shaders.

Frames reach the GPU through :meth:`FrameTextures.texture_for`, which takes a ``fill``: a
callable that writes the frame into the texture it is given. Frames from the host are
written by :func:`host_fill`; a producer that already holds the frame on the GPU (CUDA-GL
interop) passes its own fill, which writes into the texture (``texture.glo`` is the GL name
to register) with no copy through the host. A frame texture is read in the MIX pass with
``texelFetch`` as sRGB in its red, green and blue channels, rows top first, so it may have
3 or 4 components.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import moderngl
import numpy as np

from installation.display import shaders
from installation.display.kernels import weight_table
from installation.display.layout import fit_rect, portrait_rect
from installation.display.noise import blue_noise
from installation.display.textures import RecycledTextures

if TYPE_CHECKING:
    from installation.score.show import DisplaySettings

#: Writes one frame into the texture it is given (sized and shaped as asked for).
TextureFill = Callable[[moderngl.Texture], None]
#: The intermediate images hold linear light, which 8 bits cannot: floats.
_LINEAR = "f4"
#: Weight tables kept at once: across and down for a few frame sizes and window sizes.
_TABLES = 8


def host_fill(image: np.ndarray) -> TextureFill:
    """The fill for an H x W x 3 uint8 RGB frame in host memory."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"frame image must be H x W x 3 uint8, got {image.shape} {image.dtype}")
    return lambda texture: texture.write(np.ascontiguousarray(image))


class FrameTextures(RecycledTextures[moderngl.Texture]):
    """The frame textures of the GL presenter (see ``RecycledTextures``), so a show running
    for weeks stops allocating after its first frames."""

    def __init__(self, ctx: moderngl.Context, capacity: int = 4) -> None:
        super().__init__(capacity)
        self._ctx = ctx

    def texture_for(
        self, serial: int, size: tuple[int, int], components: int, fill: TextureFill
    ) -> moderngl.Texture:
        """The texture holding frame ``serial`` (``size`` is width, height), filled by
        ``fill`` only when it is not held already."""
        texture = self._held(serial)
        if texture is not None:
            return texture
        texture = self._spare()
        if texture is not None and (texture.size, texture.components) != (size, components):
            texture.release()
            texture = None
        if texture is None:
            texture = self._ctx.texture(size, components)
            texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
        fill(texture)
        return self._keep(serial, texture)

    def clear(self) -> None:
        for texture in self._textures.values():
            texture.release()
        self._textures.clear()


class _Target:
    """A float texture and the framebuffer that draws into it, remade when its size changes."""

    def __init__(self, ctx: moderngl.Context, filtered: bool) -> None:
        self._ctx = ctx
        self._filter = moderngl.LINEAR if filtered else moderngl.NEAREST
        self.texture: moderngl.Texture | None = None
        self.framebuffer: moderngl.Framebuffer | None = None

    def sized(self, size: tuple[int, int]) -> moderngl.Framebuffer:
        if self.texture is None or self.texture.size != size:
            self.release()
            self.texture = self._ctx.texture(size, 4, dtype=_LINEAR)
            self.texture.filter = (self._filter, self._filter)
            self.texture.repeat_x = self.texture.repeat_y = False
            self.framebuffer = self._ctx.framebuffer(color_attachments=[self.texture])
        assert self.framebuffer is not None
        return self.framebuffer

    def release(self) -> None:
        if self.framebuffer is not None and self.texture is not None:
            self.framebuffer.release()
            self.texture.release()
        self.texture = self.framebuffer = None


def _set(program: moderngl.Program, name: str, value: object) -> None:
    """Set a uniform; one the compiler found unused (and removed) is skipped."""
    uniform = program.get(name, None)
    if uniform is not None:
        uniform.value = value


def srgb_to_linear_rgb(colour: tuple[int, int, int]) -> np.ndarray:
    """An 8-bit sRGB colour in linear light (the shaders' curve, on the host)."""
    c = np.asarray(colour, dtype=np.float64) / 255
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _encoded(linear: np.ndarray, brightness: float) -> tuple[float, ...]:
    """``linear`` light times ``brightness``, encoded to sRGB 0..1: a plain background is the
    same for every pixel, so it is encoded once here rather than for each pixel."""
    c = linear * brightness
    return tuple(np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055).tolist())


class GlPicture:
    """The MIX, SCALE and SCREEN passes for one show's ``[display]`` settings.

    ``backdrop`` is the background image (H x W x 3 uint8 RGB) of the portrait layout, or
    None for a plain colour; ``seed`` makes the film grain repeat from run to run.
    """

    def __init__(
        self,
        ctx: moderngl.Context,
        settings: DisplaySettings,
        backdrop: np.ndarray | None = None,
        seed: int = 0,
    ) -> None:
        self._ctx = ctx
        self._settings = settings
        self._seed = seed
        self._mix = ctx.program(vertex_shader=shaders.VERTEX, fragment_shader=shaders.MIX)
        self._scale = ctx.program(vertex_shader=shaders.VERTEX, fragment_shader=shaders.SCALE)
        self._screen = ctx.program(vertex_shader=shaders.VERTEX, fragment_shader=shaders.SCREEN)
        self._passes = [ctx.vertex_array(p, []) for p in (self._mix, self._scale, self._screen)]
        _set(self._mix, "first", 0)
        _set(self._mix, "second", 1)
        _set(self._scale, "source", 0)
        _set(self._scale, "weights", 1)
        for unit, name in enumerate(("picture", "backdrop", "dither", "weights")):
            _set(self._screen, name, unit)
        self._tables: dict[tuple[int, int], moderngl.Texture] = {}
        portrait = settings.layout == "portrait"
        # Only a portrait has a background; the bars of the other layouts are black.
        self._background = srgb_to_linear_rgb(settings.background if portrait else (0, 0, 0))
        self._mixed = _Target(ctx, filtered=True)
        self._wide = _Target(ctx, filtered=False)
        noise = blue_noise()
        self._dither = ctx.texture(noise.shape[::-1], 1, noise.tobytes(), dtype="f4")
        self._dither.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self._backdrop = self._linear_backdrop(backdrop if portrait else None)
        # What never changes while the show plays is set once; draw() sets the rest.
        screen = self._screen
        _set(screen, "sampled", settings.scaler == "linear")
        _set(screen, "has_backdrop", self._backdrop.size != (1, 1))
        _set(screen, "grain", settings.grain)
        _set(screen, "vignette", settings.vignette)

    def _linear_backdrop(self, image: np.ndarray | None) -> moderngl.Texture:
        """The background image in linear light with mipmaps (a photo larger than the screen
        is averaged down, not sampled), or one black texel to bind when there is none."""
        ctx = self._ctx
        if image is None:
            texture = ctx.texture((1, 1), 4, np.zeros(4, _LINEAR).tobytes(), dtype=_LINEAR)
            return texture
        height, width = image.shape[:2]
        source = ctx.texture((width, height), 3)
        host_fill(image)(source)
        linear = _Target(ctx, filtered=True)
        self._run_mix(linear.sized((width, height)), source, None, 0.0)
        source.release()
        texture = linear.texture
        assert texture is not None and linear.framebuffer is not None
        linear.framebuffer.release()
        texture.build_mipmaps()
        texture.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
        return texture

    def _run_mix(
        self,
        target: moderngl.Framebuffer,
        a: moderngl.Texture,
        b: moderngl.Texture | None,
        weight: float,
    ) -> None:
        target.use()
        a.use(0)
        (b or a).use(1)
        _set(self._mix, "weight", weight if b is not None else 0.0)
        self._passes[0].render(moderngl.TRIANGLES, vertices=3)

    def picture_rect(self, source: tuple[int, int], screen: tuple[int, int]) -> tuple[int, ...]:
        """Where a frame of ``source`` size goes on a ``screen`` (x, y from the top left, w, h)."""
        if self._settings.layout == "portrait":
            return portrait_rect(*source, *screen, self._settings.portrait_height)
        return fit_rect(*source, *screen)

    def draw(
        self,
        target: moderngl.Framebuffer,
        screen: tuple[int, int],
        a: moderngl.Texture,
        b: moderngl.Texture | None,
        weight: float,
        brightness: float,
        frame_number: int,
    ) -> None:
        """Draw ``a`` blended towards ``b`` by ``weight`` onto ``screen`` (width, height) of
        ``target``, times ``brightness``; ``frame_number`` moves the film grain on."""
        weight = min(max(weight, 0.0), 1.0)
        brightness = min(max(brightness, 0.0), 1.0)
        blend = b if b is not None and weight > 0.0 else None
        size = a.size
        if blend is not None and blend.size[0] * blend.size[1] > size[0] * size[1]:
            size = blend.size  # a change of stage mid-blend: mix at the larger frame's size
        mixed = self._mixed.sized(size)
        self._run_mix(mixed, a, blend, weight)
        x, y, w, h = self.picture_rect(size, screen)
        screen_pass = self._screen
        sampled = self._settings.scaler == "linear"
        if w <= 0 or h <= 0:
            w = h = 0
        elif sampled:
            assert self._mixed.texture is not None
            self._mixed.texture.use(0)
        else:
            wide = self._wide.sized((w, size[1]))
            wide.use()
            assert self._mixed.texture is not None
            self._mixed.texture.use(0)
            self._table(size[0], w).use(1)
            self._passes[1].render(moderngl.TRIANGLES, vertices=3)
            assert self._wide.texture is not None
            self._wide.texture.use(0)
            self._table(size[1], h).use(3)
        target.use()
        self._ctx.viewport = (0, 0, *screen)
        self._backdrop.use(1)
        self._dither.use(2)
        _set(screen_pass, "rect", (x, y, w, h))
        _set(screen_pass, "screen", screen)
        _set(screen_pass, "background", _encoded(self._background, brightness))
        _set(screen_pass, "backdrop_rect", _cover(self._backdrop.size, screen))
        _set(screen_pass, "brightness", brightness)
        _set(screen_pass, "frame_seed", (self._seed * 0x9E3779B1 + frame_number) % 2**32)
        self._passes[2].render(moderngl.TRIANGLES, vertices=3)

    def _table(self, count: int, size: int) -> moderngl.Texture:
        """The weights that resample ``count`` pixels to ``size``, kept while the sizes are
        in use: a show has a few (one per stage it shows, across and down)."""
        texture = self._tables.get((count, size))
        if texture is None:
            if len(self._tables) >= _TABLES:
                self._tables.pop(next(iter(self._tables))).release()
            table = weight_table(self._settings.scaler, count, size)
            texture = self._ctx.texture(table.shape[1::-1], 4, table.tobytes(), dtype="f4")
            texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
            self._tables[(count, size)] = texture
        return texture

    def release(self) -> None:
        for table in self._tables.values():
            table.release()
        self._tables.clear()
        for vertex_array in self._passes:
            vertex_array.release()
        for program in (self._mix, self._scale, self._screen):
            program.release()
        self._mixed.release()
        self._wide.release()
        self._dither.release()
        self._backdrop.release()


def _cover(image: tuple[int, int], screen: tuple[int, int]) -> tuple[float, float, float, float]:
    """Where an image of size ``image`` covers the whole ``screen`` with its aspect kept
    (cropped at two sides), as x, y from the top left, width, height."""
    scale = max(screen[0] / image[0], screen[1] / image[1])
    width, height = image[0] * scale, image[1] * scale
    return (screen[0] - width) / 2, (screen[1] - height) / 2, width, height


def read_framebuffer(target: moderngl.Framebuffer, screen: tuple[int, int]) -> np.ndarray:
    """What ``target`` holds in its ``screen`` area, as H x W x 3 uint8 RGB, top row first."""
    data = target.read(viewport=(0, 0, *screen), components=3, alignment=1)
    pixels = np.frombuffer(data, dtype=np.uint8).reshape(screen[1], screen[0], 3)
    return pixels[::-1].copy()
