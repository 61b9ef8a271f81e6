"""Tests for the display package, run on SDL's dummy video driver so no screen is needed."""

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"

import logging
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pygame
import pytest
from conftest import BLUE, RED, brisk_conductor, solid

from installation.display import (
    Action,
    DisplayLost,
    FullscreenDisplay,
    HeadlessDisplay,
    WindowedDisplay,
    fit_rect,
    make_display,
    textures,
)
from installation.display.connection import lost_connection, wayland_socket
from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.frames import Frame
from installation.engine.pipeline import Pipeline
from installation.errors import UserError
from installation.player import play
from installation.service.lifecycle import Service

GREEN = (0, 200, 0)


@pytest.fixture
def display() -> Iterator[HeadlessDisplay]:
    shown = HeadlessDisplay()
    shown.open("test")
    yield shown
    shown.close()


@pytest.mark.parametrize(
    ("src", "dst", "expected"),
    [
        ((200, 100), (640, 360), (0, 20, 640, 320)),  # wider than the output: bars top and bottom
        ((64, 64), (640, 360), (140, 0, 360, 360)),  # taller: bars left and right
        ((1280, 720), (640, 360), (0, 0, 640, 360)),  # same aspect: fills the output
        ((64, 64), (64, 64), (0, 0, 64, 64)),
        ((65, 64), (641, 361), (137, 0, 367, 361)),  # odd sizes round to the nearest pixel
        ((3, 2), (7, 5), (0, 0, 7, 5)),
        ((1, 1000), (1000, 10), (500, 0, 0, 10)),  # too thin to show even one column
    ],
)
def test_fit_rect(
    src: tuple[int, int], dst: tuple[int, int], expected: tuple[int, int, int, int]
) -> None:
    assert fit_rect(*src, *dst) == expected


@pytest.mark.parametrize("src", [(64, 64), (256, 255), (1024, 768), (17, 31), (640, 360)])
@pytest.mark.parametrize("dst", [(640, 360), (1920, 1080), (1080, 1920), (333, 777), (1, 1)])
def test_fit_rect_is_centred_inside_and_keeps_aspect(
    src: tuple[int, int], dst: tuple[int, int]
) -> None:
    x, y, w, h = fit_rect(*src, *dst)
    assert x >= 0 and y >= 0 and x + w <= dst[0] and y + h <= dst[1]
    assert w == dst[0] or h == dst[1]
    assert abs((dst[0] - w) - 2 * x) <= 1 and abs((dst[1] - h) - 2 * y) <= 1
    assert abs(w * src[1] - h * src[0]) <= max(src)  # within one pixel of the source aspect


def test_fit_rect_rejects_empty_source() -> None:
    with pytest.raises(ValueError):
        fit_rect(0, 10, 640, 360)


def test_present_letterboxes_on_black(display: HeadlessDisplay) -> None:
    display.present(solid(1, GREEN), None, 0.0)
    shot = display.snapshot()
    assert shot.shape == (360, 640, 3)
    assert tuple(shot[180, 320]) == GREEN
    # A square frame in 640x360 fills columns 140..499; the rest is black bars.
    assert tuple(shot[180, 140]) == GREEN and tuple(shot[180, 499]) == GREEN
    assert not shot[:, :140].any() and not shot[:, 500:].any()


def test_present_shows_the_picture_not_a_colour_shift(display: HeadlessDisplay) -> None:
    image = np.random.default_rng(7).integers(0, 256, (360, 360, 3), dtype=np.uint8)
    display.present(Frame(t=0.0, image=image, serial=1), None, 0.0)
    np.testing.assert_array_equal(display.snapshot()[:, 140:500], image)


@pytest.mark.parametrize(
    ("weight", "expected"), [(0.0, RED), (0.5, (128, 0, 127)), (1.0, BLUE), (1.2, BLUE)]
)
def test_crossfade(display: HeadlessDisplay, weight: float, expected: tuple[int, int, int]) -> None:
    display.present(solid(1, RED), solid(2, BLUE), weight)
    centre = display.snapshot()[180, 320].astype(int)
    assert np.abs(centre - expected).max() <= 2


