"""The frame queue between worker and display, and the image conventions between stages."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from installation.engine.convention import from_unit, to_rgb8, to_unit
from installation.engine.frames import Frame, FrameQueue


def frame(t: float, serial: int) -> Frame:
    return Frame(t, np.full((2, 2, 3), serial, np.uint8), serial)


def test_pick_blends_the_frames_around_now() -> None:
    queue = FrameQueue(8)
    queue.put([frame(0.0, 0), frame(0.1, 1), frame(0.2, 2)])
    pick = queue.pick(0.125)
    assert pick is not None
    assert (pick.a.serial, pick.b.serial if pick.b else None) == (1, 2)
    assert pick.weight == pytest.approx(0.25)
    assert len(queue) == 2, "frames before 'a' can never be shown again"


def test_pick_holds_the_newest_frame_when_generation_is_behind() -> None:
    queue = FrameQueue(8)
    queue.put([frame(0.0, 0), frame(0.1, 1)])
    pick = queue.pick(5.0)
    assert pick is not None and pick.a.serial == 1 and pick.b is None


def test_pick_before_the_first_frame_shows_it_and_empty_gives_none() -> None:
    queue = FrameQueue(4)
    assert queue.pick(1.0) is None
    queue.put([frame(2.0, 0), frame(3.0, 1)])
    pick = queue.pick(1.0)
    assert pick is not None and pick.a.serial == 0 and pick.b is None


def test_queue_is_bounded() -> None:
    queue = FrameQueue(4)
    queue.put([frame(i / 60, i) for i in range(100)])
    assert len(queue) == 4
    newest = queue.pick(99 / 60)
    assert newest is not None and newest.a.serial == 99


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("value_range", [(-1.0, 1.0), (0.0, 1.0), (0.0, 255.0)])
def test_conventions_round_trip(layout: str, value_range: tuple[float, float]) -> None:
    unit = np.random.default_rng(1).random((2, 3, 4, 5), dtype=np.float32)
    converted = from_unit(unit, layout, value_range)
    assert converted.shape == ((2, 3, 4, 5) if layout == "NCHW" else (2, 4, 5, 3))
    assert converted.min() >= value_range[0] and converted.max() <= value_range[1]
    np.testing.assert_allclose(to_unit(converted, layout, value_range), unit, atol=1e-5)


def test_rgb8_rounds_clips_and_is_hwc() -> None:
    unit = np.array([-0.5, 0.0, 0.5, 1.0, 1.5, 0.002], np.float32).reshape(1, 3, 1, 2)
    pixels = to_rgb8(unit)
    assert pixels.shape == (1, 1, 2, 3) and pixels.dtype == np.uint8
    assert pixels[0, 0].tolist() == [[0, 128, 255], [0, 255, 1]]


def test_invalidate_drops_frames_and_refuses_those_begun_before() -> None:
    queue = FrameQueue(8)
    epoch = queue.epoch
    assert queue.put([frame(0.0, 0), frame(0.1, 1)], epoch)
    queue.invalidate()
    assert len(queue) == 0 and queue.pick(0.05) is None
    assert not queue.put([frame(0.2, 2)], epoch), "made before the cut"
    assert queue.put([frame(0.2, 3)], queue.epoch) and len(queue) == 1


def test_waiting_for_invalidation_wakes_at_once() -> None:
    queue = FrameQueue(4)
    epoch = queue.epoch
    threading.Timer(0.05, queue.invalidate).start()
    started = time.monotonic()
    queue.wait_for_invalidation(epoch, 5.0)
    assert time.monotonic() - started < 2.0
    started = time.monotonic()
    queue.wait_for_invalidation(queue.epoch, 0.05)
    assert time.monotonic() - started >= 0.04, "without a cut it sleeps the whole timeout"
