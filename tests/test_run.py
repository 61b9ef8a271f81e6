"""The whole runtime, headless: the show loop with the real worker, ONNX Runtime and SDL."""

from __future__ import annotations

import hashlib
import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import DEFAULT_SHOW, brisk_conductor
from slow import SlowBackend

from installation.cli import main
from installation.display import HeadlessDisplay
from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.frames import Frame
from installation.engine.pipeline import Pipeline
from installation.player import play


class RecordingDisplay(HeadlessDisplay):
    """The real headless display, reading back every picture it presents."""

    def __init__(self) -> None:
        super().__init__((160, 90))
        self.pictures: list[np.ndarray] = []
        self.blends: list[bool] = []

    def present(self, a: Frame, b: Frame | None, weight: float, brightness: float = 1.0) -> None:
        super().present(a, b, weight, brightness)
        self.pictures.append(self.snapshot().copy())
        self.blends.append(b is not None)


def played(backend: OnnxRuntimeBackend, seconds: float) -> tuple[RecordingDisplay, object]:
    bundle, conductor = brisk_conductor(hold=0.5, morph=1.0)
    pipeline = Pipeline.load(bundle, backend)
    display = RecordingDisplay()
    display.open("test")
    try:
        result = play(display, pipeline, conductor, fps=60, lead=0.1, duration=seconds)
    finally:
        display.close()
    return display, result


def test_headless_run_shows_changing_faces() -> None:
    display, result = played(OnnxRuntimeBackend(CPU), 3.0)
    assert result.error is None
    pictures = display.pictures
    assert len(pictures) == result.stats.shown > 30, "every tick presents, for 3 s"
    picture_area = np.stack(pictures)[:, :, 35:125]  # the square face, between the black bars
    assert picture_area.std(axis=(1, 2, 3)).min() > 10, "a blank or flat picture was shown"
    assert np.abs(pictures[-1].astype(int) - pictures[0].astype(int)).mean() > 2
    steps = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in itertools.pairwise(pictures)]
    assert max(steps) < 20, "consecutive pictures jumped"
    assert sum(steps) > 0


def test_display_keeps_its_rate_and_blends_when_generation_is_slow() -> None:
    # Counted against the generator in the same run, so a busy machine slows both sides alike;
    # the rates themselves are benchmarks/display_pace.py's to measure.
    display, result = played(SlowBackend(delay=0.05), 3.0)
    assert result.error is None
    assert 0 < result.generated < 80, "at most 20 frames/s can be generated"
    assert len(display.pictures) > 2 * result.generated, "the display never waited for a frame"
    assert np.mean(display.blends[30:]) > 0.5, "frames between generated ones are blends"
    assert min(p.std() for p in display.pictures) > 10, "never a blank frame"


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_render_is_deterministic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["render", str(DEFAULT_SHOW), "--seconds", "5", "--fps", "2"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b"), "--size", "96x64"]) == 0
    assert main([*args, "--out", str(tmp_path / "c")]) == 0
    first = digest(tmp_path / "a")
    assert len(first) == 10 and first == digest(tmp_path / "c")
    # The default scene holds the first face for 3 s (frames 0-6), then morphs (7, 8, 9).
    assert len(set(first.values())) == 4
    import pygame

    assert pygame.image.load(tmp_path / "a" / "frame_000000.png").get_size() == (256, 256)
    sized = pygame.image.load(tmp_path / "b" / "frame_000009.png")
    assert sized.get_size() == (96, 64)
    assert sized.get_at((2, 32))[:3] == (0, 0, 0), "letterboxed on black"


def test_run_command_exits_zero_after_duration() -> None:
    completed = installation("run", "--headless", "--duration", "2")
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr
    assert "frames shown" in completed.stderr


def installation(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "installation", *args], capture_output=True, text=True, timeout=60
    )


def test_bad_show_and_bad_option_exit_two(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("bundle = 3\n")
    completed = installation("run", str(bad), "--headless")
    assert completed.returncode == 2
    assert completed.stderr == f"installation: error: {bad}:1: bundle: expected a string, got 3\n"
    completed = installation("run", "--duration", "soon")
    assert completed.returncode == 2
    last_line = completed.stderr.strip().splitlines()[-1]
    assert last_line.endswith("argument --duration: expected a number, got 'soon'")
    assert "Traceback" not in completed.stderr
