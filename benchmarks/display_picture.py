"""The picture on a 1920x1080 screen: the GL presenter's scalers against SDL's renderer.

Run under an X server of that size (on a machine without a GPU, Xvfb and Mesa's llvmpipe):

    xvfb-run -s "-screen 0 1920x1080x24" .venv/bin/python benchmarks/display_picture.py

In one run, for SDL's renderer (the fallback, and the only path before the GL presenter)
and for the GL presenter with each scaler, on two faces from the default bundle:

- rate: frames presented per second, crossfading, as fast as the display allows (Xvfb has
  no vsync), and the longest present;
- sharpness: PSNR of the presented picture, read back, against a float Lanczos-3 upscale
  of the same face computed here in NumPy (linear light, no clamp): how close each path
  comes to the ideal resampling;
- banding (SDL, and the GL presenter's default scaler): a 10 s fade to black at 60 frames/s
  of a frame that is a smooth dark-to-light ramp: at 9 s (brightness 0.1), the distinct
  levels down a screen column and its widest flat band in pixels (black aside); over the
  whole fade, the most frames a flat grey patch's mean level stays the same (a step the eye
  sees). The GL presenter fades in linear light, so at the same brightness its picture is
  lighter and spans more levels;
- dip: how much darker the middle of a crossfade is than the mean of its two ends, in
  linear light (for the two faces, and for black to white).

The rates depend on the machine; the other figures do not. ``--json`` for machines.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from installation.display import GlDisplay, HeadlessDisplay
from installation.display.layout import fit_rect
from installation.display.modes import FullscreenDisplay
from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.frames import Frame
from installation.engine.pipeline import Pipeline
from installation.score.show import SCALERS, DisplaySettings
from installation.session import load_parts

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from srgb import to_linear, to_srgb  # noqa: E402  the tests' reference curve

SCREEN = (1920, 1080)
FADE_FRAMES = 600  # 10 s at 60 frames/s


def lanczos_matrix(count: int, size: int) -> np.ndarray:
    """The ``size`` x ``count`` matrix of a Lanczos-3 upscale along one axis, pixel centres
    aligned, the taps beyond an edge repeating the edge pixel."""
    centres = (np.arange(size) + 0.5) * count / size - 0.5
    taps = np.floor(centres).astype(int)[:, None] - 2 + np.arange(6)[None, :]
    x = taps - centres[:, None]
    weights = np.sinc(x) * np.sinc(x / 3)
    matrix = np.zeros((size, count))
    rows = np.repeat(np.arange(size)[:, None], 6, axis=1)
    np.add.at(matrix, (rows, np.clip(taps, 0, count - 1)), weights)
    return matrix / matrix.sum(axis=1, keepdims=True)


def ideal(image: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
    """The face upscaled into ``rect`` by a float Lanczos-3 in linear light, as sRGB floats."""
    _, _, w, h = rect
    across = lanczos_matrix(image.shape[1], w)
    down = lanczos_matrix(image.shape[0], h)
    linear = np.einsum("yi,ixc->yxc", down, np.einsum("xj,ijc->ixc", across, to_linear(image)))
    return to_srgb(linear)


def psnr(shown: np.ndarray, reference: np.ndarray) -> float:
    error = np.mean((shown.astype(np.float64) - reference) ** 2)
    return 10 * math.log10(255**2 / error)


def faces() -> tuple[Frame, Frame]:
    show, bundle, _ = load_parts(ROOT / "shows" / "default.toml")
    pipeline = Pipeline.load(bundle, OnnxRuntimeBackend(CPU, threads=2))
    try:
        rng = np.random.default_rng(show.scenes[0].seed)
        images = pipeline.run(rng.standard_normal((2, bundle.latent_size), dtype=np.float32))
    finally:
        pipeline.close()
    return Frame(0.0, images[0], 0), Frame(1.0, images[1], 1)


def ramp_frame() -> Frame:
    """Left half a dark-to-light ramp down the frame, right half flat grey."""
    image = np.empty((256, 32, 3), dtype=np.uint8)
    image[:, :16] = np.arange(256, dtype=np.uint8)[:, None, None]
    image[:, 16:] = 128
    return Frame(0.0, image, 100)


def rate(display, a: Frame, b: Frame, seconds: float) -> dict[str, float]:
    display.present(a, b, 0.5)  # compiles and uploads: not a steady present
    display.poll()
    longest, count, start = 0.0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        before = time.perf_counter()
        display.present(a, b, (count % 60) / 60)
        display.poll()
        longest = max(longest, time.perf_counter() - before)
        count += 1
    return {"fps": count / (time.perf_counter() - start), "longest_ms": longest * 1e3}


def longest_run(values: list, black: bool = True) -> int:
    """The most equal values in a row (not counting runs of 0 unless ``black``: black is the
    end of a fade, not a band)."""
    return max(
        (len(list(run)) for value, run in itertools.groupby(values) if black or value),
        default=0,
    )


def banding(display, frame: Frame, rect: tuple[int, int, int, int]) -> dict[str, float]:
    x, y, w, h = rect
    column = x + w // 4
    patch = (slice(y + h // 3, y + 2 * h // 3), slice(x + 5 * w // 8, x + 7 * w // 8))
    means: list[float] = []
    dark = None
    for index in range(FADE_FRAMES + 1):
        brightness = 1 - index / FADE_FRAMES
        display.present(frame, None, 0.0, brightness)
        shot = display.snapshot()
        means.append(float(shot[patch][..., 1].mean()))
        if index == round(0.9 * FADE_FRAMES):
            dark = shot[y : y + h, column, 1].astype(int)
    assert dark is not None
    return {
        "levels_at_9s": len(np.unique(dark)),
        "widest_band_px": longest_run(dark.tolist(), black=False),
        "patch_levels": len({round(m, 6) for m in means}),
        "longest_step_frames": longest_run(means),
    }


def dip(display, a: Frame, b: Frame, rect: tuple[int, int, int, int]) -> float:
    """How much less light the middle of the crossfade has than its ends' mean, in percent."""
    x, y, w, h = rect

    def light(first: Frame, second: Frame | None, weight: float) -> float:
        display.present(first, second, weight)
        return float(to_linear(display.snapshot()[y : y + h, x : x + w]).mean())

    middle = light(a, b, 0.5)
    ends = (light(a, None, 0.0) + light(b, None, 0.0)) / 2
    return 100 * (1 - middle / ends)


