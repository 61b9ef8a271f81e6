"""The GL presenter as the show uses it: a real GL window on SDL's offscreen driver (EGL, no
screen needed), the choice of renderer with SDL to fall back on, and the [display] keys."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pygame
import pytest
from conftest import BLUE, DEFAULT_SHOW, RED, brisk_conductor, solid

from installation.display import (
    FallbackDisplay,
    GlDisplay,
    GlUnavailable,
    HeadlessDisplay,
    WindowedDisplay,
    make_display,
)
from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.pipeline import Pipeline
from installation.errors import UserError
from installation.player import play
from installation.score.show import DisplaySettings, load_show


@pytest.fixture(autouse=True)
def video_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    """The headless GL display picks SDL's offscreen driver; other tests expect theirs back."""
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")


@pytest.fixture
def gl_display() -> Iterator[GlDisplay]:
    shown = GlDisplay(HeadlessDisplay, DisplaySettings(renderer="gl"), (160, 90))
    try:
        shown.open("test")
    except GlUnavailable as exc:
        pytest.skip(f"no OpenGL here: {exc}")
    yield shown
    shown.close()


def test_gl_display_letterboxes_and_crossfades_in_linear_light(gl_display: GlDisplay) -> None:
    assert "GL presenter on" in gl_display.description
    gl_display.present(solid(0, RED), solid(1, BLUE), 0.5)
    shot = gl_display.snapshot().astype(int)
    assert shot.shape == (90, 160, 3)
    assert not shot[:, :30].any() and not shot[:, 130:].any()  # bars
    assert np.abs(shot[:, 40:120] - (188, 0, 188)).max() <= 1  # half the light of each
    assert gl_display.poll() == []


def test_gl_display_textures_stay_bounded(gl_display: GlDisplay) -> None:
    for serial in range(12):
        gl_display.present(solid(serial, RED), solid(serial + 1, BLUE), 0.3, 0.5)
    assert gl_display.texture_count <= 4


def test_make_display_picks_the_renderer() -> None:
    assert type(make_display("headless")) is HeadlessDisplay
    sdl = DisplaySettings(renderer="sdl")
    assert type(make_display("windowed", (320, 200), sdl)) is WindowedDisplay
    assert isinstance(make_display("headless", None, DisplaySettings(renderer="gl")), GlDisplay)
    assert isinstance(make_display("headless", None, DisplaySettings()), FallbackDisplay)


def test_auto_takes_gl_on_a_gpu_and_sdl_where_gl_runs_on_the_cpu(
    gl_display: GlDisplay, caplog: pytest.LogCaptureFixture
) -> None:
    on_cpu = "llvmpipe" in gl_display.description or "softpipe" in gl_display.description
    gl_display.close()
    shown = make_display("headless", (64, 36), DisplaySettings())
    with caplog.at_level(logging.WARNING, logger="installation.display"):
        shown.open("test")
    try:
        assert ("GL presenter" in shown.description) is not on_cpu
    finally:
        shown.close()
    lines = [r.getMessage() for r in caplog.records]
    expected = ["GL presenter unavailable: OpenGL runs on the CPU"] if on_cpu else []
    assert [line[: len(expected[0])] for line in lines] == expected if on_cpu else lines == []


def refuse_gl(monkeypatch: pytest.MonkeyPatch, how: str) -> str:
    """Make GL unavailable for real, in one of two ways; returns what the line says."""
    if how == "no moderngl":
        monkeypatch.setitem(sys.modules, "moderngl", None)
        return "moderngl cannot be imported"
    # Mesa then offers OpenGL 3.0 only, and the 3.3 core window is refused.
    monkeypatch.setenv("MESA_GL_VERSION_OVERRIDE", "3.0")
    return "no OpenGL 3.3 window on SDL's offscreen driver"


