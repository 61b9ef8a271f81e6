"""Several outputs from one PC ([[outputs]]): the table as read, the geometry of span slices,
blend ramps and stream cells, and real windows on an X server (Xvfb, one wide screen split
into outputs) read back from its framebuffer: clone shows the same picture twice, span halves
meet as one picture, an overlap's two ramps add up to the picture's light, and stream outputs
of a real show show different faces. Skipped, saying so, where Xvfb is not installed."""

from __future__ import annotations

import json
import logging
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pygame
import pytest
from conftest import DEFAULT_BUNDLE, DEFAULT_SHOW
from test_display_servers import (
    PATIENCE,
    Compositor,
    XServer,
    cage,
    record,
    require_wayland_libraries,
    wait_for,
    x_environ,
    xvfb,
)

from installation.control.reload import Reloader
from installation.display import OutputsDisplay, make_display
from installation.display.output_geometry import blend_ramp, span_rects, stream_cell
from installation.engine.bundle import load_bundle
from installation.engine.paint import tile
from installation.errors import UserError
from installation.score.outputs_settings import OutputSettings
from installation.score.plan import FramePlan, Mosaic
from installation.score.show import DisplaySettings, load_show

SCREEN = (1280, 480)
HALF = SCREEN[0] // 2


def outputs_show(tmp_path: Path, tables: str, display: str = "") -> Path:
    """The default show with ``tables`` ([[outputs]]) added; ``display`` (``key = value``
    lines) replaces those keys of its [display] table."""
    path = tmp_path / "show.toml"
    text = DEFAULT_SHOW.read_text().replace('"../bundles/faces-256"', f'"{DEFAULT_BUNDLE}"')
    for line in display.splitlines():
        key = line.split("=")[0].strip()
        text = re.sub(rf"^{key} = .*$", line, text, count=1, flags=re.MULTILINE)
    path.write_text(text + "\n" + tables)
    return path


def error_of(path: Path) -> str:
    with pytest.raises(UserError) as caught:
        load_show(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}:")
    return message


LEFT_RIGHT = """
[[outputs]]
name = "left"
window = [0, 0, 640, 480]
show = "{show}"
{extra}
[[outputs]]
name = "right"
window = [640, 0, 640, 480]
show = "{show}"
{extra2}
"""


def test_outputs_are_read_in_file_order(tmp_path: Path) -> None:
    tables = LEFT_RIGHT.format(show="span", extra="overlap = 96\nblend = 1.8", extra2="")
    show = load_show(outputs_show(tmp_path, tables + '[[outputs]]\ndisplay = "HDMI-2"\n'))
    left, right, third = show.outputs
    assert (left.name, left.window, left.overlap, left.blend) == ("left", (0, 0, 640, 480), 96, 1.8)
    assert (right.show, right.overlap, right.blend) == ("span", 0, 2.2)
    assert (third.name, third.display, third.window, third.show) == (
        "output 3",
        "HDMI-2",
        None,
        "clone",
    )
    assert third.origin.endswith("outputs[2]") and show.display.grid == (1, 1)


def test_stream_outputs_make_a_one_row_grid(tmp_path: Path) -> None:
    """The conductor and painter read display.grid: three streams are one batch of three."""
    tables = '[[outputs]]\nshow = "stream"\nstream = 2\n[[outputs]]\nshow = "stream"\nstream = 0\n'
    show = load_show(outputs_show(tmp_path, tables, 'layout = "portrait"\n'))
    assert show.display.grid == (1, 3) and show.display.layout == "portrait"
    assert [output.stream for output in show.outputs] == [2, 0]


def test_a_room_pc_showing_one_stream_paints_the_rooms_row(tmp_path: Path) -> None:
    """PC k of a wall of four faces shows stream k of the same row on every PC, so the
    PCs' shows decide the picture alike (docs/sync.md)."""
    tables = '[[outputs]]\nshow = "stream"\nstream = 1\nstreams = 4\n'
    show = load_show(outputs_show(tmp_path, tables))
    assert show.display.grid == (1, 4) and show.outputs[0].streams == 4


