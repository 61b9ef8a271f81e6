"""The display against real display servers: an X server with no window manager (Xvfb, its
framebuffer read back as the screen), and the kiosk's compositor (cage, headless), each
killed under a running show. Skipped, saying so, where the server is not installed."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from installation.display.libraries import missing_egl_driver, missing_libraries

SCREEN = (1920, 1080)
PATIENCE = 30.0  # seconds before a test gives up waiting for a server or the show


def wait_for(what: str, check: Callable[[], Any]) -> Any:
    """Poll ``check`` until it returns something true; only a broken run takes PATIENCE."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


@dataclass
class XServer:
    display: str
    framebuffer: Path
    process: subprocess.Popen[bytes]

    def screen(self) -> np.ndarray:
        """What the screen shows, H x W x 3 RGB, from Xvfb's framebuffer (an XWD file)."""
        raw = self.framebuffer.read_bytes()
        fields = struct.unpack(">25I", raw[:100])  # the XWD header, big-endian
        header, height, bits, stride, colours = (fields[i] for i in (0, 5, 11, 12, 19))
        assert bits == 32, "Xvfb was started with 24-bit colour"
        pixels = np.frombuffer(raw, np.uint8, stride * height, header + colours * 12)
        return pixels.reshape(height, stride // 4, 4)[:, : SCREEN[0], 2::-1]  # BGRX -> RGB


@contextmanager
def xvfb(folder: Path, *screens: str) -> Iterator[XServer]:
    """A bare X server (no window manager) on a display number it picks itself, with
    ``screens`` ("WxH"), its first screen's framebuffer in ``folder``."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (Debian package xvfb)")
    folder.mkdir()
    read_end, write_end = os.pipe()
    layout = [arg for i, size in enumerate(screens) for arg in ("-screen", str(i), f"{size}x24")]
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), *layout, "-br", "-fbdir", str(folder)],
        pass_fds=(write_end,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    with os.fdopen(read_end) as announced:
        number = announced.readline().strip()
    try:
        assert number, "Xvfb did not start"
        yield XServer(f":{number}", folder / "Xvfb_screen0", server)
    finally:
        server.kill()
        server.wait()


def x_environ(server: XServer) -> dict[str, str]:
    """The environment of a program drawing with SDL on ``server``."""
    return {**os.environ, "DISPLAY": server.display, "SDL_VIDEODRIVER": "x11"}


@pytest.fixture
def x_server(tmp_path: Path) -> Iterator[XServer]:
    with xvfb(tmp_path / "fb", f"{SCREEN[0]}x{SCREEN[1]}") as server:
        yield server


def white_box(screen: np.ndarray) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the white pixels when they form one solid rectangle and
    everything else is black; None otherwise."""
    white = (screen > 200).all(axis=2)
    if not white.any():
        return None
    rows, columns = np.nonzero(white)
    box = (int(columns.min()), int(rows.min()), int(columns.max()), int(rows.max()))
    inside = white[box[1] : box[3] + 1, box[0] : box[2] + 1]
    outside = screen.sum() - screen[box[1] : box[3] + 1, box[0] : box[2] + 1].sum()
    return box if inside.all() and outside == 0 else None


PROBE = """
import sys, time
import numpy as np, pygame
from installation.display import FullscreenDisplay
from installation.engine.frames import Frame
display = FullscreenDisplay((1280, 720))
display.open("probe")
white = Frame(t=0.0, image=np.full((64, 64, 3), 255, np.uint8), serial=1)
for command in sys.stdin:
    if command.strip() == "f":
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_f))
    for _ in range(5):
        display.poll()
        display.present(white, None, 0.0)
        time.sleep(0.02)
    print(display.description, flush=True)
display.close()
"""


def test_fullscreen_fills_a_screen_without_a_window_manager(
    x_server: XServer,
) -> None:
    """A square face in fullscreen is centred on the whole 1920x1080 screen; ``f`` gives a
    centred 1280x720 window and back. Before, the window stayed 1280x720 at +320+180 and
    the face was cut off to one side."""
    server = x_server
    environ = x_environ(server)
    probe = subprocess.Popen(
        [sys.executable, "-c", PROBE],
        env=environ,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert probe.stdin is not None and probe.stdout is not None
    expected = [
        ("show", (420, 0, 1499, 1079)),  # 1080x1080 in the middle of 1920x1080
        ("f", (600, 180, 1319, 899)),  # 720x720 in a 1280x720 window centred on the screen
        ("f", (420, 0, 1499, 1079)),
    ]
    try:
        for command, box in expected:
            probe.stdin.write(command + "\n")
            probe.stdin.flush()
            assert probe.stdout.readline().startswith("video driver x11")
            wait_for(
                f"the white square at {box} after {command!r}",
                lambda b=box: white_box(server.screen()) == b,
            )
    finally:
        probe.stdin.close()
        probe.wait(timeout=PATIENCE)
    assert probe.returncode == 0


RECONNECT = """
import pygame
from installation.display.sdl import start_video
for _ in range(15):
    start_video()
    pygame.display.set_mode((64, 64))
    pygame.display.quit()
print("reconnected 15 times", flush=True)
"""


def test_a_window_right_after_the_last_one_closed_waits_for_the_x_server_reset(
    x_server: XServer,
) -> None:
    """An X server resets when its last client leaves and refuses clients meanwhile: the GL
    presenter giving way to SDL's renderer on a server with no other client met that reset,
    and the show ended with "cannot start SDL video (x11 not available)"."""
    server = x_server
    environ = x_environ(server)
    completed = subprocess.run(
        [sys.executable, "-c", RECONNECT],
        env=environ,
        capture_output=True,
        text=True,
        timeout=PATIENCE * 4,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "reconnected 15 times\n"


def start_show(environ: dict[str, str], runtime: Path) -> subprocess.Popen[str]:
    """``installation run`` of the default show, returned once its health record says
    playing (a frame is on the screen)."""
    show = subprocess.Popen(
        [sys.executable, "-m", "installation", "run", "--duration", "120"],
        env={**environ, "RUNTIME_DIRECTORY": str(runtime)},
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for("the show to play", lambda: show.poll() is not None or record(runtime) is not None)
    assert show.poll() is None, show.communicate()[1]
    return show


def record(runtime: Path) -> dict[str, Any] | None:
    """The health record once it says playing."""
    try:
        current = json.loads((runtime / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return current if current["state"] == "playing" else None


def ended(show: subprocess.Popen[str]) -> tuple[int, str]:
    _, stderr = show.communicate(timeout=PATIENCE)
    assert "Traceback" not in stderr
    return show.returncode, stderr


def test_x_server_going_away_ends_the_show_with_exit_three(
    x_server: XServer, tmp_path: Path
) -> None:
    """Xlib ends the process when its server goes; the show says why and exits with 3
    instead of Xlib's bare exit(1)."""
    server = x_server
    environ = x_environ(server)
    show = start_show(environ, tmp_path / "run")
    server.process.kill()
    code, stderr = ended(show)
    assert code == 3, stderr
    assert f"ERROR installation.display: display lost: the X server at {server.display} " in stderr


@dataclass
class Compositor:
    process: subprocess.Popen[bytes]
    socket: Path
    environ: dict[str, str]


@pytest.fixture
def compositor() -> Iterator[Compositor]:
    """cage with one screen."""
    with cage() as started:
        yield started


@contextmanager
def cage(*options: str, outputs: int = 1) -> Iterator[Compositor]:
    """cage, the kiosk's compositor, on wlroots' headless backend (no GPU or screen needed)
    with ``outputs`` screens of 1280 x 720 side by side, as an unprivileged user: cage
    refuses to start as root."""
    if shutil.which("cage") is None:
        pytest.skip("cage is not installed (Debian package cage)")
    folder = Path(tempfile.mkdtemp(prefix="cage-"))
    drop: list[str] = []
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
        drop = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}"]
        drop.append("--clear-groups")
    folder.chmod(0o700)
    settings = {"WLR_BACKENDS": "headless", "WLR_RENDERER": "pixman"}
    settings["WLR_HEADLESS_OUTPUTS"] = str(outputs)
    process = subprocess.Popen(
        [*drop, "cage", *options, "--", "sleep", "600"],
        env={**os.environ, **settings, "WLR_LIBINPUT_NO_DEVICES": "1"}
        | {"XDG_RUNTIME_DIR": str(folder)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # so that its client goes too, when cage is killed first
    )
    socket = folder / "wayland-0"
    try:
        wait_for("cage's socket", lambda: socket.is_socket() or process.poll() is not None)
        assert process.poll() is None, "cage did not start"
        environ = {**os.environ, "SDL_VIDEODRIVER": "wayland", "XDG_RUNTIME_DIR": str(folder)}
        yield Compositor(process, socket, {**environ, "WAYLAND_DISPLAY": str(socket)})
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def require_wayland_libraries() -> None:
    missing = missing_libraries("wayland")
    if missing:
        pytest.skip(f"this machine lacks {missing}: the show would refuse to start (exit 2)")
    reason = missing_egl_driver()
    if reason:
        pytest.skip(f"{reason}: the show would refuse to start (exit 2)")


@pytest.mark.parametrize("kill", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_compositor_going_away_ends_the_show_with_exit_three(
    compositor: Compositor, tmp_path: Path, kill: signal.Signals
) -> None:
    """SDL posts the same quit event as a closed window; the show probes the compositor's
    socket and tells them apart, and the health record names the cause."""
    require_wayland_libraries()
    runtime = tmp_path / "run"
    show = start_show(compositor.environ, runtime)
    compositor.process.send_signal(kill)
    code, stderr = ended(show)
    assert code == 3, stderr
    cause = f"display lost: the Wayland compositor at {compositor.socket} is gone"
    assert f"ERROR installation.player: {cause}" in stderr
    final = json.loads((runtime / "status.json").read_text())
    assert final["state"] == "stopped"
    assert final["last_error"]["message"].startswith(cause)


@pytest.mark.parametrize("named", [True, False], ids=["SDL_VIDEODRIVER=wayland", "SDL picks"])
def test_a_missing_library_under_a_live_compositor_is_exit_two(
    compositor: Compositor, tmp_path: Path, named: bool
) -> None:
    """The issue's crash: cage running, libwayland-cursor unusable. SDL's Wayland driver
    starts without it, and the first window was a segmentation fault (exit 139). Checked
    both when the unit names the driver and when SDL picks it (no DISPLAY)."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "libwayland-cursor.so.0").write_bytes(b"")
    search = [
        str(tmp_path / "lib"),
        *filter(None, os.environ.get("LD_LIBRARY_PATH", "").split(":")),
    ]
    environ = {**compositor.environ, "LD_LIBRARY_PATH": ":".join(search)}
    if not named:
        for name in ("SDL_VIDEODRIVER", "DISPLAY"):
            environ.pop(name, None)
    completed = run_show_on(environ, tmp_path)
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    assert completed.stderr.splitlines()[-1].startswith(
        "installation: error: SDL's wayland video driver needs libwayland-cursor.so.0"
    )


def run_show_on(environ: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``installation run`` for 5 s on the display ``environ`` names, as the unit runs it."""
    return subprocess.run(
        [sys.executable, "-m", "installation", "run", "--duration", "5"],
        env={**environ, "RUNTIME_DIRECTORY": str(tmp_path / "run")},
        capture_output=True,
        text=True,
        timeout=PATIENCE * 2,
    )


def test_egl_that_does_not_start_is_one_line_and_exit_two(
    compositor: Compositor, tmp_path: Path
) -> None:
    """The issue's second crash: Mesa's EGL killed by the unit's sandbox, a traceback ending in
    ``EGL not initialized`` every 10 s. Here libglvnd is given a "driver" that loads but is
    none (libc), so EGL cannot start either."""
    require_wayland_libraries()
    vendor = tmp_path / "10_none.json"
    vendor.write_text(
        json.dumps({"file_format_version": "1.0.0", "ICD": {"library_path": "libc.so.6"}})
    )
    environ = {**compositor.environ, "__EGL_VENDOR_LIBRARY_FILENAMES": str(vendor)}
    completed = run_show_on(environ, tmp_path)
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    assert completed.stderr.splitlines()[-1] == (
        "installation: error: cannot open a window with SDL's wayland video driver (EGL not "
        "initialized): check the GL/EGL driver (Mesa: libegl-mesa0 libgl1-mesa-dri) and, under "
        "systemd, the unit's sandbox (docs/kiosk.md)"
    )