@pytest.mark.parametrize("how", ["no moderngl", "old GL"])
def test_auto_falls_back_to_sdl_in_one_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    why = refuse_gl(monkeypatch, how)
    shown = make_display("headless", (64, 36), DisplaySettings(renderer="auto"))
    with caplog.at_level(logging.INFO, logger="installation.display"):
        shown.open("test")
    try:
        assert isinstance(shown, FallbackDisplay) and type(shown.chosen) is HeadlessDisplay
        shown.present(solid(0, RED), None, 0.0)
        assert shown.poll() == []
    finally:
        shown.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert warnings[0].startswith(f"GL presenter unavailable: {why}")
    assert warnings[0].endswith("presenting with SDL's renderer")


def test_forced_gl_that_cannot_start_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    why = refuse_gl(monkeypatch, "old GL")
    shown = make_display("headless", (64, 36), DisplaySettings(renderer="gl"))
    with pytest.raises(UserError, match=why):
        shown.open("test")
    assert not pygame.display.get_init()
    assert shown.description == "not open"


def test_show_plays_on_the_gl_presenter(gl_display: GlDisplay) -> None:
    bundle, conductor = brisk_conductor(hold=0.2, morph=0.4)
    pipeline = Pipeline.load(bundle, OnnxRuntimeBackend(CPU, threads=1))
    try:
        result = play(gl_display, pipeline, conductor, fps=30, lead=0.1, duration=1.0)
    finally:
        pipeline.close()
    assert result.error is None and result.stats.shown > 0
    assert gl_display.snapshot()[30:60, 65:95].mean() > 10  # a face, not the black bars


def show_with(tmp_path: Path, lines: str) -> Path:
    """The default show with ``lines`` of its [display] table set (replaced, or added)."""
    text = DEFAULT_SHOW.read_text()
    for line in lines.splitlines():
        key = line.split(" = ")[0]
        found = re.search(rf"^{key} = .*$", text, flags=re.MULTILINE)
        if found:
            text = text[: found.start()] + line + text[found.end() :]
        else:
            text = text.replace("[display]\n", f"[display]\n{line}\n", 1)
    text = text.replace('bundle = "../bundles/faces-256"', f'bundle = "{DEFAULT_SHOW.parent}"')
    path = tmp_path / "show.toml"
    path.write_text(text)
    return path


def test_display_keys_load(tmp_path: Path) -> None:
    picture = DEFAULT_SHOW.parents[1] / "docs" / "contact-sheet.png"
    (tmp_path / "wall.png").write_bytes(picture.read_bytes())
    path = show_with(
        tmp_path,
        'renderer = "gl"\nscaler = "bicubic"\ngrain = 0.3\nvignette = 0.5\nlayout = "portrait"\n'
        'portrait_height = 0.6\nbackground = "#2040A0"\nbackground_image = "wall.png"',
    )
    display = load_show(path).display
    assert (display.renderer, display.scaler, display.layout) == ("gl", "bicubic", "portrait")
    assert (display.grain, display.vignette, display.portrait_height) == (0.3, 0.5, 0.6)
    assert display.background == (0x20, 0x40, 0xA0)
    assert display.background_image == tmp_path / "wall.png"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('renderer = "vulkan"', "display.renderer: expected one of auto, gl, sdl"),
        ('scaler = "nearest"', "display.scaler: expected one of lanczos, bicubic, linear"),
        ("grain = 1.5", "display.grain: expected 0 to 1, got 1.5"),
        ("vignette = -0.1", "display.vignette: expected 0 to 1"),
        ('layout = "collage"', "display.layout: expected one of fill, portrait, grid"),
        ("portrait_height = 0.05", "display.portrait_height: expected 0.1 to 1"),
        ('background = "grey"', 'display.background: expected a colour as "#rrggbb"'),
        ('background = "#12345G"', 'display.background: expected a colour as "#rrggbb"'),
        ('background_image = "missing.png"', "display.background_image: cannot read"),
        ('background_image = "show.toml"', "display.background_image: cannot read"),
    ],
)
def test_display_key_errors_name_file_line_and_key(tmp_path: Path, line: str, message: str) -> None:
    path = show_with(tmp_path, line)
    with pytest.raises(UserError) as caught:
        load_show(path)
    number = path.read_text().splitlines().index(line) + 1
    text = str(caught.value)
    assert text.startswith(f"{path}:{number}: ") and message in text and "\n" not in text