@pytest.mark.parametrize(
    ("tables", "display", "expected"),
    [
        ('[[outputs]]\nshow = "clone"\n', 'layout = "grid"\n', 'layout = "grid"'),
        ('[[outputs]]\nshow = "clone"\n', 'renderer = "gl"\n', 'renderer = "gl"'),
        ('[[outputs]]\nshow = "clone"\noverlap = 10\n', "", 'only read with show = "span"'),
        ('[[outputs]]\nshow = "span"\nstream = 1\n', "", 'only read with show = "stream"'),
        ('[[outputs]]\nshow = "span"\noverlap = 64\n', "", "the last span output"),
        ('[[outputs]]\nshow = "stream"\n', "", "outputs[0].stream: missing"),
        ('[[outputs]]\nshow = "stream"\nstream = 8\n', "", "expected 0 to 7"),
        ('[[outputs]]\nshow = "stream"\nstream = 3\nstreams = 2\n', "", "4 to 8, got 2"),
        ('[[outputs]]\nshow = "clone"\nstreams = 2\n', "", 'only read with show = "stream"'),
        ("[[outputs]]\nwindow = [0, 0, 640]\n", "", "expected [x, y, width, height]"),
        ("[[outputs]]\nwindow = [-1, 0, 640, 480]\n", "", "x, y from 0"),
        ("[[outputs]]\ndisplay = 16\n", "", "a display index 0 to 15 or a display name"),
        ('[[outputs]]\ndisplay = ""\n', "", "empty name"),
        ('[[outputs]]\nshow = "wall"\n', "", "expected one of clone, span, stream"),
        ('[[outputs]]\nname = "a"\n[[outputs]]\nname = "a"\n', "", "names an earlier output"),
        ("[[outputs]]\nfullscreen = true\n", "", "outputs[0].fullscreen: unknown key"),
        (
            '[[outputs]]\nshow = "span"\nwindow = [0, 0, 100, 100]\noverlap = 100\n'
            '[[outputs]]\nshow = "span"\n',
            "",
            "less than the window's width 100",
        ),
        ("[[outputs]]\n" * 9, "", "at most 8 outputs"),
    ],
)
def test_a_bad_outputs_table_is_one_line(
    tmp_path: Path, tables: str, display: str, expected: str
) -> None:
    assert expected in error_of(outputs_show(tmp_path, tables, display))


