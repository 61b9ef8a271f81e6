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
