"""The kiosk boots and heals: deploy/acceptance.sh on a fresh Debian 12 root, in a container.

Marked ``kiosk`` and left out of the default run (pyproject.toml's addopts): it takes minutes,
needs root, the Debian packages debootstrap and systemd-container, and the Debian mirror and
PyPI. Run it with ``sudo .venv/bin/python -m pytest -m kiosk -s`` to see its figures.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from conftest import ROOT

pytestmark = pytest.mark.kiosk

NEEDED = ("debootstrap", "systemd-nspawn", "nsenter")


def why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (it builds and boots a Debian root with systemd-nspawn)"
    missing = [command for command in NEEDED if shutil.which(command) is None]
    if missing:
        return f"{', '.join(missing)} missing (apt-get install debootstrap systemd-container)"
    return None


@pytest.mark.skipif(why_not() is not None, reason=why_not() or "")
def test_the_kiosk_boots_plays_and_heals() -> None:
    completed = subprocess.run(
        [str(ROOT / "deploy" / "acceptance.sh")],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    print(completed.stdout)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert completed.stdout.rstrip().endswith("acceptance: passed")
