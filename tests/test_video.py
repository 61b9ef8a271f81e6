"""Video out: ``render --out FILE.mp4|.mkv|.mov`` and ``run --record``, encoded by PyAV and read
back by PyAV (real FFmpeg), against the PNG render, an independent Lanczos (Pillow's), the SDL
presenter's picture, a real ``kill -9`` and a real file-size limit."""

from __future__ import annotations

import re
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pygame
import pytest
from conftest import DEFAULT_BUNDLE, DEFAULT_SHOW, edited_show
from PIL import Image

from installation.cli import main
from installation.display import HeadlessDisplay
from installation.engine.frames import Frame, Pick
from installation.output.compose import fit, on_screen
from installation.output.feed import CAPACITY, ScreenFeed
from installation.output.video_file import VideoTarget
from installation.player import RunningShow
from installation.render import render
from installation.score.conductor import Conductor
from installation.score.plan import Plan
from installation.session import open_show

RENDER = [sys.executable, "-m", "installation", "render", str(DEFAULT_SHOW)]


def brisk_show(tmp_path: Path) -> Path:
    """The default show morphing every second, so that consecutive frames differ."""
    path = edited_show(tmp_path, "hold = 3.0\n", "hold = 0.2\n")
    bundle = 'bundle = "../bundles/faces-256"'
    text = path.read_text().replace(bundle, f'bundle = "{DEFAULT_BUNDLE}"')
    path.write_text(text.replace("morph = 5.0", "morph = 0.8"))
    return path


