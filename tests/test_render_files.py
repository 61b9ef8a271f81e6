"""``installation render`` and its output folder: a real child process, a real file-size limit
standing in for a full disk, a real ``kill -9``; nothing half written under a frame's name."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pygame
import pytest
from conftest import DEFAULT_SHOW

from installation.cli import main

RENDER = [sys.executable, "-m", "installation", "render", str(DEFAULT_SHOW)]


def whole_frames(folder: Path) -> list[str]:
    """The frames in ``folder``, each checked to decode to a whole 256 x 256 picture."""
    names = sorted(p.name for p in folder.glob("frame_*.png"))
    for name in names:
        assert pygame.image.load(folder / name).get_size() == (256, 256), name
    return names


def test_a_full_disk_is_one_line_and_leaves_no_partial_frame(tmp_path: Path) -> None:
    # RLIMIT_FSIZE makes write() fail with EFBIG once a file reaches 8 KB, part way through
    # the first PNG (about 60 KB), as a disk that fills mid-frame does.
    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, resource.RLIM_INFINITY))

    out = tmp_path / "frames"
    completed = subprocess.run(
        [*RENDER, "--seconds", "1", "--fps", "2", "--out", str(out)],
        preexec_fn=small_files,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.splitlines()[-1] == (
        f"installation: error: {out / 'frame_000000.png'}: cannot write the frame: File too large"
    )
    assert "Traceback" not in completed.stderr
    assert list(out.iterdir()) == [], "neither a truncated frame nor its temporary file"


def test_killed_render_leaves_only_whole_frames(tmp_path: Path) -> None:
    out = tmp_path / "frames"
    child = subprocess.Popen(
        [*RENDER, "--seconds", "60", "--fps", "2", "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while len(list(out.glob("frame_*.png"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert len(whole_frames(out)) >= 3


def test_a_folder_in_use_is_refused_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "frames"
    args = ["render", str(DEFAULT_SHOW), "--fps", "2", "--out", str(out)]
    assert main([*args, "--seconds", "2"]) == 0
    assert len(whole_frames(out)) == 4
    (out / "notes.txt").write_text("kept")
    (out / ".frame_000009.png.123.tmp").write_bytes(b"left by a killed render")
    capsys.readouterr()
    shorter = [*args, "--seconds", "1"]
    assert main(shorter) == 2
    assert capsys.readouterr().err == (
        f"installation: error: --out {out}: not empty (6 entries); render into a new or empty "
        "folder, or pass --force to replace the frame_*.png files in it\n"
    )
    assert main([*shorter, "--force"]) == 0
    assert whole_frames(out) == ["frame_000000.png", "frame_000001.png"], "no stale frames"
    assert sorted(p.name for p in out.iterdir()) == [*whole_frames(out), "notes.txt"]


def test_an_out_that_is_a_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    for out, problem in (
        (taken, f"--out {taken}: exists and is not a folder"),
        (taken / "frames", f"--out {taken / 'frames'}: cannot create the folder: Not a directory"),
    ):
        code = main(["render", str(DEFAULT_SHOW), "--seconds", "1", "--out", str(out)])
        assert (code, capsys.readouterr().err) == (2, f"installation: error: {problem}\n")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "frames"
    out.mkdir(mode=0o555)
    code = main(["render", str(DEFAULT_SHOW), "--seconds", "1", "--out", str(out)])
    assert (code, capsys.readouterr().err.splitlines()[-1]) == (
        2,
        f"installation: error: {out / 'frame_000000.png'}: cannot write the frame: "
        "Permission denied",
    )
    assert list(out.iterdir()) == []
