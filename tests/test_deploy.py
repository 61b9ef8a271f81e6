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
@pytest.mark.parametrize("name", UNITS)
def test_both_units_are_hardened(units: Path, name: str) -> None:
    completed = analyze(units, "security", "--offline=true", f"./{name}")
    assert completed.returncode == 0, completed.stderr
    exposure = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", completed.stdout)
    assert exposure is not None, completed.stdout
    assert float(exposure.group(1)) <= MAX_EXPOSURE


def setting(text: str, key: str) -> str:
    match = re.search(f"^{key}=(.*)$", text, re.MULTILINE)
    assert match is not None, f"{key}= is missing"
    return match.group(1)


def test_the_show_comes_back_with_its_compositor() -> None:
    """Stopped and restarted with cage, started again by a new cage (deploy/acceptance.sh
    kills cage and measures it); not BindsTo=, which would leave the show stopped."""
    show, display = ((DEPLOY / name).read_text() for name in UNITS)
    for key in ("Requires", "PartOf", "After"):
        assert setting(show, key) == UNITS[1]
    assert re.search("^BindsTo=", show, re.MULTILINE) is None
    assert setting(display, "Wants") == UNITS[0]
    assert "systemd-logind.service" in display
    assert re.search("^PrivateNetwork=", display, re.MULTILINE) is None, (
        "udev's hotplug events come over netlink"
    )


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


def old_python(folder: Path) -> Path:
    """A stand-in for Ubuntu 22.04's python3: Python 3.10."""
    python = folder / "python3"
    python.write_text('#!/bin/sh\ncase "$2" in *platform*) echo 3.10.12 ;; *) exit 1 ;; esac\n')
    python.chmod(0o755)
    return python


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "usage: "),
        (["shows"], "shows/show.toml not found: a show folder holds show.toml"),
        (["no-such-show"], "no-such-show not found: name a show folder"),
        (["shows/default.toml", "--cpu"], "unknown option --cpu"),
        (["shows/default.toml", "PYTHON"], "is Python 3.10.12, 3.11 or newer is needed"),
        (["--sync-client"], "--sync-client needs the time server's address"),
        (["shows", "--sync-server", "--sync-client", "10.0.0.5"], "one or the other"),
        (["--sync-server", "10.0.0.0/24;reboot"], "not an address or subnet (e.g. 10.0"),
        (["--sync-client", "10.0.0.5 "], "not an address or host name (e.g. 10.0"),
        (["--sync-server", "--gpu"], "--gpu goes with a show"),
    ],
)
def test_setup_refuses_in_one_line_before_it_installs_anything(
    tmp_path: Path, args: list[str], says: str
) -> None:
    """Checked before the root check, so these run anywhere; nothing here reaches apt-get."""
    env = {"PATH": "/usr/bin:/bin"}
    if "PYTHON" in args:
        args = args[:1]
        env["PYTHON"] = str(old_python(tmp_path))
    completed = subprocess.run(
        ["sh", str(DEPLOY / "setup.sh"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.count("\n") == 1 and says in completed.stderr, completed.stderr
