"""The display libraries SDL loads at run time, checked with the real dynamic loader: a missing
or broken library is one line naming the Debian package, exit code 2, never a crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from installation.display.libraries import (
    LIBRARIES,
    egl_vendor_files,
    loads,
    missing_egl_driver,
    missing_libraries,
    require_video_libraries,
)
from installation.errors import UserError


def test_a_library_the_loader_cannot_find_is_named_with_its_package() -> None:
    table = {"wayland": (("libc.so.6", "libc6"), ("libno-such-thing.so.7", "no-such-package"))}
    assert loads("libc.so.6")
    assert not loads("libno-such-thing.so.7")
    assert missing_libraries("wayland", table) == [("libno-such-thing.so.7", "no-such-package")]
    assert missing_libraries("dummy", table) == []


def test_drivers_without_libraries_to_load_need_nothing() -> None:
    for driver in ("dummy", "offscreen"):
        require_video_libraries(driver)
    assert set(LIBRARIES) == {"wayland", "x11"}


def broken_library(folder: Path, soname: str) -> dict[str, str]:
    """An environment whose loader finds ``soname`` first in ``folder``, as a file it cannot
    load: what SDL's dlopen would meet too when a package is damaged or half removed."""
    folder.mkdir(exist_ok=True)
    (folder / soname).write_bytes(b"")
    search = [str(folder), *filter(None, os.environ.get("LD_LIBRARY_PATH", "").split(":"))]
    return {**os.environ, "LD_LIBRARY_PATH": ":".join(search)}


def test_run_names_the_missing_package_and_exits_two(tmp_path: Path) -> None:
    """The kiosk's case: SDL_VIDEODRIVER=wayland and libwayland-egl unusable. Without the
    check, SDL starts its Wayland driver and the first window is a segmentation fault."""
    environ = broken_library(tmp_path / "lib", "libwayland-egl.so.1")
    environ.update(
        SDL_VIDEODRIVER="wayland",
        WAYLAND_DISPLAY=str(tmp_path / "no-compositor"),
        RUNTIME_DIRECTORY=str(tmp_path / "run"),
    )
    completed = subprocess.run(
        [sys.executable, "-m", "installation", "run", "--duration", "1"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    assert completed.stderr.splitlines()[-1] == (
        "installation: error: SDL's wayland video driver needs libwayland-egl.so.1, which is "
        "missing (Debian: apt-get install libwayland-egl1)"
    )


def vendor_file(folder: Path, library: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"50_{library}.json"
    path.write_text(json.dumps({"file_format_version": "1.0.0", "ICD": {"library_path": library}}))
    return path


def test_an_egl_driver_is_found_the_way_libglvnd_finds_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    reason = missing_egl_driver({"__EGL_VENDOR_LIBRARY_DIRS": str(empty)})
    assert reason == f"no EGL driver is installed (none described in {empty})"

    broken = vendor_file(tmp_path / "broken", "libEGL_nowhere.so.0")
    assert egl_vendor_files({"__EGL_VENDOR_LIBRARY_DIRS": f"{empty}:{broken.parent}"}) == [broken]
    reason = missing_egl_driver({"__EGL_VENDOR_LIBRARY_DIRS": f"{empty}:{broken.parent}"})
    assert reason == "no EGL driver loads (libEGL_nowhere.so.0)"

    # One driver that loads is enough; libc stands in for a driver library here.
    working = vendor_file(tmp_path / "working", "libc.so.6")
    assert missing_egl_driver({"__EGL_VENDOR_LIBRARY_FILENAMES": f"{broken}:{working}"}) is None
    (tmp_path / "working" / "99_damaged.json").write_text("{not json")
    assert missing_egl_driver({"__EGL_VENDOR_LIBRARY_DIRS": str(working.parent)}) is None


@pytest.mark.skipif(missing_libraries("wayland") != [], reason="the Wayland libraries are missing")
def test_wayland_without_an_egl_driver_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("__EGL_VENDOR_LIBRARY_DIRS", str(tmp_path))
    with pytest.raises(UserError) as caught:
        require_video_libraries("wayland")
    assert str(caught.value) == (
        "SDL's wayland video driver draws through EGL, and no EGL driver is installed (none "
        f"described in {tmp_path}) (Debian: apt-get install libegl-mesa0 libgl1-mesa-dri for "
        "Mesa, or the GPU maker's driver)"
    )