def test_a_reload_says_new_outputs_wait_for_the_restart(
    show_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The windows are open; only a comment moving the tables down changes nothing."""
    path = show_copy
    path.write_text(path.read_text() + '\n[[outputs]]\nshow = "clone"\n')
    show = load_show(path)
    reload = Reloader(show, load_bundle(show.bundle), lambda show: None)
    path.write_text("# moved down a line\n" + path.read_text())
    with caplog.at_level(logging.INFO, "installation.control.reload"):
        reload.reload()
        assert "takes effect when the show restarts" not in caplog.text
        path.write_text(path.read_text().replace('show = "clone"', 'show = "span"'))
        reload.reload()
    assert reload.reloads == 2
    assert "reload: the new [[outputs]] takes effect when the show restarts" in caplog.text


def test_make_display_opens_outputs_except_headless() -> None:
    outputs = (OutputSettings("a"),)
    settings = DisplaySettings(grid=(1, 2))
    assert isinstance(make_display("fullscreen", None, settings, outputs), OutputsDisplay)
    assert isinstance(make_display("windowed", (320, 200), settings, outputs), OutputsDisplay)
    assert not isinstance(make_display("headless", None, settings, outputs), OutputsDisplay)


def test_span_slices_meet_and_the_picture_fits_the_canvas() -> None:
    """Two 640 px outputs overlapping by 128 make a 1152 px canvas; a 128 x 48 picture fills
    its width (1152 x 432, centred on the height), and the second output sees it from 512."""
    first, second = span_rects([(640, 480), (640, 480)], [128, 0], (128, 48))
    assert first == (0, 24, 1152, 432) and second == (-512, 24, 1152, 432)
    first, second, third = span_rects([(400, 300), (400, 200), (400, 300)], [0, 0, 0], (4, 1))
    assert (first[0], second[0], third[0]) == (0, -400, -800)
    assert second[1] == first[1] - 50  # the lower output is centred on the canvas's height


@pytest.mark.parametrize("cell", [(64, 64), (256, 256), (48, 64), (31, 17)])
@pytest.mark.parametrize("columns", [1, 2, 3, 8])
def test_stream_cells_are_where_tile_puts_each_face(cell: tuple[int, int], columns: int) -> None:
    width, height = cell
    pictures = [np.full((height, width, 3), 10 + k, np.uint8) for k in range(columns)]
    plan = FramePlan(layers=())
    mosaic = tile(
        Mosaic(cells=(plan,) * columns, columns=columns, background=(255, 0, 0)), pictures
    )
    for k in range(columns):
        x, y, w, h = stream_cell((mosaic.shape[1], mosaic.shape[0]), columns, k)
        assert (w, h) == cell
        assert (mosaic[y : y + h, x : x + w] == 10 + k).all()


@pytest.mark.parametrize("gamma", [1.0, 2.2, 3.0])
@pytest.mark.parametrize("width", [1, 7, 128])
def test_two_mirrored_ramps_add_up_to_full_light(gamma: float, width: int) -> None:
    falling = blend_ramp(width, gamma, rising=False)[0, :, 0] / 255.0
    rising = blend_ramp(width, gamma, rising=True)[0, :, 0] / 255.0
    light = falling**gamma + rising**gamma
    assert np.allclose(light, 1.0, atol=0.02)
    assert (np.diff(falling) <= 0).all() and (np.diff(rising) >= 0).all()


@pytest.fixture
def x_server(tmp_path: Path) -> Iterator[XServer]:
    """One 1280 x 480 screen, which the tests split into outputs."""
    with xvfb(tmp_path / "fb", f"{SCREEN[0]}x{SCREEN[1]}") as server:
        yield server


PROBE = """
import json, sys, threading, time
import numpy as np
from installation.display import OutputsDisplay
from installation.engine.frames import Frame
from installation.score.outputs_settings import OutputSettings
spec = json.loads(sys.argv[1])
outputs = [
    OutputSettings(**{**o, "window": tuple(o["window"]) if "window" in o else None})
    for o in spec["outputs"]
]
image = np.load(sys.argv[2])
display = OutputsDisplay(outputs, spec["columns"])
display.open("probe")
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.readline(), done.set()), daemon=True).start()
print(display.description, flush=True)
while not done.is_set():
    display.poll()
    display.present(Frame(0.0, image, 1), None, 0.0)
    time.sleep(0.02)