def decoded(path: Path) -> tuple[av.video.stream.VideoStream, list[np.ndarray]]:
    """The file's video stream (closed; its parameters stay readable) and its frames as RGB,
    converted with the matrix and range the file is tagged with."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    return stream, frames


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((a.astype(np.float64) - b) ** 2)
    return float(10 * np.log10(255**2 / error))


def hidden_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_an_mp4_render_holds_the_png_render_s_frames(tmp_path: Path) -> None:
    # The same frame path. At CRF 12, H.264's loss plus 4:2:0 chroma and 8-bit YUV rounding
    # cost about one level on these faces (measured: mean error 1.1-1.2, PSNR 44 dB); the
    # bounds leave room for other x264 builds, while a frame one step off mid-morph is up to
    # 9 levels off (checked below, so that the comparison can fail).
    show = brisk_show(tmp_path)
    args = ["render", str(show), "--seconds", "1", "--fps", "12", "--size", "320x240"]
    assert main([*args, "--out", str(tmp_path / "png")]) == 0
    assert main([*args, "--out", str(tmp_path / "show.mp4"), "--crf", "12"]) == 0
    pngs = sorted((tmp_path / "png").glob("frame_*.png"))
    stream, frames = decoded(tmp_path / "show.mp4")
    assert len(frames) == len(pngs) == 12
    assert float(stream.average_rate) == 12
    steps = []
    for index, (png, frame) in enumerate(zip(pngs, frames, strict=True)):
        picture = pygame.surfarray.pixels3d(pygame.image.load(png)).transpose(1, 0, 2)
        assert frame.shape == picture.shape == (240, 320, 3)
        error = np.abs(frame.astype(np.int16) - picture).mean()
        assert error < 3 and psnr(frame, picture) > 35, (index, error, psnr(frame, picture))
        steps.append(np.abs(picture.astype(np.int16) - frames[max(0, index - 1)]).mean())
    assert max(steps) > 6, "the frames change enough that a shifted frame would fail above"


def write_pattern(path: Path, frames: int = 3) -> np.ndarray:
    """A few frames of saturated colours (which a BT.601 matrix read as BT.709 would shift
    by tens of levels) and a grey ramp; returns the picture."""
    picture = np.zeros((64, 96, 3), np.uint8)
    picture[:32, :32] = (255, 0, 0)
    picture[:32, 32:64] = (0, 255, 0)
    picture[:32, 64:] = (0, 0, 255)
    picture[32:] = np.linspace(16, 235, 96, dtype=np.uint8)[None, :, None]
    video = VideoTarget.checked(path, False, "--out").open(25, "ultrafast")
    for index in range(frames):
        video.write(picture, index / 25)
    video.close()
    return picture


@pytest.mark.parametrize(
    ("name", "codec", "pixels", "profile"),
    [
        ("a.mp4", "h264", "yuv420p", "Constrained Baseline"),  # x264's ultrafast profile
        ("a.mkv", "h264", "yuv420p", "Constrained Baseline"),
        ("a.mov", "prores", "yuv422p10le", "HQ"),
    ],
)
def test_each_container_has_its_codec_and_bt709_tags(
    tmp_path: Path, name: str, codec: str, pixels: str, profile: str
) -> None:
    picture = write_pattern(tmp_path / name)
    stream, frames = decoded(tmp_path / name)
    context = stream.codec_context
    assert (context.name, context.pix_fmt, context.profile) == (codec, pixels, profile)
    tags = (context.color_primaries, context.color_trc, context.colorspace, context.color_range)
    assert tags == (1, 1, 1, 1), "BT.709 primaries, transfer and matrix; limited range"
    assert len(frames) == 3
    # Read back through the tags, the colours are the screen's: converted with BT.709.
    assert np.abs(frames[-1][4:28, 4:28].astype(np.int16) - picture[4:28, 4:28]).max() <= 3
    assert hidden_files(tmp_path) == [], "the temporary file became the file"


def test_fit_is_lanczos_and_keeps_the_aspect_on_black() -> None:
    rng = np.random.default_rng(7)
    pattern = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    pattern[::8] = 255  # lines: ringing (Lanczos), smearing (bilinear) and blocks (nearest)
    ours = fit(pattern, (200, 120))
    assert ours.shape == (120, 200, 3)
    assert not ours[:, :40].any() and not ours[:, 160:].any(), "bars left and right"
    face = ours[:, 40:160].astype(np.int16)
    source = Image.fromarray(pattern)
    errors = {
        name: np.abs(face - np.asarray(source.resize((120, 120), kind))).mean()
        for name, kind in (
            ("lanczos", Image.Resampling.LANCZOS),
            ("bilinear", Image.Resampling.BILINEAR),
            ("nearest", Image.Resampling.NEAREST),
        )
    }
    assert errors["lanczos"] < 2, errors
    assert min(errors["bilinear"], errors["nearest"]) > 8, errors
    assert fit(pattern, None) is pattern and fit(pattern, (48, 48)) is pattern


def test_on_screen_is_what_the_sdl_presenter_shows() -> None:
    size = (64, 48)
    ramp = np.linspace(0, 255, size[0], dtype=np.uint8)
    a = np.stack([np.broadcast_to(ramp, (size[1], size[0]))] * 3, axis=-1).copy()
    b = a[:, ::-1].copy()
    b[..., 1] = 200
    pick = Pick(Frame(0.0, a, 1), Frame(0.1, b, 2), 0.3)
    display = HeadlessDisplay(size)
    display.open("compose")
    try:
        for brightness in (1.0, 0.6):
            display.present(pick.a, pick.b, pick.weight, brightness)
            screen = display.snapshot().astype(np.int16)
            # SDL truncates twice (dimming, then blending); we round once: 3 levels at most.
            assert np.abs(on_screen(pick, brightness) - screen).max() <= 3, brightness
    finally:
        display.close()
    # Adaptive quality may make one frame of a blend smaller: mixed at the larger size.
    small = Frame(0.2, a[::2, ::2].copy(), 3)
    assert np.array_equal(on_screen(Pick(small, pick.b, 1.0), 1.0), b)


class Interrupted:
    """A real conductor, interrupted (as by Ctrl-C) when the render reaches ``t`` seconds."""

    def __init__(self, conductor: Conductor, t: float) -> None:
        self.conductor = conductor
        self.t = t

    def plans_at(self, times: list[float]) -> list[Plan]:
        return self.conductor.plans_at(times)

    def tick(self, t: float) -> float:
        if t >= self.t:
            raise KeyboardInterrupt
        return self.conductor.tick(t)


def test_an_interrupted_render_leaves_no_file(tmp_path: Path) -> None:
    _show, ladder, conductor = open_show(DEFAULT_SHOW)
    out = VideoTarget.checked(tmp_path / "cut.mp4", False, "--out")
    with pytest.raises(KeyboardInterrupt):
        render(ladder.pipeline, Interrupted(conductor, 1.5), 3.0, 10, out)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == [], "neither the file nor its temporary one"


def test_a_full_disk_is_one_line_and_leaves_no_file(tmp_path: Path) -> None:
    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))

    out = tmp_path / "full.mkv"
    completed = subprocess.run(
        [*RENDER, "--seconds", "4", "--fps", "10", "--out", str(out), "--crf", "0"],
        preexec_fn=small_files,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.splitlines()[-1] == (
        f"installation: error: {out}: cannot write the video: File too large"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_killed_render_leaves_no_file_under_its_name(tmp_path: Path) -> None:
    out = tmp_path / "killed.mp4"
    child = subprocess.Popen(
        [*RENDER, "--seconds", "600", "--fps", "10", "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            temporary = list(tmp_path.glob(".killed.mp4.*.tmp"))
            if temporary and temporary[0].stat().st_size > 0:
                break
            time.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert temporary and temporary[0].stat().st_size > 0, "it was writing when killed"
    assert not out.exists()


def test_an_existing_file_needs_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "taken.mkv"
    out.write_bytes(b"an earlier cut")
    args = ["render", str(DEFAULT_SHOW), "--seconds", "0.2", "--fps", "10", "--out", str(out)]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"installation: error: --out {out}: exists; pass --force to replace it\n"
    )
    assert main(["run", "--headless", "--record", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"installation: error: --record {out}: exists; pass --force to replace it\n"
    )
    assert out.read_bytes() == b"an earlier cut"
    assert main([*args, "--force"]) == 0
    assert len(decoded(out)[1]) == 2


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--out", "x.mov", "--crf", "10"], "--out x.mov: --crf and --preset set H.264"),
        (["--out", "x.mp4", "--size", "321x240"], "--out x.mp4: 321x240: video needs an even"),
        (["--out", "x.mp4", "--crf", "52"], "--crf 52: expected 0 (lossless) to 51"),
        (["--out", "frames", "--preset", "slow"], "--preset is for a video --out"),
        (["--out", "frames", "--crf", "0"], "--crf is for a video --out"),
    ],
)
def test_video_options_are_checked_before_the_show_loads(
    args: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", "missing.toml", "--seconds", "1", *args]) == 2
    assert capsys.readouterr().err.startswith(f"installation: error: {problem}")


def test_video_options_need_a_video_and_sizes_stop_at_4k(
    capsys: pytest.CaptureFixture[str],
) -> None:
    render_8k = [
        "render",
        "missing.toml",
        "--seconds",
        "1",
        "--out",
        "x.mp4",
        "--size",
        "7680x4320",
    ]
    for args, problem in [
        (render_8k, "argument --size: expected WIDTHxHEIGHT such as 1920x1080, up to 3840x2160"),
        (["run", "--record", "x.mkv", "--record-size", "3840x2162"], "argument --record-size"),
        (["run", "--record-size", "640x360"], "installation: error: --record-size is for --record"),
        (["run", "--crf", "20"], "installation: error: --crf is for --record FILE"),
    ]:
        assert main(args) == 2
        assert problem in capsys.readouterr().err.splitlines()[-1]


def test_run_record_holds_every_frame_shown_but_those_dropped(tmp_path: Path) -> None:
    out = tmp_path / "recorded.mp4"
    completed = subprocess.run(
        [
            *(sys.executable, "-m", "installation", "run", str(DEFAULT_SHOW), "--headless"),
            *("--duration", "2", "--record", str(out), "--record-size", "128x96"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    shown = int(re.search(r"(\d+) frames shown", completed.stderr)[1])
    counts = re.search(r"(\d+) frames delivered, (\d+) dropped .*, (\d+) failed", completed.stderr)
    delivered, dropped, failed = (int(counts[i]) for i in (1, 2, 3))
    stream, frames = decoded(out)
    assert (len(frames), failed) == (delivered, 0)
    assert delivered + dropped == shown > 0
    assert frames[0].shape == (96, 128, 3)
    assert stream.base_rate == 60, "the show's frame rate (a dropped frame leaves a gap)"
    assert frames[len(frames) // 2].std() > 10, "a face, not a blank frame"


def test_a_recording_without_a_size_has_the_whole_picture_s(tmp_path: Path) -> None:
    """Not the first frame's: adaptive quality, or a scene that runs fewer stages (here its
    64 px generator alone), draws smaller frames that the screen scales up."""
    text = DEFAULT_SHOW.read_text().replace('"../bundles/', f'"{DEFAULT_SHOW.parent}/../bundles/')
    show = tmp_path / "show.toml"
    show.write_text(text.replace("seed = 2026\n", "seed = 2026\nstages = 1\n", 1))
    out = tmp_path / "recorded.mkv"
    completed = subprocess.run(
        [
            *(sys.executable, "-m", "installation", "run", str(show), "--headless"),
            *("--duration", "1", "--record", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    _, frames = decoded(out)
    assert {frame.shape for frame in frames} == {(256, 256, 3)}


def test_a_slow_sink_drops_its_own_frames_never_the_display_s(tmp_path: Path) -> None:
    show, ladder, conductor = open_show(DEFAULT_SHOW)
    delivered: list[float] = []
    feeds: list[ScreenFeed] = []
    main_thread = threading.current_thread()

    def slow(picture: np.ndarray, t: float) -> None:
        assert threading.current_thread() is not main_thread
        time.sleep(0.25)  # an encoder far slower than the screen
        delivered.append(t)

    def start(fps: float, picture: tuple[int, int]) -> ScreenFeed:
        feeds.append(ScreenFeed("record", "slow", slow, (32, 32)))
        return feeds[0]

    display = HeadlessDisplay((96, 96))
    display.open("slow sink")
    try:
        running = RunningShow(display, ladder, conductor, show.display.fps, show.engine.lead)
        running.outputs.append(start)
        result = running.play(2.0)
    finally:
        display.close()
    (feed,) = feeds
    shown = result.stats.shown
    assert shown > 2 * CAPACITY, "the display went on while the sink slept"
    assert feed.taken + feed.dropped == shown, "every frame shown was offered once"
    assert feed.dropped > 0 and feed.failed == 0
    assert len(delivered) == feed.taken, "close delivered what was queued"
    assert delivered == sorted(delivered)


def test_a_recording_counts_from_its_first_picture_and_goes_on_over_a_jump(
    tmp_path: Path,
) -> None:
    """A PC of a room adopts the room's show time as it joins (hours in, or back): the file
    starts at 0 and goes on from its last frame instead of keeping hours of one frame or
    running backwards, while a gap of a few dropped frames is kept."""
    target = VideoTarget.checked(tmp_path / "room.mkv", False, "--record", (64, 48))
    video = target.open(30.0, "ultrafast")
    image = np.zeros((48, 64, 3), np.uint8)
    times = [7200.0, 7200 + 1 / 30, 7200 + 4 / 30, 3.0, 3 + 1 / 30, 9000.0]
    for t in times:
        video.write(image, t)
    video.close()
    with av.open(str(target.path)) as container:
        stream = container.streams.video[0]
        pts = [frame.pts for frame in container.decode(stream)]
        seconds = [float(p * stream.time_base) for p in pts]
    assert [round(s * 30) for s in seconds] == [0, 1, 4, 5, 6, 7]


def test_two_pictures_on_one_frame_number_do_not_shift_the_rest(tmp_path: Path) -> None:
    """Ticks that jitter around half a frame land two pictures on one frame number and skip
    the next: the second gets the next frame-time and the one after is back on the show's,
    so hours of such jitter do not stretch the video."""
    target = VideoTarget.checked(tmp_path / "jitter.mkv", False, "--record", (64, 48))
    video = target.open(30.0, "ultrafast")
    image = np.zeros((48, 64, 3), np.uint8)
    for number in (100, 100.4, 101.6, 103, 103.4, 104.6, 108):
        video.write(image, number / 30)
    video.close()
    with av.open(str(target.path)) as container:
        stream = container.streams.video[0]
        seconds = [float(frame.pts * stream.time_base) for frame in container.decode(stream)]
    assert [round(s * 30) for s in seconds] == [0, 1, 2, 3, 4, 5, 8]