def solid(value: int, serial: int) -> Frame:
    return Frame(0.0, np.full((64, 64, 3), value, dtype=np.uint8), serial)


def measure_path(
    display, a: Frame, b: Frame, seconds: float | None, fade: bool
) -> dict[str, object]:
    """The figures for one display: the rate only when ``seconds`` is given, the fade only
    when ``fade`` (the GL presenter dithers the same way whatever its scaler)."""
    rect = fit_rect(a.image.shape[1], a.image.shape[0], *SCREEN)
    row: dict[str, object] = rate(display, a, b, seconds) if seconds else {}
    display.present(a, None, 0.0)
    x, y, w, h = rect
    row["psnr_db"] = psnr(display.snapshot()[y : y + h, x : x + w], ideal(a.image, rect))
    if fade:
        row.update(banding(display, ramp_frame(), fit_rect(32, 256, *SCREEN)))
    row["dip_faces_pct"] = dip(display, a, b, rect)
    row["dip_black_white_pct"] = dip(display, solid(0, 10), solid(255, 11), rect)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per rate measurement")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    a, b = faces()
    rows = []
    # SDL's renderer as the show used it: on the X server for the rate, and its software
    # renderer (the same 8-bit arithmetic, but readable after presenting) for the pictures.
    sdl = FullscreenDisplay()
    sdl.open("display picture")
    row = {"path": f"sdl ({sdl.description})", **rate(sdl, a, b, args.seconds)}
    sdl.close()
    headless = HeadlessDisplay(SCREEN)
    headless.open("display picture")
    rows.append(row | measure_path(headless, a, b, None, fade=True))
    headless.close()
    os.environ.pop("SDL_VIDEODRIVER")  # the headless display chose SDL's dummy driver
    for scaler in SCALERS:
        gl = GlDisplay(FullscreenDisplay, DisplaySettings(renderer="gl", scaler=scaler))
        gl.open("display picture")
        figures = measure_path(gl, a, b, args.seconds, fade=scaler == SCALERS[0])
        rows.append({"path": f"gl {scaler} ({gl.description})"} | figures)
        gl.close()
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"face {a.image.shape[1]}x{a.image.shape[0]} on a {SCREEN[0]}x{SCREEN[1]} screen")
    for row in rows:
        print(
            f"{row['path']}\n"
            f"  {row['fps']:.1f} frames/s, longest present {row['longest_ms']:.1f} ms; "
            f"PSNR vs float Lanczos {row['psnr_db']:.2f} dB\n"
            f"  crossfade dip: faces {row['dip_faces_pct']:.1f} %, black to white "
            f"{row['dip_black_white_pct']:.1f} %"
        )
        if "levels_at_9s" in row:
            print(
                f"  fade: {row['levels_at_9s']} levels down a column at 9 s, widest flat band "
                f"{row['widest_band_px']} px; grey patch: {row['patch_levels']} levels, "
                f"longest step {row['longest_step_frames']} frames"
            )


if __name__ == "__main__":
    main()
