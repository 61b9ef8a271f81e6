"""Video out: how fast a show renders to H.264, where the time goes, and what ``--record``
costs the display loop.

Render: ``--seconds`` of the default show (shows/default.toml) at 30 frames/s (render's
default) to an .mp4 at each ``--size``, with x264's render preset; frames/s, and the shares
of inference, scaling (dimming and Lanczos) and writing (colour conversion, x264, muxing),
timed by ``render`` itself in the same run.

Recording: the default show played headless (SDL's dummy driver) at its 60 frames/s, in
alternating rounds without and with ``--record`` (an .mp4 at the show's frame size, the
record preset), so both see the same machine load; frames shown per second, the longest
tick and the ticks over twice their budget, and the frames the recording dropped.

    python benchmarks/render_video.py                       # 10 s to 1080p and 2160p
    python benchmarks/render_video.py --seconds 60 --json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from installation.display import HeadlessDisplay
from installation.output import RECORD_PRESET, RENDER_PRESET
from installation.output.feed import ScreenFeed
from installation.output.video_file import VideoTarget, recorder
from installation.player import RunningShow
from installation.render import render
from installation.session import open_show

ROOT = Path(__file__).resolve().parent.parent
SHOW = ROOT / "shows" / "default.toml"
SIZES = ((1920, 1080), (3840, 2160))


def render_speed(seconds: float, size: tuple[int, int], folder: Path) -> dict[str, object]:
    _show, ladder, conductor = open_show(SHOW)
    target = VideoTarget.checked(folder / f"{size[1]}p.mp4", True, "--out", size)
    done = render(ladder.pipeline, conductor, seconds, 30.0, target, size)
    return {
        "size": f"{size[0]}x{size[1]}",
        "frames": done.frames,
        "seconds": round(done.seconds, 2),
        "frames_per_s": round(done.frames / done.seconds, 2),
        "inference": round(done.inference / done.seconds, 3),
        "scaling": round(done.scaling / done.seconds, 3),
        "writing": round(done.writing / done.seconds, 3),
        "megabytes": round(target.path.stat().st_size / 1e6, 2),
    }


def play_round(seconds: float, record: Path | None) -> dict[str, object]:
    show, ladder, conductor = open_show(SHOW)
    display = HeadlessDisplay((640, 360))
    feeds: list[ScreenFeed] = []
    display.open("record overhead")
    try:
        running = RunningShow(display, ladder, conductor, show.display.fps, show.engine.lead)
        if record is not None:
            start = recorder(VideoTarget.checked(record, True, "--record"))
            running.outputs.append(lambda *made: feeds.append(start(*made)) or feeds[-1])
        result = running.play(seconds)
    finally:
        display.close()
    stats = result.stats
    row: dict[str, object] = {
        "record": record is not None,
        "shown_per_s": round(stats.shown / result.seconds, 1),
        "longest_tick_ms": round(stats.max_interval * 1e3, 1),
        "median_tick_ms": round(stats.median_interval * 1e3, 2),
        "late_ticks": stats.late,
    }
    for feed in feeds:
        row.update(recorded=feed.taken - feed.failed, dropped=feed.dropped)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="show time rendered (10)")
    parser.add_argument("--play", type=float, default=8.0, help="seconds of each play round (8)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each kind (2)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        renders = [render_speed(args.seconds, size, Path(folder)) for size in SIZES]
        plays = [
            play_round(args.play, Path(folder) / "recorded.mp4" if recorded else None)
            for _ in range(args.rounds)
            for recorded in (False, True)
        ]
    report = {
        "render_preset": RENDER_PRESET,
        "record_preset": RECORD_PRESET,
        "renders": renders,
        "plays": plays,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"render, {args.seconds:g} s of the default show at 30 frames/s, preset {RENDER_PRESET}")
    for row in renders:
        print(
            f"  {row['size']}: {row['frames_per_s']} frames/s ({row['frames']} in {row['seconds']}"
            f" s); inference {row['inference']:.0%}, scaling {row['scaling']:.0%}, writing "
            f"{row['writing']:.0%}; {row['megabytes']} MB"
        )
    print(f"display loop, {args.play:g} s rounds at 60 frames/s, --record preset {RECORD_PRESET}")
    for row in plays:
        recorded = (
            f", recorded {row['recorded']}, dropped {row['dropped']}" if row["record"] else ""
        )
        print(
            f"  {'with' if row['record'] else 'without'} --record: {row['shown_per_s']} shown/s,"
            f" longest tick {row['longest_tick_ms']} ms, median {row['median_tick_ms']} ms, "
            f"{row['late_ticks']} late{recorded}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
