"""The GL presenter's passes on a real OpenGL context (Mesa's EGL without a screen), read back
with glReadPixels and compared with references computed here in NumPy from the formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from srgb import to_linear, to_srgb

moderngl = pytest.importorskip("moderngl")

from installation.display.gl_picture import (  # noqa: E402
    FrameTextures,
    GlPicture,
    host_fill,
    read_framebuffer,
)
from installation.display.layout import portrait_rect  # noqa: E402
from installation.display.noise import blue_noise  # noqa: E402
from installation.score.show import DisplaySettings  # noqa: E402


def draw(
    ctx: moderngl.Context,
    settings: DisplaySettings,
    a: np.ndarray,
    screen: tuple[int, int],
    b: np.ndarray | None = None,
    weight: float = 0.0,
    brightness: float = 1.0,
    frame_number: int = 1,
    backdrop: np.ndarray | None = None,
) -> np.ndarray:
    """Present ``a`` (blended towards ``b``) on a ``screen`` of an RGBA8 framebuffer and read
    it back, as the window would show it."""
    picture = GlPicture(ctx, settings, backdrop)
    textures = FrameTextures(ctx)
    target = ctx.simple_framebuffer(screen)
    try:
        first = textures.texture_for(0, a.shape[1::-1], 3, host_fill(a))
        second = None if b is None else textures.texture_for(1, b.shape[1::-1], 3, host_fill(b))
        picture.draw(target, screen, first, second, weight, brightness, frame_number)
        return read_framebuffer(target, screen).astype(np.int32)
    finally:
        target.release()
        textures.clear()
        picture.release()


def lanczos3(x: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) < 3, np.sinc(x) * np.sinc(x / 3), 0.0)


def tent(x: np.ndarray) -> np.ndarray:
    return np.maximum(0.0, 1.0 - np.abs(x))


def resample(
    image: np.ndarray, size: int, axis: int, kernel, radius: float, antiring: bool
) -> np.ndarray:
    """One axis of a separable resampling of ``image`` (float, H x W x C) to ``size``
    pixels, pixel centres aligned, edges repeated; clamped to the two nearest source pixels
    when ``antiring`` (upscaling)."""
    image = np.moveaxis(image, axis, 0)
    count = image.shape[0]
    scale = size / count
    out = np.empty((size, *image.shape[1:]))
    for o in range(size):
        centre = (o + 0.5) / scale - 0.5
        taps = np.arange(math.floor(centre - radius) + 1, math.floor(centre + radius) + 1)
        weights = kernel(taps - centre)
        rows = image[np.clip(taps, 0, count - 1)]
        out[o] = np.tensordot(weights / weights.sum(), rows, axes=1)
        if antiring:
            near = image[np.clip([math.floor(centre), math.floor(centre) + 1], 0, count - 1)]
            out[o] = np.clip(out[o], near.min(axis=0), near.max(axis=0))
    return np.moveaxis(out, 0, axis)


def reference(image: np.ndarray, screen: tuple[int, int], kernel, radius, antiring) -> np.ndarray:
    """``image`` (sRGB uint8) scaled in linear light to fill ``screen`` (same aspect)."""
    linear = to_linear(image)
    wide = resample(linear, screen[0], 1, kernel, radius, antiring)
    return to_srgb(resample(wide, screen[1], 0, kernel, radius, antiring))


def test_linear_scaler_matches_bilinear_in_linear_light(ctx: moderngl.Context) -> None:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    shown = draw(ctx, DisplaySettings(scaler="linear"), image, (40, 40))
    expected = reference(image, (40, 40), tent, 1.0, antiring=False)
    assert np.abs(shown - expected).max() <= 2.0


def step_edge() -> np.ndarray:
    image = np.full((12, 12, 3), 40, dtype=np.uint8)
    image[:, 6:] = 220
    return image


def test_lanczos_is_sharp_and_its_ringing_is_clamped(ctx: moderngl.Context) -> None:
    image = step_edge()
    shown = draw(ctx, DisplaySettings(scaler="lanczos"), image, (60, 60))
    expected = reference(image, (60, 60), lanczos3, 3.0, antiring=True)
    assert np.abs(shown - expected).max() <= 2.0
    # Without the clamp, Lanczos rings around the edge: the clamp is what keeps it in range.
    ringing = reference(image, (60, 60), lanczos3, 3.0, antiring=False)
    assert ringing.min() < 40 - 5 and ringing.max() > 220 + 5
    assert shown.min() >= 40 - 1 and shown.max() <= 220 + 1


def test_lanczos_keeps_fine_detail_that_the_linear_scaler_blurs(ctx: moderngl.Context) -> None:
    # Stripes 4.7 pixels apart, scaled up 5 times: compared with the stripes themselves.
    def stripes(x: np.ndarray) -> np.ndarray:
        return 0.4 + 0.3 * np.sin(2 * np.pi * x / 4.7)

    row = to_srgb(stripes(np.arange(24) + 0.5))
    image = np.repeat(np.round(row).astype(np.uint8)[None, :, None], 8, axis=0).repeat(3, axis=2)
    truth = stripes((np.arange(120) + 0.5) / 5)
    errors = {}
    for scaler in ("lanczos", "linear"):
        shown = draw(ctx, DisplaySettings(scaler=scaler), image, (120, 40))
        errors[scaler] = np.abs(to_linear(shown[20, 20:100, 0]) - truth[20:100]).mean()
    assert errors["lanczos"] < 0.5 * errors["linear"]


def test_bicubic_is_catmull_rom(ctx: moderngl.Context) -> None:
    def catmull_rom(x: np.ndarray) -> np.ndarray:
        x = np.abs(x)
        near = (1.5 * x - 2.5) * x * x + 1
        far = ((-0.5 * x + 2.5) * x - 4) * x + 2
        return np.where(x < 1, near, np.where(x < 2, far, 0.0))

    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)
    shown = draw(ctx, DisplaySettings(scaler="bicubic"), image, (30, 30))
    expected = reference(image, (30, 30), catmull_rom, 2.0, antiring=True)
    assert np.abs(shown - expected).max() <= 2.0


def test_crossfade_of_black_and_white_is_blended_in_linear_light(ctx: moderngl.Context) -> None:
    black = np.zeros((16, 16, 3), dtype=np.uint8)
    white = np.full((16, 16, 3), 255, dtype=np.uint8)
    shown = draw(ctx, DisplaySettings(), black, (32, 32), white, weight=0.5)
    # Half the light of white is sRGB 187.5, not the 128 of a blend of the encoded values.
    assert set(np.unique(shown)) <= {187, 188}


def test_brightness_zero_is_black_with_every_effect_on(ctx: moderngl.Context) -> None:
    image = np.full((16, 16, 3), 200, dtype=np.uint8)
    settings = DisplaySettings(grain=1.0, vignette=1.0, layout="portrait", background=(90, 0, 0))
    assert draw(ctx, settings, image, (48, 32), brightness=0.0).max() == 0


def test_dithering_breaks_the_bands_of_a_slow_gradient(ctx: moderngl.Context) -> None:
    # A ramp shown 1:1 near black, where a fade spends its last seconds in a few 8-bit levels.
    ramp = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 64, axis=0).repeat(3, axis=2)
    brightness = 0.05
    shown = draw(ctx, DisplaySettings(), ramp, (256, 64), brightness=brightness)[..., 0]
    exact = to_srgb(to_linear(np.arange(256)) * brightness)
    rounded = np.round(exact)
    # Plain rounding leaves flat bands, several columns wide; the dithered output varies
    # inside each column, and averaged down a column it follows the exact ramp.
    assert np.diff(rounded).tolist().count(0) > 100
    assert (shown.max(axis=0) > shown.min(axis=0))[np.abs(exact - rounded) > 0.1].all()
    assert np.abs(shown.mean(axis=0) - exact).mean() < 0.5 * np.abs(rounded - exact).mean()


def test_portrait_layout_shows_the_face_at_its_share_on_the_background(
    ctx: moderngl.Context,
) -> None:
    face = np.full((16, 16, 3), 230, dtype=np.uint8)
    settings = DisplaySettings(layout="portrait", portrait_height=0.5, background=(32, 64, 96))
    shown = draw(ctx, settings, face, (80, 40))
    x, y, w, h = portrait_rect(16, 16, 80, 40, 0.5)
    assert (x, y, w, h) == (30, 10, 20, 20)
    inside = np.zeros(shown.shape[:2], dtype=bool)
    inside[y : y + h, x : x + w] = True
    assert np.abs(shown[inside] - 230).max() <= 1
    assert np.abs(shown[~inside] - (32, 64, 96)).max() <= 1


def test_portrait_background_image_covers_the_screen(ctx: moderngl.Context) -> None:
    face = np.full((16, 16, 3), 230, dtype=np.uint8)
    backdrop = np.zeros((8, 16, 3), dtype=np.uint8)
    backdrop[:, :8] = (200, 0, 0)
    backdrop[:, 8:] = (0, 0, 200)
    settings = DisplaySettings(layout="portrait", portrait_height=0.5)
    shown = draw(ctx, settings, face, (80, 40), backdrop=backdrop)
    assert np.abs(shown[20, 5] - (200, 0, 0)).max() <= 1
    assert np.abs(shown[20, 75] - (0, 0, 200)).max() <= 1
    assert np.abs(shown[20, 40] - 230).max() <= 1


def test_grain_moves_every_frame_and_repeats_with_its_seed(ctx: moderngl.Context) -> None:
    grey = np.full((16, 16, 3), 128, dtype=np.uint8)
    settings = DisplaySettings(grain=1.0)
    first = draw(ctx, settings, grey, (32, 32), frame_number=1)
    again = draw(ctx, settings, grey, (32, 32), frame_number=1)
    later = draw(ctx, settings, grey, (32, 32), frame_number=2)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, later)
    assert first.std() > 5 and abs(first.mean() - 128) < 8


def test_blue_noise_ranks_every_pixel_once_with_little_low_frequency() -> None:
    noise = blue_noise(32, seed=1)
    assert np.array_equal(np.sort(noise.ravel()), (np.arange(32 * 32) + 0.5) / 32**2)
    power = np.abs(np.fft.fft2(noise - noise.mean())) ** 2
    frequency = np.hypot(*np.meshgrid(np.fft.fftfreq(32), np.fft.fftfreq(32)))
    low, high = power[(frequency > 0) & (frequency < 0.15)], power[frequency > 0.35]
    assert low.mean() < 0.05 * high.mean()
    assert np.array_equal(noise, blue_noise(32, seed=1))