display.close()
"""


def shown(
    server: XServer,
    tmp_path: Path,
    outputs: list[dict[str, Any]],
    image: np.ndarray,
    columns: int = 1,
) -> np.ndarray:
    """The X screen while a probe presents ``image`` on ``outputs`` (OutputSettings fields,
    each with a window rectangle), once every window has something on it."""
    columns_of = [(o["window"][0], o["window"][0] + o["window"][2]) for o in outputs]
    spec = {"outputs": outputs, "columns": columns}
    return presented(x_environ(server), server.screen, columns_of, tmp_path, spec, image)


def presented(
    environ: dict[str, str],
    grab: Callable[[], np.ndarray],
    parts: list[tuple[int, int]],
    tmp_path: Path,
    spec: dict[str, Any],
    image: np.ndarray,
) -> np.ndarray:
    """The screen (``grab``) while a probe presents ``image`` on the ``spec``'s outputs with
    ``environ``'s video driver, once each of ``parts`` (ranges of columns) has something on
    it; saved as outputs.png for a look."""
    np.save(tmp_path / "image.npy", image)
    probe = subprocess.Popen(
        [sys.executable, "-c", PROBE, json.dumps(spec), str(tmp_path / "image.npy")],
        env=environ,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert probe.stdin is not None and probe.stdout is not None
    driver = environ["SDL_VIDEODRIVER"]
    try:
        described = probe.stdout.readline()
        assert described.startswith(f"{len(spec['outputs'])} outputs, video driver {driver}")

        last: list[np.ndarray] = []  # the previous read

        def drawn() -> list[np.ndarray] | None:
            """The screen once every part has a picture and two reads in a row agree: the
            probe presents the same frame again and again, so a screen still changing is
            one read while windows were being mapped or drawn."""
            screen = grab()
            settled = bool(last) and np.array_equal(last[0], screen)
            last[:] = [screen]
            full = all(screen[:, start:end].any() for start, end in parts)
            return [screen] if settled and full else None

        (screen,) = wait_for("the same picture in every output twice", drawn)
    finally:
        probe.stdin.close()
        probe.wait(timeout=PATIENCE)
    assert probe.returncode == 0
    save_png(screen, tmp_path / "outputs.png")
    return screen


def save_png(screen: np.ndarray, path: Path) -> None:
    """A screenshot to look at when a check fails (or to see what the outputs look like)."""
    pixels = np.ascontiguousarray(screen, np.uint8).tobytes()
    size = screen.shape[1], screen.shape[0]
    pygame.image.save(pygame.image.frombuffer(pixels, size, "RGB"), str(path))


def pair(show: str, **left: Any) -> list[dict[str, Any]]:
    return [
        {"name": "left", "window": [0, 0, HALF, SCREEN[1]], "show": show, **left},
        {"name": "right", "window": [HALF, 0, HALF, SCREEN[1]], "show": show},
    ]


def gradient(width: int, height: int) -> np.ndarray:
    """Red rising left to right, green top to bottom: every pixel says where it is."""
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    image[..., 1] = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    return image


def test_clone_shows_the_same_picture_on_both(x_server: XServer, tmp_path: Path) -> None:
    screen = shown(x_server, tmp_path, pair("clone"), gradient(64, 48))
    assert (screen[:, :HALF] == screen[:, HALF:]).all()
    assert screen[:, :HALF, 0].max() > 240 and screen[:, :HALF, 0].min() < 15


def test_two_span_halves_are_one_picture(x_server: XServer, tmp_path: Path) -> None:
    """Two spans without overlap show what one window across both would: the red ramp runs
    on over the seam, with no jump or repeat where the two windows meet."""
    screen = shown(x_server, tmp_path, pair("span"), gradient(128, 48))
    whole = shown(
        x_server,
        tmp_path,
        [{"name": "one", "window": [0, 0, *SCREEN], "show": "clone"}],
        gradient(128, 48),
    )
    difference = np.abs(screen.astype(int) - whole.astype(int))
    assert difference.max() <= 2, f"span differs from one window by up to {difference.max()}"
    red = screen[240, :, 0].astype(int)
    steps = np.diff(red)
    assert (steps >= 0).all() and steps[HALF - 1] <= steps.max()
    assert red[0] < 5 and red[-1] > 250


@pytest.mark.parametrize("gamma", [1.0, 2.2])
def test_an_overlap_adds_up_to_the_pictures_light(
    x_server: XServer, tmp_path: Path, gamma: float
) -> None:
    """A 128 px overlap of an even grey: in each overlapping column the two outputs' light
    (pixel value to the power gamma) adds up to the grey's, and outside it is the grey."""
    grey = 200
    screen = shown(
        x_server,
        tmp_path,
        pair("span", overlap=128, blend=gamma),
        np.full((48, 128, 3), grey, np.uint8),
    )
    row = screen[240, :, 0].astype(np.float64) / 255.0
    left, right = row[HALF - 128 : HALF], row[HALF : HALF + 128]
    light = left**gamma + right**gamma
    assert np.allclose(light, (grey / 255.0) ** gamma, atol=0.02), light
    assert (screen[240, : HALF - 128, 0] == grey).all()
    assert (screen[240, HALF + 128 : HALF + 512, 0] == grey).all()


