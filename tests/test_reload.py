"""SIGHUP reloads the show file of a running ``installation run``; a broken edit is logged
with file, line and key, and the show plays on to a clean exit."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import DEFAULT_BUNDLE

SHOW = f"""
bundle = "{DEFAULT_BUNDLE}"

[osc]
port = 0

[[scenes]]
name = "a"
seed = 1
"""


def test_sighup_reloads_and_keeps_playing_through_a_broken_edit(tmp_path: Path) -> None:
    path = tmp_path / "show.toml"
    path.write_text(SHOW)
    process = subprocess.Popen(
        [sys.executable, "-m", "installation", "run", str(path), "--headless", "--duration", "4"],
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stderr is not None
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stderr], daemon=True
    ).start()
    seen: list[str] = []

    def wait_for(text: str) -> str:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} in the log:\n{''.join(seen)}")

    try:
        wait_for("osc: listening on")
        path.write_text(SHOW.replace('name = "a"', 'name = "b"'))
        process.send_signal(signal.SIGHUP)
        wait_for("scene 1 'b' begins")
        wait_for(f"reloaded {path}")
        path.write_text(SHOW.replace("seed = 1", "seed = 1\ntruncation = 7"))
        process.send_signal(signal.SIGHUP)
        failed = wait_for("reload failed")
        assert f"{path}:10: scenes[0].truncation: expected 0 to 1, got 7" in failed
        assert process.wait(timeout=15) == 0
    finally:
        process.kill()
    assert "Traceback" not in "".join(seen)
