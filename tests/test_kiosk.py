"""``installation run`` as systemd runs it: a real child process, a real notification socket,
a real SIGTERM; ``installation status`` reading the health record of the running show."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import DEFAULT_SHOW
from service_helpers import NotifySocket, ended_pid

from installation.engine.faults import FAULTS_ENV


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    pytest.importorskip("systemd.daemon", reason="systemd-python (the 'kiosk' extra) is missing")
    receiver = NotifySocket(tmp_path)
    yield receiver
    receiver.close()


def environment(runtime: Path, **extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", FAULTS_ENV)}
    return {**environ, "RUNTIME_DIRECTORY": str(runtime), "SDL_VIDEODRIVER": "dummy", **extra}


def installation(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "installation", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def wait_for_record(runtime: Path, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            record = json.loads((runtime / "status.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            record = None
        if record is not None and check(record):
            return record
        time.sleep(0.1)
    raise AssertionError(f"the health record never matched; last: {record}")


def test_sigterm_exits_zero_before_systemd_would_kill_it(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    runtime = tmp_path / "run"
    environ = environment(runtime, NOTIFY_SOCKET=str(notify_socket.path), WATCHDOG_USEC="400000")
    child = subprocess.Popen(
        [sys.executable, "-m", "installation", "run", "--headless", str(DEFAULT_SHOW)],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not notify_socket.times_of("READY") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert notify_socket.times_of("READY"), "READY=1 never came"
        record = wait_for_record(runtime, lambda r: r["state"] == "playing")
        stages = record["stages"]
        assert (stages["of"], stages["quality"]) == (2, "adaptive") and stages["used"] in (1, 2)
        status = installation(environ, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.startswith(f"installation: playing, pid {child.pid}, up ")
        assert f"generated on {record['backend']}, " in status.stdout
        assert " of 2 stages (adaptive)" in status.stdout
        sent = time.monotonic()
        child.send_signal(signal.SIGTERM)
        returncode = child.wait(timeout=10)
        took = time.monotonic() - sent
    finally:
        child.kill()
        _out, stderr = child.communicate()
    assert returncode == 0, stderr
    # The fade takes 0.8 s; what must hold on any machine is the unit's stop timeout, after
    # which systemd would kill the show mid-fade.
    assert took < stop_timeout(), f"took {took:.1f} s"
    assert "Traceback" not in stderr
    assert notify_socket.times_of("WATCHDOG", "1")
    [stopping] = notify_socket.times_of("STOPPING", "1")
    assert sent <= stopping < sent + 0.5, "STOPPING=1 came on the way out"
    after = installation(environ, "status")
    assert after.returncode == 1
    assert after.stdout.startswith(f"installation: not running; pid {child.pid} ended about")


def test_reloaded_hours_apply_and_a_broken_reload_keeps_the_show(
    tmp_path: Path, show_copy: Path
) -> None:
    runtime = tmp_path / "run"
    child = spawn_run(runtime, show_copy)
    try:
        wait_for_record(runtime, lambda r: r["state"] == "playing")
        original = show_copy.read_text()
        show_copy.write_text(original + '\n[hours]\ndaily = ["nine to five"]\n')
        line = len(show_copy.read_text().splitlines())
        child.send_signal(signal.SIGHUP)
        record = wait_for_record(runtime, lambda r: r["last_error"] is not None)
        assert f"{show_copy}:{line}: hours.daily: expected times" in record["last_error"]["message"]
        assert record["state"] == "playing" and record["hours"]["open"]
        show_copy.write_text(original + "\n[hours]\nfade = 0.5\n")  # closed every day
        child.send_signal(signal.SIGHUP)
        wait_for_record(runtime, lambda r: r["state"] == "closed" and not r["hours"]["open"])
        child.send_signal(signal.SIGTERM)
        returncode = child.wait(timeout=10)
    finally:
        child.kill()
        _out, stderr = child.communicate()
    assert returncode == 0, stderr
    assert "reload failed, the show plays on unchanged" in stderr


def test_repeated_worker_failures_exit_non_zero(tmp_path: Path) -> None:
    environ = environment(tmp_path, **{FAULTS_ENV: "worker-crash"})
    completed = installation(environ, "run", "--headless", "--duration", "30", str(DEFAULT_SHOW))
    assert completed.returncode == 1
    assert "restarting the inference worker (restart 3)" in completed.stderr
    assert "inference failed 4 times within 60 s; giving up" in completed.stderr
    assert "stopped because the inference worker failed" in completed.stderr


def test_gpu_failing_at_start_falls_back_to_the_cpu(tmp_path: Path) -> None:
    completed = installation(
        environment(tmp_path, **{FAULTS_ENV: "gpu-start"}), "check", str(DEFAULT_SHOW)
    )
    assert completed.returncode == 0, completed.stderr
    assert "INFERENCE RUNS ON ONNXRUNTIME-CPU, NOT ON THE BEST BACKEND" in completed.stderr
    assert "onnxruntime-cuda: deliberate fault: gpu-start" in completed.stderr
    assert completed.stdout.startswith("ok: ")
    assert completed.stdout.rstrip().endswith("on onnxruntime-cpu")


def test_a_mistyped_fault_is_one_line_and_exit_two(tmp_path: Path) -> None:
    completed = installation(
        environment(tmp_path, **{FAULTS_ENV: "gpu"}), "check", str(DEFAULT_SHOW)
    )
    assert completed.returncode == 2
    assert completed.stderr.splitlines()[-1].startswith(
        f"installation: error: {FAULTS_ENV}: unknown fault 'gpu': expected gpu-start"
    )
    assert "Traceback" not in completed.stderr


def test_status_without_a_running_show(tmp_path: Path) -> None:
    completed = installation(environment(tmp_path), "status", "--file", str(tmp_path / "none"))
    assert completed.returncode == 2
    assert completed.stderr == f"installation: error: {tmp_path / 'none'}: no status file\n"


def test_runs_without_systemd_python(tmp_path: Path) -> None:
    # As on a machine without the 'kiosk' extra: importing systemd fails.
    notify_socket = NotifySocket(tmp_path)
    code = (
        "import sys\n"
        "sys.modules['systemd'] = None\n"
        "from installation.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code, "run", "--headless", "--duration", "1", str(DEFAULT_SHOW)],
        env=environment(tmp_path, NOTIFY_SOCKET=str(notify_socket.path)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    notify_socket.close()
    assert completed.returncode == 0, completed.stderr
    assert "NOTIFY_SOCKET is set but systemd-python is not installed" in completed.stderr
    assert notify_socket.messages == []


def handles(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler for ``signum`` (its SigCgt mask in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def spawn_run(runtime: Path, show: Path) -> subprocess.Popen[str]:
    """``installation run --headless`` of ``show`` as a child, its health record in ``runtime``."""
    return subprocess.Popen(
        [sys.executable, "-m", "installation", "run", "--headless", str(show)],
        env=environment(runtime),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_run(runtime: Path, show: Path) -> subprocess.Popen[str]:
    child = spawn_run(runtime, show)
    deadline = time.monotonic() + 15
    while not handles(child.pid, signal.SIGHUP):
        assert time.monotonic() < deadline, "installation run never handled SIGHUP"
        time.sleep(0.001)
    return child


def with_osc_port(show: Path, port: int) -> Path:
    text = show.read_text()
    assert "\nport = 9000\n" in text
    show.write_text(text.replace("\nport = 9000\n", f"\nport = {port}\n"))
    return show


def test_signals_at_start_up_do_not_end_the_show_uncleanly(tmp_path: Path, show_copy: Path) -> None:
    # SIGHUP as soon as the process handles it, while it still loads the bundle: remembered,
    # and the show file read again once the reloader is up.
    runtime = tmp_path / "run"
    child = start_run(runtime, with_osc_port(show_copy, 0))
    try:
        child.send_signal(signal.SIGHUP)
        record = wait_for_record(runtime, lambda r: r["state"] == "playing")
        assert record["osc"]["state"] == "listening"
        assert record["osc"]["address"].startswith("127.0.0.1:")
        child.send_signal(signal.SIGTERM)
        returncode = child.wait(timeout=10)
    finally:
        child.kill()
        _out, stderr = child.communicate()
    assert returncode == 0, stderr
    assert "Traceback" not in stderr
    early = stderr.index(f"reload requested during start-up: reloading {show_copy}")
    assert stderr.index(f"reloaded {show_copy}: 1 scene(s)") > early
    # SIGTERM before the show plays ends the start-up at once, cleanly.
    child = start_run(tmp_path / "run2", DEFAULT_SHOW)
    child.send_signal(signal.SIGTERM)
    _out, stderr = child.communicate(timeout=10)
    assert child.returncode == 0, stderr
    assert stderr.rstrip().endswith("stop requested during start-up")


def test_more_stop_signals_during_the_fade_still_end_with_exit_zero(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    child = start_run(runtime, DEFAULT_SHOW)
    sent = 0
    try:
        wait_for_record(runtime, lambda r: r["state"] == "playing")
        # Signals every 20 ms until the process has gone: during the fade, and while it
        # joins its threads and exits.
        while child.poll() is None:
            child.send_signal(signal.SIGINT if sent % 2 else signal.SIGTERM)
            sent += 1
            time.sleep(0.02)
    finally:
        child.kill()
        _out, stderr = child.communicate()
    assert child.returncode == 0, stderr
    assert sent >= 3
    assert "Traceback" not in stderr
    assert "stop requested again: cutting the fade short" in stderr


def test_status_says_when_osc_cannot_listen_and_minds_a_closed_pipe(
    tmp_path: Path, show_copy: Path
) -> None:
    runtime = tmp_path / "run"
    environ = environment(runtime)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        child = start_run(runtime, with_osc_port(show_copy, port))
        try:
            wait_for_record(runtime, lambda r: r["state"] == "playing")
            status = installation(environ, "status")
            # The reader of a pipe has gone before the first line: no traceback, no noise.
            reader, writer = os.pipe()
            os.close(reader)
            closed = [
                subprocess.run(
                    [sys.executable, "-m", "installation", "status", *json_flag],
                    env=environ,
                    stdout=writer,
                    stderr=subprocess.PIPE,
                    text=True,
                    timeout=60,
                )
                for json_flag in ([], ["--json"])
            ]
            os.close(writer)
            child.send_signal(signal.SIGTERM)
            returncode = child.wait(timeout=10)
        finally:
            child.kill()
            child.communicate()
    assert returncode == 0
    assert status.returncode == 0, status.stderr
    headline, *rows = status.stdout.splitlines()
    assert headline.endswith(", OSC NOT LISTENING"), headline
    assert f"  osc         NOT LISTENING on 127.0.0.1:{port} (port in use?" in "\n".join(rows)
    assert [(c.returncode, c.stderr) for c in closed] == [(141, ""), (141, "")]


def test_status_of_a_damaged_record_is_one_line(tmp_path: Path) -> None:
    record = {key: None for key in ("state", "show", "title", "backend", "scene", "hours")}
    record.update(pid=ended_pid(), updated=0, uptime=0, fps=[], frames={}, restarts=[])
    path = tmp_path / "status.json"
    path.write_text(json.dumps({**record, "last_error": None}))
    completed = installation(environment(tmp_path), "status", "--file", str(path))
    assert (completed.returncode, completed.stdout) == (2, "")
    assert completed.stderr == (
        f"installation: error: {path}: a damaged status file "
        "(TypeError: list indices must be integers or slices, not str)\n"
    )


def stop_timeout() -> float:
    """The seconds systemd gives the show to stop (``TimeoutStopSec`` of its unit)."""
    unit = Path(__file__).parent.parent / "deploy" / "installation.service"
    [line] = [line for line in unit.read_text().splitlines() if line.startswith("TimeoutStopSec=")]
    return float(line.split("=", 1)[1])
