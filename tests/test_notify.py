"""The sd_notify edge against a real unix datagram socket set as NOTIFY_SOCKET."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_helpers import NotifySocket

from installation.service.notify import Notifier, watchdog_interval

pytest.importorskip("systemd.daemon", reason="systemd-python (the 'kiosk' extra) is not installed")


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    receiver = NotifySocket(tmp_path)
    yield receiver
    receiver.close()


def wait_for(receiver: NotifySocket, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(receiver.messages) < count and time.monotonic() < deadline:
        time.sleep(0.01)


def test_messages_arrive_on_the_socket(
    notify_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sd_notify reads NOTIFY_SOCKET from the process environment, as under systemd.
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify_socket.path))
    monkeypatch.setenv("WATCHDOG_USEC", "20000000")
    notifier = Notifier.from_environment()
    assert notifier.enabled and notifier.watchdog_interval == 10.0
    notifier.ready("playing: scene dawn")
    notifier.watchdog()
    notifier.status("playing: scene dawn, 59.9 frames/s")
    notifier.stopping("stopping: fading out")
    wait_for(notify_socket, 4)
    assert [fields for _, fields in notify_socket.messages] == [
        {"READY": "1", "STATUS": "playing: scene dawn"},
        {"WATCHDOG": "1"},
        {"STATUS": "playing: scene dawn, 59.9 frames/s"},
        {"STOPPING": "1", "STATUS": "stopping: fading out"},
    ]


def test_without_systemd_nothing_is_sent(
    notify_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier.from_environment()
    assert not notifier.enabled and notifier.watchdog_interval is None
    notifier.ready("playing")
    notifier.watchdog()
    time.sleep(0.2)
    assert notify_socket.messages == []


def test_a_vanished_socket_is_not_the_show_s_problem(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    notifier = Notifier.from_environment()
    notifier.watchdog()
    notifier.watchdog()
    assert [r.getMessage() for r in caplog.records].count(
        "cannot notify systemd: [Errno 2] No such file or directory"
    ) == 1


@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        ({"WATCHDOG_USEC": "20000000"}, 10.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())}, 10.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}, None),  # meant for another
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_the_timeout_for_this_process(
    environ: dict[str, str], interval: float | None
) -> None:
    assert watchdog_interval(environ) == interval
