"""The systemd units in deploy/ pass ``systemd-analyze verify`` and are hardened.

systemd-analyze checks that ExecStart's program exists, so the units are verified with their
install-time path (/opt/installation/venv/bin/installation) pointed at this environment's
``installation`` command; every other line is verified as committed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from installation.service.monitor import STALL_LIMIT

DEPLOY = ROOT / "deploy"
UNITS = ("installation.service", "installation-display.service")
INSTALLED = "/opt/installation/venv/bin/installation"
MAX_EXPOSURE = 2.5

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is missing (Debian package 'systemd')",
)


@pytest.fixture
def units(tmp_path: Path) -> Path:
    command = Path(sys.executable).with_name("installation")
    assert command.is_file(), "the project is installed in this environment"
    for name in UNITS:
        text = (DEPLOY / name).read_text()
        (tmp_path / name).write_text(text.replace(INSTALLED, str(command)))
    assert INSTALLED in (DEPLOY / UNITS[0]).read_text()
    return tmp_path


def analyze(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", *args], cwd=folder, capture_output=True, text=True, timeout=60
    )


@needs_systemd_analyze
def test_units_verify(units: Path) -> None:
    completed = analyze(units, "verify", *(f"./{name}" for name in UNITS))
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == "", completed.stderr


@needs_systemd_analyze
def test_the_show_service_is_hardened(units: Path) -> None:
    completed = analyze(units, "security", "--offline=true", f"./{UNITS[0]}")
    assert completed.returncode == 0, completed.stderr
    exposure = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", completed.stdout)
    assert exposure is not None, completed.stdout
    assert float(exposure.group(1)) <= MAX_EXPOSURE


def setting(text: str, key: str) -> str:
    match = re.search(f"^{key}=(.*)$", text, re.MULTILINE)
    assert match is not None, f"{key}= is missing"
    return match.group(1)


def test_the_show_service_is_what_the_runtime_expects() -> None:
    text = (DEPLOY / UNITS[0]).read_text()
    assert setting(text, "Type") == "notify"
    assert setting(text, "Restart") == "always"
    assert setting(text, "RuntimeDirectory") == "installation"
    assert setting(text, "ExecStart").startswith(INSTALLED + " run ")
    assert int(setting(text, "WatchdogSec")) > STALL_LIMIT, "a stuck worker is noticed first"
    assert int(setting(text, "TimeoutStopSec")) > 2, "room for the fade and exit in 2 s"
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome"):
        assert setting(text, key) == "yes"
    assert setting(text, "ProtectSystem") == "strict"
    assert setting(text, "DevicePolicy") == "closed"


def test_setup_script_is_valid_shell() -> None:
    completed = subprocess.run(
        ["sh", "-n", str(DEPLOY / "setup.sh")], capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr
