"""ONNX Runtime started the way the service starts it: no telemetry device ID, no warning."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def import_runtime(home: str) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME", "ORT_DISABLE_TELEMETRY")
    }
    return subprocess.run(
        [sys.executable, "-c", "import installation.engine.backend"],
        env={**environ, "HOME": home},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_unwritable_home_gives_no_telemetry_warning() -> None:
    # A folder nobody can create, not even root: what HOME=/nonexistent is to a service user.
    completed = import_runtime("/proc/no-such-home")
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""


def test_no_device_id_is_written_to_a_writable_home(tmp_path: Path) -> None:
    completed = import_runtime(str(tmp_path))
    assert completed.returncode == 0, completed.stderr
    assert list(tmp_path.iterdir()) == []