def test_brightness_fades_to_black(display: HeadlessDisplay) -> None:
    display.present(solid(1, RED), solid(2, BLUE), 0.5, brightness=0.0)
    assert not display.snapshot().any()
    display.present(solid(1, RED), None, 0.0, brightness=0.5)
    assert abs(int(display.snapshot()[180, 320, 0]) - 128) <= 2


def test_texture_cache_stays_bounded_and_reuses_textures(
    display: HeadlessDisplay, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = []
    real_texture = textures.Texture

    def counting_texture(*args: object, **kwargs: object) -> object:
        created.append(args)
        return real_texture(*args, **kwargs)

    monkeypatch.setattr(textures, "Texture", counting_texture)
    for serial in range(100):
        a = solid(serial, (serial, 255 - serial, 7))
        b = solid(serial + 1, (serial + 1, 254 - serial, 7))
        display.present(a, b, 0.0)
        assert display.texture_count <= 4
        # The frame on screen is the newest one, not a stale texture from the cache.
        assert tuple(display.snapshot()[180, 320]) == (serial, 255 - serial, 7)
    assert len(created) == 4


def test_new_frame_size_gets_its_own_letterbox(display: HeadlessDisplay) -> None:
    display.present(solid(1, GREEN), None, 0.0)
    display.present(solid(2, RED, size=(128, 32)), None, 0.0)
    shot = display.snapshot()
    # 4:1 in 640x360 is 640x160, centred at rows 100..259.
    assert tuple(shot[100, 0]) == RED and tuple(shot[259, 639]) == RED
    assert not shot[:100].any() and not shot[260:].any()


def test_resized_window_keeps_the_letterbox(display: HeadlessDisplay) -> None:
    assert display._session is not None
    display._session.window.size = (360, 640)
    display.poll()  # SDL updates the renderer's output size while handling the event
    display.present(solid(1, GREEN), None, 0.0)
    shot = display.snapshot()
    assert shot.shape == (640, 360, 3)
    assert tuple(shot[320, 180]) == GREEN
    assert not shot[:140].any() and not shot[500:].any()


def test_description_names_driver_and_renderer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    shown = HeadlessDisplay((320, 200))
    assert shown.description == "not open"
    with caplog.at_level(logging.INFO, logger="installation.display"):
        shown.open("test")
    try:
        assert shown.description == "video driver dummy, renderer software"
        assert shown.snapshot().shape == (200, 320, 3)
    finally:
        shown.close()
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert "dummy" in caplog.text and "software" in caplog.text


def test_no_screen_and_software_renderer_outside_headless_warn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    shown = WindowedDisplay((320, 200))
    with caplog.at_level(logging.INFO, logger="installation.display"):
        shown.open("test")
    shown.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "found no screen and uses its dummy video driver: nothing is visible" in warnings[0]
    assert "software renderer" in warnings[1]


def test_close_is_idempotent() -> None:
    shown = HeadlessDisplay()
    shown.close()
    shown.open("test")
    shown.close()
    shown.close()
    assert shown.description == "not open"
    assert not pygame.display.get_init()
    with pytest.raises(RuntimeError):
        shown.present(solid(1, RED), None, 0.0)
    shown.open("again")  # a closed display can be opened again
    shown.present(solid(1, RED), None, 0.0)
    shown.close()


@pytest.mark.parametrize(
    ("key_event", "expected"),
    [
        (pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE), [Action.QUIT]),
        (pygame.event.Event(pygame.KEYDOWN, key=pygame.K_q), [Action.QUIT]),
        (pygame.event.Event(pygame.QUIT), [Action.QUIT]),
        (pygame.event.Event(pygame.KEYDOWN, key=pygame.K_f), []),  # headless has a fixed size
        (pygame.event.Event(pygame.KEYDOWN, key=pygame.K_SPACE), []),
    ],
)
def test_poll_reports_quit(
    display: HeadlessDisplay, key_event: pygame.event.Event, expected: list[Action]
) -> None:
    display.poll()
    pygame.event.post(key_event)
    assert display.poll() == expected


