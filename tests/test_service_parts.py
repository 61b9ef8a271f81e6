"""The service's small parts on their own: the dimmer's fades, where logs go, the health
record and how ``installation status`` reads it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from service_helpers import ended_pid

from installation.service.dimmer import Dimmer
from installation.service.health import (
    SERVICE_DIR,
    STATUS_NAME,
    find_status_file,
    format_status,
    is_current,
    read_status,
    status_file,
    write_status,
)


def test_dimmer_fades_at_a_steady_pace_and_reverses_smoothly() -> None:
    now = [100.0]
    dimmer = Dimmer(1.0, clock=lambda: now[0])
    assert dimmer.level() == 1.0 and dimmer.settled()
    dimmer.fade_to(0.0, 2.0)
    now[0] += 0.5
    assert dimmer.level() == pytest.approx(0.75) and not dimmer.settled()
    dimmer.fade_to(1.0, 2.0)  # back up from 0.75: a quarter of a whole fade, 0.5 s
    assert dimmer.level() == pytest.approx(0.75)
    now[0] += 0.25
    assert dimmer.level() == pytest.approx(0.875)
    now[0] += 0.25
    assert dimmer.level() == 1.0 and dimmer.settled()
    dimmer.fade_to(0.0, 0.0)
    assert dimmer.level() == 0.0


def handler_in_child(environ: dict[str, str], stderr_path: Path) -> str:
    """The class of the root handler a real child process configures, its stderr a file."""
    code = (
        "import logging, sys\n"
        "from installation.service.journal import configure_logging\n"
        "configure_logging(False)\n"
        "print(type(logging.getLogger().handlers[0]).__name__)\n"
    )
    with stderr_path.open("w") as stderr:
        completed = subprocess.run(
            [sys.executable, "-c", code],
            env=environ,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            check=True,
        )
    return completed.stdout.strip()


def test_logs_go_to_the_journal_only_when_stderr_is_the_journal(tmp_path: Path) -> None:
    pytest.importorskip("systemd.journal", reason="systemd-python is not installed")
    stream = tmp_path / "stream"
    stream.touch()
    info = os.stat(stream)
    environ = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    assert handler_in_child(environ, stream) == "StreamHandler"
    environ["JOURNAL_STREAM"] = f"{info.st_dev}:{info.st_ino}"
    assert handler_in_child(environ, stream) == "JournalHandler"
    # A JOURNAL_STREAM inherited from a parent whose stderr went elsewhere does not count.
    assert handler_in_child(environ, tmp_path / "other") == "StreamHandler"


def record(pid: int, updated: float) -> dict[str, object]:
    return {
        "pid": pid,
        "state": "playing",
        "show": "/opt/installation/show/show.toml",
        "title": "Imaginary faces",
        "backend": "onnxruntime-cpu",
        "stages": {"used": 1, "of": 2, "quality": "adaptive"},
        "scene": "dawn",
        "started": updated - 90061,
        "updated": updated,
        "uptime": 90061.0,
        "fps": {"target": 60.0, "shown": 59.94, "generated": 31.2},
        "frames": {"shown": 5400000, "dropped": 12, "generated": 2800000, "skipped": 340},
        "hours": {"open": True, "next_change": "2026-06-02T18:00"},
        "restarts": {"worker": 2, "process": 1},
        "last_error": {"at": updated - 3600, "message": "inference worker failed"},
        "watchdog": True,
    }


def test_status_record_round_trip_and_report(tmp_path: Path) -> None:
    path = tmp_path / "run" / "status.json"
    now = time.time()
    write_status(path, record(os.getpid(), now))
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in path.parent.iterdir()] == ["status.json"], "no temporary left"
    report = format_status(read_status(path), now + 1)
    lines = report.splitlines()
    assert lines[0] == f"installation: playing, pid {os.getpid()}, up 1 d 01:01:01"
    assert "  scene       dawn" in lines
    assert (
        "  frames/s    59.9 shown (target 60), 31.2 generated on onnxruntime-cpu, "
        "1 of 2 stages (adaptive)"
    ) in lines
    assert "  frames      5400000 shown, 12 dropped (0.00%), 340 skipped by inference" in lines
    assert "  hours       open, closes Tue 2026-06-02 18:00" in lines
    assert "  restarts    2 of the inference worker, 1 of the program" in lines
    assert lines[-2].startswith("  last error  ") and lines[-2].endswith("inference worker failed")


def test_stale_and_dead_records_say_so(tmp_path: Path) -> None:
    now = time.time()
    stale = record(os.getpid(), now - 40)
    assert not is_current(stale, now)
    assert format_status(stale, now).startswith(
        f"installation: NOT RESPONDING: pid {os.getpid()} exists but has not updated its "
        "status for 40 s"
    )
    dead = record(ended_pid(), now - 5)
    assert not is_current(dead, now)
    assert format_status(dead, now).startswith(
        f"installation: not running; pid {dead['pid']} ended about 5 s ago"
    )


def test_where_the_record_lives(tmp_path: Path) -> None:
    assert status_file({"RUNTIME_DIRECTORY": "/run/installation"}) == Path(
        "/run/installation/status.json"
    )
    assert status_file({"XDG_RUNTIME_DIR": "/run/user/1000"}) == Path(
        "/run/user/1000/installation/status.json"
    )
    if (SERVICE_DIR / STATUS_NAME).exists():
        pytest.skip("the installation service runs on this machine; its record comes first")
    environ = {"RUNTIME_DIRECTORY": str(tmp_path)}
    assert find_status_file(environ) is None
    write_status(tmp_path / STATUS_NAME, record(1, 0))
    assert find_status_file(environ) == tmp_path / STATUS_NAME
