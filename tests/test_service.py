"""The service side of a real headless show: systemd notifications on a real socket, the
watchdog, worker failures and restarts, SIGTERM, opening hours.

Each test plays the default show in this process with the real worker, ONNX Runtime and SDL's
dummy driver; faults are caused through the runtime's own fault hook (installation.engine.faults),
inside the real pipeline.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from conftest import DEFAULT_SHOW
from service_helpers import NotifySocket, ended_pid

from installation.display import HeadlessDisplay
from installation.engine.faults import Faults, FaultyPipeline
from installation.engine.frames import Frame
from installation.engine.ladder import ladder_for
from installation.engine.supervisor import RestartPolicy
from installation.player import RunResult, play
from installation.score.hours import DAY, OpeningHours, Span
from installation.service import monitor
from installation.service.health import read_status, write_status
from installation.service.lifecycle import STOP_FADE, Service
from installation.service.monitor import ShowInfo
from installation.service.notify import Notifier
from installation.service.signals import RunSignals
from installation.session import load_parts


@dataclass(frozen=True)
class Shown:
    at: float  # time.monotonic() when presented
    serial: int  # of the newer frame in the picture
    brightness: float  # mean of the picture read back, 0..255


class TimedDisplay(HeadlessDisplay):
    """The real headless display, noting when each picture came and how bright it was."""

    def __init__(self) -> None:
        super().__init__((64, 36))
        self.shown: list[Shown] = []

    def present(self, a: Frame, b: Frame | None, weight: float, brightness: float = 1.0) -> None:
        super().present(a, b, weight, brightness)
        serial = (b or a).serial
        self.shown.append(Shown(time.monotonic(), serial, float(self.snapshot().mean())))


LEAD = 0.1  # seconds the worker generates ahead of the screen in these runs


def run(
    pipeline_faults: Faults, seconds: float, service: Service
) -> tuple[TimedDisplay, RunResult]:
    show, bundle, conductor = load_parts(DEFAULT_SHOW)
    pipeline = ladder_for(bundle, "onnxruntime-cpu", None, None, pipeline_faults).start()
    display = TimedDisplay()
    display.open("test")
    try:
        result = play(display, pipeline, conductor, show.display.fps, LEAD, seconds, service)
    finally:
        display.close()
        if isinstance(pipeline, FaultyPipeline):
            pipeline.release()
    return display, result


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    pytest.importorskip("systemd.daemon", reason="systemd-python (the 'kiosk' extra) is missing")
    receiver = NotifySocket(tmp_path)
    monkeypatch.setenv("NOTIFY_SOCKET", str(receiver.path))
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # ping every 0.2 s (the monitor: 0.25 s)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield receiver
    receiver.close()


def service(**kwargs: object) -> Service:
    return Service(ShowInfo("show.toml", "test"), **kwargs)  # type: ignore[arg-type]


def test_ready_comes_with_the_first_frame_not_before(notify_socket: NotifySocket) -> None:
    # The first inference hangs until released: until then nothing is on screen, so systemd
    # must hear neither READY nor a watchdog ping however long the program has been up.
    faults = Faults(hang_at=0.0)
    _show, bundle, conductor = load_parts(DEFAULT_SHOW)
    pipeline = ladder_for(bundle, "onnxruntime-cpu", None, None, faults).start()
    assert isinstance(pipeline, FaultyPipeline)
    released: list[float] = []

    def release_later() -> None:
        time.sleep(1.0)
        released.append(time.monotonic())
        pipeline.release()

    threading.Thread(target=release_later, daemon=True).start()
    display = TimedDisplay()
    display.open("test")
    notifier = Notifier.from_environment()
    try:
        play(display, pipeline, conductor, 60, 0.1, 2.5, service(notifier=notifier))
    finally:
        display.close()
        pipeline.release()
    first_frame = display.shown[0].at
    [ready] = notify_socket.times_of("READY", "1")
    assert first_frame > released[0], "nothing could be shown before the worker was released"
    assert ready >= first_frame
    assert ready - first_frame < 0.5
    pings = notify_socket.times_of("WATCHDOG", "1")
    assert len(pings) >= 4 and min(pings) >= first_frame
    assert notify_socket.values_of("STOPPING") == ["1"]


def test_watchdog_pings_stop_when_the_worker_is_stuck(notify_socket: NotifySocket) -> None:
    # Inference hangs for good 1 s after the engine started; the display goes on.
    limit = 0.5
    display, result = run(
        Faults(hang_at=1.0), 3.0, service(notifier=Notifier.from_environment(), stall_limit=limit)
    )
    assert result.error is None
    last_new_frame = next(s.at for s in display.shown if s.serial == display.shown[-1].serial)
    pings = notify_socket.times_of("WATCHDOG", "1")
    assert len([t for t in pings if t < last_new_frame]) >= 2, "pinged while healthy"
    assert max(pings) < last_new_frame + limit + 0.5, "kept pinging for a stuck worker"
    assert display.shown[-1].at - last_new_frame > 1.2, "the display held the picture"
    assert any(v.startswith("inference stuck") for v in notify_socket.values_of("STATUS"))


def test_a_failed_worker_is_restarted_while_the_screen_holds() -> None:
    display, result = run(Faults(crash_at=(1.0,)), 3.0, service())
    assert result.error is None
    assert result.restarts == 1
    first_seen: dict[int, float] = {}
    for shown in display.shown:
        first_seen.setdefault(shown.serial, shown.at)
    arrivals = np.array(sorted(first_seen.values()))
    outage = int(np.argmax(np.diff(arrivals)))
    # The worker is down for at least the first restart delay; the frames it had already
    # queued (up to LEAD ahead) cover the start of that time on screen.
    shortest_outage = RestartPolicy().first_delay - LEAD
    assert np.diff(arrivals)[outage] > shortest_outage, "no new frames while the worker was down"
    # Against the outage, not a fixed time, so a busy machine cannot fail it.
    gaps = np.diff([s.at for s in display.shown])
    assert gaps.max() < np.diff(arrivals)[outage], "the display never stopped presenting"
    assert len(arrivals) - outage > 5, "new frames came after the restart"
    assert min(s.brightness for s in display.shown) > 20, "no black or blank picture"
    serials = [s.serial for s in display.shown]
    assert serials == sorted(serials), "the restarted worker reuses no cached frame serial"


def test_sigterm_fades_to_black_and_ends_the_show() -> None:
    threading.Timer(1.5, signal.raise_signal, (signal.SIGTERM,)).start()
    previous = signal.getsignal(signal.SIGTERM)
    started = time.monotonic()
    with RunSignals() as signals:
        display, result = run(Faults(), 30.0, service(signals=signals))
    took = time.monotonic() - started
    assert result.error is None
    # At least the fade after the signal; far less than the 30 s the show was asked to run
    # (the bound is loose so that a loaded machine cannot fail it).
    assert 1.5 + STOP_FADE - 0.1 < took < 15.0
    assert signal.getsignal(signal.SIGTERM) is previous, "the handler was put back"
    levels = [s.brightness for s in display.shown if s.at > display.shown[-1].at - STOP_FADE]
    assert levels[0] > 40 and levels[-1] < 2, "faded to black"
    assert all(b <= a + 1 for a, b in itertools.pairwise(levels)), "monotonically"


class MovableClock:
    """Local wall-clock time that a test moves on by hand."""

    def __init__(self, moment: str) -> None:
        self.moment = datetime.fromisoformat(moment)

    def __call__(self) -> datetime:
        return self.moment


def test_outside_opening_hours_black_and_asleep_then_back_by_itself() -> None:
    # Open 10:00-18:00 every day; the run starts at 17:59, closes, and opens again.
    daily = (Span(10 * 60, 18 * 60),)
    hours = OpeningHours(weekly=(daily,) * 7, fade=0.3)
    clock = MovableClock("2026-06-02 17:59:00")
    marks: dict[str, float] = {}

    def script() -> None:
        time.sleep(1.0)
        clock.moment = datetime.fromisoformat("2026-06-02 18:00:00")
        marks["closed"] = time.monotonic()
        time.sleep(2.5)
        clock.moment = datetime.fromisoformat("2026-06-03 10:00:00")
        marks["opened"] = time.monotonic()

    threading.Thread(target=script, daemon=True).start()
    display, result = run(Faults(), 5.5, service(hours=hours, wall_clock=clock))
    assert result.error is None
    closed, opened = marks["closed"], marks["opened"]
    before = [s for s in display.shown if s.at < closed]
    during = [s for s in display.shown if closed + 2.0 < s.at < opened]
    after = [s for s in display.shown if s.at > opened + 1.5]
    assert min(s.brightness for s in before) > 20
    assert during and max(s.brightness for s in during) < 1, "black while closed"
    assert len({s.serial for s in during}) == 1, "inference slept: no new frames"
    assert min(s.brightness for s in after) > 20, "lit again after opening"
    assert len({s.serial for s in after}) > 5, "inference resumed"
    # Paces in the same run, not against the wall clock: a busy machine slows both alike.
    closed_pace = len([s for s in display.shown if closed < s.at < opened]) / (opened - closed)
    pace = len(display.shown) / (display.shown[-1].at - display.shown[0].at)
    assert closed_pace > 0.8 * pace, "the display kept its pace throughout"


def test_a_show_that_opens_later_starts_black() -> None:
    hours = OpeningHours(weekly=(((Span(10 * 60, DAY)),),) * 7, fade=0.3)
    display, _ = run(
        Faults(), 1.5, service(hours=hours, wall_clock=MovableClock("2026-06-02 06:00"))
    )
    assert max(s.brightness for s in display.shown) < 1


def test_the_next_instance_counts_restarts_and_keeps_the_last_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # systemd keeps the RuntimeDirectory when it restarts the service: the record there was
    # left by the instance that ended.
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path))
    path = tmp_path / "status.json"
    run(Faults(), 0.5, service(status_path=path))
    previous = read_status(path)
    previous.update(pid=ended_pid(), state="failed", last_error={"at": 1.0, "message": "x"})
    write_status(path, previous)
    run(Faults(), 0.5, service(status_path=path))
    record = read_status(path)
    assert record["restarts"]["process"] == 1
    assert record["last_error"] == {"at": 1.0, "message": "x"}
    assert record["state"] == "stopped" and record["frames"]["shown"] > 0


def test_a_failed_status_write_is_retried_and_logged_once_each_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(monitor, "REPORT_INTERVAL", 0.25)
    path = tmp_path / "status.json"
    # A folder where the writer's temporary file goes: creating it fails (EISDIR) as on a
    # full disk, whoever runs the test, until the folder is removed.
    blocker = tmp_path / f".status.json.{os.getpid()}.tmp"
    blocker.mkdir()
    seen: list[str] = []

    def disk_frees_up() -> None:
        deadline = time.monotonic() + 20
        while "cannot write the status file" not in caplog.text:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.6)  # two more reports fail meanwhile
        blocker.rmdir()
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.append(read_status(path)["state"])

    freeing = threading.Thread(target=disk_frees_up)
    freeing.start()
    with caplog.at_level(logging.INFO):
        run(Faults(), 3.0, service(status_path=path))
    freeing.join()
    assert seen == ["playing"], "the record came back while the show played"
    assert caplog.text.count("cannot write the status file") == 1
    assert caplog.text.count(f"the status file {path} is written again") == 1
    assert read_status(path)["state"] == "stopped"


@pytest.mark.parametrize(
    "damage",
    [
        {"restarts": ["process", 3]},
        {"last_error": "disk full"},
        {"pid": -1},
        "{not json",
    ],
)
def test_a_damaged_previous_record_is_ignored(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    damage: dict[str, object] | str,
) -> None:
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path))
    path = tmp_path / "status.json"
    run(Faults(), 0.3, service(status_path=path))
    if isinstance(damage, str):
        path.write_text(damage)
    else:
        write_status(path, {**read_status(path), "pid": ended_pid(), **damage})
    run(Faults(), 0.3, service(status_path=path))
    record = read_status(path)
    assert record["restarts"]["process"] == 0 and record["last_error"] is None
    assert record["frames"]["shown"] > 0, "the show started normally"
    [line] = [r.getMessage() for r in caplog.records if "previous status" in r.getMessage()]
    assert line.startswith(f"ignoring the previous status: {path}: ")