def test_f_toggles_fullscreen_in_windowed_mode() -> None:
    shown = WindowedDisplay((320, 200))
    shown.open("test")
    try:
        shown.poll()
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_f))
        assert shown.poll() == ["toggle_fullscreen"]
        assert shown._session is not None and shown._session.fullscreen
        pygame.event.post(pygame.event.Event(pygame.WINDOWCLOSE))
        assert shown.poll() == ["quit"]
    finally:
        shown.close()


def test_make_display() -> None:
    assert isinstance(make_display("fullscreen"), FullscreenDisplay)
    assert isinstance(make_display("windowed", (800, 600)), WindowedDisplay)
    assert isinstance(make_display("headless"), HeadlessDisplay)
    with pytest.raises(UserError, match="unknown display mode 'projector'"):
        make_display("projector")
    with pytest.raises(UserError, match="display size"):
        make_display("windowed", (0, 600))


def answer_sync(server: socket.socket) -> None:
    """A compositor's answer to one wl_display.sync: delete_id, then the callback's done."""
    client, _ = server.accept()
    with client:
        request = client.recv(12)
        callback = struct.unpack("=III", request)[2]
        client.sendall(struct.pack("=III", 1, (12 << 16) | 1, callback))
        client.sendall(struct.pack("=III", callback, (12 << 16) | 0, 7))


def test_a_compositor_that_no_longer_serves_clients_is_lost(tmp_path: Path) -> None:
    path = tmp_path / "wayland-1"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen()
        assert wayland_socket({"WAYLAND_DISPLAY": "wayland-1", "XDG_RUNTIME_DIR": str(tmp_path)})
        answering = threading.Thread(target=answer_sync, args=(server,))
        answering.start()
        assert lost_connection("wayland", {"WAYLAND_DISPLAY": str(path)}, timeout=30) is None
        answering.join()
        # Shutting down (SIGTERM), a compositor still takes connections but serves no one.
        assert lost_connection("wayland", {"WAYLAND_DISPLAY": str(path)}, timeout=0.2) == (
            f"the Wayland compositor at {path} is gone "
            "(it takes connections but did not answer within 0.2 s)"
        )
        assert lost_connection("wayland", {"XDG_RUNTIME_DIR": str(tmp_path)}) == (
            f"the Wayland compositor at {tmp_path / 'wayland-0'} is gone "
            "(No such file or directory)"
        )
    # Killed with SIGKILL, a compositor leaves its socket behind, refusing connections.
    assert lost_connection("wayland", {"WAYLAND_DISPLAY": str(path)}) == (
        f"the Wayland compositor at {path} is gone (Connection refused)"
    )
    assert lost_connection("wayland", {"WAYLAND_SOCKET": "5"}) is None  # cannot be asked
    assert lost_connection("dummy", {"WAYLAND_DISPLAY": str(path)}) is None


class LosingDisplay(HeadlessDisplay):
    """The real headless display, whose server goes away after a few frames."""

    def __init__(self, frames: int) -> None:
        super().__init__()
        self.frames = frames

    def poll(self) -> list[Action]:
        self.frames -= 1
        if self.frames == 0:
            raise DisplayLost("the compositor went away")
        return super().poll()


def test_a_lost_display_ends_play_with_its_cause_in_the_health_record() -> None:
    bundle, conductor = brisk_conductor(hold=0.5, morph=1.0)
    pipeline = Pipeline.load(bundle, OnnxRuntimeBackend(CPU, threads=1))
    display = LosingDisplay(frames=5)
    service = Service()
    display.open("test")
    try:
        result = play(display, pipeline, conductor, fps=60, lead=0.1, service=service)
    finally:
        display.close()
    assert result.display_lost == "the compositor went away"
    assert result.error is None
    assert service.monitor is not None and service.monitor.last_error is not None
    assert service.monitor.last_error["message"] == "display lost: the compositor went away"
