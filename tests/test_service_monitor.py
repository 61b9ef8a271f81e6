"""The service thread outlives its own bugs without flooding the journal: a bug that repeats at
every tick (four a second, for weeks) gives one traceback when it begins, and another only when
it comes back after a good tick or as a different error."""

from __future__ import annotations

import logging
import threading

import pytest

from installation.engine.supervisor import WorkerSupervisor
from installation.score.hours import ALWAYS_OPEN
from installation.service.dimmer import Dimmer
from installation.service.lifecycle import local_now
from installation.service.monitor import Monitor, ServiceSettings, ShowInfo
from installation.service.notify import Notifier


class Loop:
    """Loop statistics whose reading fails while ``failure`` is set, as a bug would."""

    budget = 1 / 60

    def __init__(self) -> None:
        self.failure: Exception | None = None

    @property
    def shown(self) -> int:
        if self.failure is not None:
            raise self.failure
        return 0


def test_a_repeating_tick_error_is_logged_once_until_it_changes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = ServiceSettings(
        ShowInfo("show.toml", "test"),
        ALWAYS_OPEN,
        Notifier(),
        None,
        lambda: {"backend": "-", "scene": "-"},
        local_now,
    )
    loop = Loop()
    supervisor = WorkerSupervisor(lambda: None)  # type: ignore[arg-type,return-value]
    monitor = Monitor(settings, loop, supervisor, Dimmer(1.0), threading.Event())

    def tracebacks(ticks: int) -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.ERROR, "installation.service.monitor"):
            for _ in range(ticks):
                monitor.tick()
        return [str(r.exc_info[1]) for r in caplog.records if r.exc_info]

    loop.failure = KeyError("fps")
    assert tracebacks(40) == ["'fps'"]
    loop.failure = ValueError("negative")
    assert tracebacks(40) == ["negative"]
    loop.failure = None
    assert tracebacks(3) == []
    loop.failure = ValueError("negative")
    assert tracebacks(3) == ["negative"]


class Shown:
    budget = 1 / 60
    shown = 0


def watching(loop: Shown, now: list[float]) -> Monitor:
    """A monitor of ``loop`` on a clock that reads ``now[0]``, always open, telling nobody."""
    settings = ServiceSettings(
        ShowInfo("show.toml", "test"),
        ALWAYS_OPEN,
        Notifier(),
        None,
        lambda: {"backend": "-", "scene": "-"},
        local_now,
    )
    supervisor = WorkerSupervisor(lambda: None)  # type: ignore[arg-type,return-value]
    return Monitor(settings, loop, supervisor, Dimmer(1.0), threading.Event(), lambda: now[0])


def test_health_follows_the_frames_on_screen_and_the_last_record() -> None:
    now = [100.0]
    loop = Shown()
    monitor = watching(loop, now)

    def tick(frames: int, seconds: float = 0.25) -> tuple[bool, str]:
        now[0] += seconds
        loop.shown += frames
        monitor.tick()
        return monitor.health()

    assert monitor.latest() is None
    assert tick(0) == (False, "starting: no frame on screen yet")
    assert tick(15) == (True, "ok")
    for _ in range(12):
        assert tick(0) == (True, "ok"), "a moment without frames is no outage"
    assert tick(0, 1.0) == (False, "display: no frame for 4 s")
    assert tick(15) == (True, "ok")
    now[0] += 5.0
    assert monitor.health() == (False, "service: no check for 5 s"), "the monitor itself stopped"
    tick(15, 2.0)
    record = monitor.latest()
    assert record is not None and record["frames"]["shown"] == loop.shown


def test_dropped_frames_never_go_back() -> None:
    # Whether the loop is just before or after a present when the count is taken moves the
    # estimate by a frame; /metrics exports it as a counter, which must never go back.
    now = [100.0]
    loop = Shown()
    loop.budget = 0.25  # exact in binary: 4 refreshes a second
    monitor = watching(loop, now)
    loop.shown = 1
    monitor.tick()  # the first frame, at 100 s
    counts = []
    for frames in (2, 5, 5, 2, 1):  # 4 refreshes due each second
        now[0] += 1.0
        loop.shown += frames
        counts.append(monitor.dropped(loop.shown, now[0]))
    assert counts == [2, 2, 2, 2, 5]