def test_stream_outputs_show_their_own_cell(x_server: XServer, tmp_path: Path) -> None:
    """A one-row mosaic of a red and a green face: the left output shows only red, the right
    only green, each filling its window's height; the gutter between them is nowhere."""
    faces = [np.full((32, 32, 3), colour, np.uint8) for colour in ((255, 0, 0), (0, 255, 0))]
    plan = FramePlan(layers=())
    mosaic = tile(Mosaic(cells=(plan, plan), columns=2, background=(0, 0, 255)), faces)
    outputs = pair("stream")
    outputs[0]["stream"], outputs[1]["stream"] = 0, 1
    screen = shown(x_server, tmp_path, outputs, mosaic, columns=2)
    centre = screen[40:440, 120:520], screen[40:440, HALF + 120 : HALF + 520]
    assert (centre[0] == (255, 0, 0)).all() and (centre[1] == (0, 255, 0)).all()
    assert screen[..., 2].max() < 64, "the blue gutter shows"


def test_a_show_plays_a_different_face_on_each_stream_output(
    x_server: XServer, tmp_path: Path, show_copy: Path
) -> None:
    """``installation run`` of the default bundle with two stream outputs: one pipeline
    paints both faces, each window shows one, and they are different people."""
    tables = LEFT_RIGHT.format(show="stream", extra="stream = 0", extra2="stream = 1")
    text = show_copy.read_text().replace("enabled = true", "enabled = false", 1)
    show_copy.write_text(text + tables)
    runtime = tmp_path / "run"
    show = subprocess.Popen(
        [sys.executable, "-m", "installation", "run", str(show_copy), "--duration", "60"],
        env={**x_environ(x_server), "RUNTIME_DIRECTORY": str(runtime)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for("the show to play", lambda: show.poll() is not None or record(runtime))
        assert show.poll() is None, show.communicate()[1]

        def two_faces() -> list[np.ndarray] | None:
            screen = x_server.screen().astype(np.float64)
            both = screen[:, :HALF].std() > 20 and screen[:, HALF:].std() > 20
            return [screen] if both else None

        (screen,) = wait_for("a face in both windows", two_faces)
        save_png(screen, tmp_path / "outputs.png")
    finally:
        show.send_signal(signal.SIGTERM)
        _, stderr = show.communicate(timeout=PATIENCE)
    assert show.returncode == 0 and "Traceback" not in stderr, stderr
    assert "output 'left' on screen 0 'screen' 1280x480 at 0,0: face stream 0" in stderr
    assert np.abs(screen[:, :HALF] - screen[:, HALF:]).mean() > 10, "the same face twice"


def test_a_missing_display_is_one_line_naming_what_sdl_sees(
    x_server: XServer, tmp_path: Path, show_copy: Path
) -> None:
    text = show_copy.read_text().replace("enabled = true", "enabled = false", 1)
    show_copy.write_text(text + '\n[[outputs]]\nname = "wall"\ndisplay = 3\n')
    completed = subprocess.run(
        [sys.executable, "-m", "installation", "run", str(show_copy), "--duration", "5"],
        env={**x_environ(x_server), "RUNTIME_DIRECTORY": str(tmp_path / "run")},
        capture_output=True,
        text=True,
        timeout=PATIENCE * 2,
    )
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    line = completed.stderr.splitlines()[-1]
    assert line.startswith(f"installation: error: {show_copy}:")
    assert line.endswith("outputs[0]: display 3 not found; SDL sees: 0 'screen' 1280x480 at 0,0")


def test_separate_x_screens_are_named_as_the_reason_for_a_misplaced_window(
    tmp_path: Path,
) -> None:
    """Xvfb's ``-screen 0 -screen 1`` are two X screens, both at 0,0: SDL lists two displays
    but opens every window on the first (it places a window by its position), so an output
    on display 1 would silently cover display 0. The log says so and how to set it up."""
    output = {"name": "second", "display": 1, "window": [0, 0, 640, 480]}
    spec = json.dumps({"outputs": [output], "columns": 1})
    np.save(tmp_path / "image.npy", gradient(64, 48))
    with xvfb(tmp_path / "fb", "640x480", "640x480") as server:
        completed = subprocess.run(
            [sys.executable, "-c", PROBE, spec, str(tmp_path / "image.npy")],
            env=x_environ(server),
            input="\n",
            capture_output=True,
            text=True,
            timeout=PATIENCE,
        )
    assert completed.returncode == 0, completed.stderr
    assert "screen 1 shares its desktop area with screen 0 (separate X screens?)" in (
        completed.stderr
    )


CAGE_SCREEN = (1280, 720)  # each of wlroots' headless outputs


def cage_screen(compositor: Compositor, folder: Path) -> np.ndarray:
    """What cage's screens show together, H x W x 3 RGB, read with grim (the whole layout:
    the kiosk's screens side by side)."""
    shot = folder / "grim.png"
    subprocess.run(["grim", str(shot)], env=compositor.environ, check=True, timeout=PATIENCE)
    return pygame.surfarray.array3d(pygame.image.load(str(shot))).transpose(1, 0, 2)


@contextmanager
def two_screen_kiosk() -> Iterator[Compositor]:
    """cage as the kiosk runs it (-m extend) with two headless screens side by side."""
    if shutil.which("grim") is None:
        pytest.skip("grim is not installed (Debian package grim)")
    require_wayland_libraries()
    with cage("-m", "extend", outputs=2) as compositor:
        yield compositor


def on_cage(
    compositor: Compositor, tmp_path: Path, spec: dict[str, Any], image: np.ndarray
) -> np.ndarray:
    width = CAGE_SCREEN[0]
    parts = [(0, width), (width, 2 * width)]
    grab = partial(cage_screen, compositor, tmp_path)
    screen = presented(compositor.environ, grab, parts, tmp_path, spec, image)
    assert screen.shape == (CAGE_SCREEN[1], 2 * width, 3)
    return screen


def test_the_kiosk_shows_each_stream_on_its_own_screen(tmp_path: Path) -> None:
    """Under cage, which shows one window stretched over both screens, the display draws
    each output into its screen's part of one window: the first output (red stream) asks
    for SDL's display 1, the right-hand screen, the second (green) for display 0."""
    faces = [np.full((32, 32, 3), colour, np.uint8) for colour in ((255, 0, 0), (0, 255, 0))]
    plan = FramePlan(layers=())
    mosaic = tile(Mosaic(cells=(plan, plan), columns=2, background=(0, 0, 255)), faces)
    outputs = [
        {"name": "right", "display": 1, "show": "stream", "stream": 0},
        {"name": "left", "display": 0, "show": "stream", "stream": 1},
    ]
    with two_screen_kiosk() as compositor:
        screen = on_cage(compositor, tmp_path, {"outputs": outputs, "columns": 2}, mosaic)
    width = CAGE_SCREEN[0]
    middle = slice(300, width - 300)  # each square face fills its screen's height, centred
    assert (screen[:, middle] == (0, 255, 0)).all()
    assert (screen[:, width:][:, middle] == (255, 0, 0)).all()
    assert screen[:, :270].max() == 0 and screen[:, width : width + 270].max() == 0
    assert screen[..., 2].max() < 64, "the blue gutter shows"


def test_the_kiosk_spans_one_picture_over_both_screens(tmp_path: Path) -> None:
    """Two span outputs, one per screen: the red ramp runs on over the seam as one picture
    2560 px wide (a 2560 x 720 gradient drawn 1:1), with no jump or repeat."""
    outputs = [
        {"name": "left", "display": 0, "show": "span"},
        {"name": "right", "display": 1, "show": "span"},
    ]
    image = gradient(2 * CAGE_SCREEN[0], CAGE_SCREEN[1])
    with two_screen_kiosk() as compositor:
        screen = on_cage(compositor, tmp_path, {"outputs": outputs, "columns": 1}, image)
    difference = np.abs(screen.astype(int) - image.astype(int))
    assert difference.max() <= 2, f"the screens differ from the picture by up to {difference.max()}"
