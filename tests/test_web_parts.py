"""The web page's two parts that need no server: the live thumbnail and the log tail.

Thumbnails get an injected clock, so the at-most-twice-a-second rule and the shared
encoding are checked by counting, never by timing; pictures are compared with what the real
headless SDL presenter puts on screen for the same frames (the thumbnail is composed by
installation.output.compose, like a recording).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from io import BytesIO

import numpy as np
import pygame
import pytest
from conftest import BLUE, RED, solid

from installation.control.web.logtail import MAX_CHARS, MAX_LINES, LogTail
from installation.display import HeadlessDisplay
from installation.engine.frames import Frame, Pick
from installation.output.thumbnail import MAX_WIDTH, Thumbnails, screen_image


class Clock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Screen:
    """What the display loop would leave for the thumbnail maker: a pick and a brightness."""

    def __init__(self, pick: Pick | None, brightness: float = 1.0) -> None:
        self.shown = None if pick is None else (pick, brightness)

    def __call__(self) -> tuple[Pick, float] | None:
        return self.shown


def decoded(jpeg: bytes) -> np.ndarray:
    surface = pygame.image.load(BytesIO(jpeg), "thumbnail.jpg")
    width, height = surface.get_size()
    return np.frombuffer(pygame.image.tobytes(surface, "RGB"), np.uint8).reshape(height, width, 3)


def test_thumbnail_is_the_blend_at_the_brightness_shown() -> None:
    screen = Screen(Pick(solid(1, RED), solid(2, BLUE), 0.25), brightness=0.5)
    picture = decoded(Thumbnails(screen, Clock()).jpeg("phone"))
    assert picture.shape == (64, 64, 3), "a small frame is sent at its own size"
    # 0.75 red + 0.25 blue, at half brightness: about (96, 0, 32); JPEG moves a few levels.
    assert np.abs(picture.astype(int) - (96, 0, 32)).max() <= 4


def test_thumbnail_matches_the_sdl_presenter() -> None:
    rng = np.random.default_rng(3)
    a, b = (Frame(i / 30, rng.integers(0, 256, (64, 64, 3), np.uint8), i) for i in (1, 2))
    display = HeadlessDisplay((64, 64))
    display.open("thumbnail")
    try:
        for weight, brightness in [(0.0, 1.0), (0.3, 1.0), (0.7, 0.4), (1.0, 0.1)]:
            display.present(a, b, weight, brightness)
            expected = display.snapshot().astype(int)
            ours = screen_image(Pick(a, b, weight), brightness).astype(int)
            # SDL truncates twice (dimming, then blending); compose rounds once: 3 levels.
            assert np.abs(ours - expected).max() <= 3, (weight, brightness)
    finally:
        display.close()


def test_large_frames_are_scaled_to_the_width_limit_keeping_their_shape() -> None:
    image = np.zeros((600, 1200, 3), np.uint8)
    image[:, :600] = (250, 250, 250)
    picture = decoded(Thumbnails(Screen(Pick(Frame(0.0, image, 1), None, 0.0)), Clock()).jpeg("x"))
    assert picture.shape == (MAX_WIDTH // 2, MAX_WIDTH, 3)
    assert picture[:, : MAX_WIDTH // 2 - 4].min() > 240, "the left half stays white"
    assert picture[:, MAX_WIDTH // 2 + 4 :].max() < 10, "the right half stays black"


def test_each_viewer_gets_at_most_one_thumbnail_per_interval() -> None:
    clock = Clock()
    thumbnails = Thumbnails(Screen(Pick(solid(1, RED), None, 0.0)), clock, interval=0.5)
    thumbnails.jpeg("phone")
    clock.now += 0.2
    with pytest.raises(Thumbnails.TooSoon) as too_soon:
        thumbnails.jpeg("phone")
    assert too_soon.value.retry_after == pytest.approx(0.3)
    thumbnails.jpeg("tablet")  # another viewer is not held back by the first
    clock.now += 0.3
    thumbnails.jpeg("phone")


def test_many_viewers_share_one_encoding() -> None:
    clock = Clock()
    screen = Screen(Pick(solid(1, RED), solid(2, BLUE), 0.5))
    thumbnails = Thumbnails(screen, clock, interval=0.5)
    first = {thumbnails.jpeg(f"viewer {n}") for n in range(20)}
    assert len(first) == 1 and thumbnails.encoded == 1
    clock.now += 0.1
    screen.shown = (Pick(solid(1, RED), solid(2, BLUE), 0.6), 1.0)
    thumbnails.jpeg("late viewer")
    assert thumbnails.encoded == 1, "a picture moments old is good enough for another viewer"
    clock.now += 0.2
    assert thumbnails.jpeg("later viewer") != first.pop()
    assert thumbnails.encoded == 2


def test_nothing_shown_or_only_on_the_gpu_is_unavailable() -> None:
    with pytest.raises(Thumbnails.Unavailable, match="nothing has been shown"):
        Thumbnails(Screen(None), Clock()).jpeg("phone")
    on_gpu = Frame(0.0, None, 1)
    with pytest.raises(Thumbnails.Unavailable, match="only on the GPU"):
        Thumbnails(Screen(Pick(on_gpu, None, 0.0)), Clock()).jpeg("phone")


def test_thumbnails_are_encoded_off_the_main_thread() -> None:
    """The server encodes on its own thread: SDL_image must work there, with no display."""
    out: list[bytes] = []
    thumbnails = Thumbnails(Screen(Pick(solid(1, RED, (700, 350)), None, 0.0)), Clock())
    worker = threading.Thread(target=lambda: out.append(thumbnails.jpeg("phone")))
    worker.start()
    worker.join(10)
    assert decoded(out[0]).shape == (240, 480, 3)


@pytest.fixture
def tail() -> Iterator[LogTail]:
    handler = LogTail()
    logger = logging.getLogger("test.tail")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)


def test_log_tail_keeps_the_last_lines_one_line_each(tail: LogTail) -> None:
    logger = logging.getLogger("test.tail")
    for n in range(MAX_LINES + 10):
        logger.info("line %d", n)
    lines = tail.lines()
    assert len(lines) == MAX_LINES
    assert lines[0].endswith("line 10") and lines[-1].endswith(f"line {MAX_LINES + 9}")
    assert re.fullmatch(rf"\d\d:\d\d:\d\d INFO test\.tail: line {MAX_LINES + 9}", lines[-1])


def test_log_tail_flattens_and_clips(tail: LogTail) -> None:
    logger = logging.getLogger("test.tail")
    logger.debug("not kept: the page shows INFO and above")
    logger.warning("two\nlines")
    try:
        raise ValueError("bad value")
    except ValueError:
        logger.exception("worker failed")
    logger.error("x" * 5000)
    warning, error, long = tail.lines()
    assert warning.endswith("WARNING test.tail: two lines")
    assert error.endswith("ERROR test.tail: worker failed (ValueError: bad value)")
    assert len(long) == MAX_CHARS and long.endswith("...")
