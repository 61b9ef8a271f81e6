"""NDI out: what sending the screen as an NDI source costs the display loop.

The default show (shows/default.toml) played headless (SDL's dummy driver) at its 60 frames/s
in alternating rounds: without NDI, with NDI at the bundle's size (256 x 256) and with NDI at
1920 x 1080, so every kind sees the same machine load. Each round reports the frames shown per
second, the longest tick and the ticks over twice their budget, the frames NDI sent and
dropped, the feed thread's CPU time (composing, scaling, the RGBX copy and NDI's compression,
as a share of one core) and the whole process's extra CPU over the round.

A receiver (cyndilib, at nice 19, taking full-bandwidth frames as a mapping PC would) stays
connected, so the sender compresses and sends every frame. Everything runs inside a private
network namespace (``unshare -rn``) whose NDI configuration finds the source at 127.0.0.1:
nothing is announced on the real network. Needs the ``ndi`` extra.

    python benchmarks/ndi_send.py                   # 2 rounds of each kind, 8 s each
    python benchmarks/ndi_send.py --play 20 --rounds 3 --json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from installation.display import HeadlessDisplay
from installation.output.feed import ScreenFeed
from installation.output.ndi import NdiSender, load_cyndilib
from installation.player import RunningShow
from installation.score.ndi_settings import NdiSettings
from installation.session import open_show

ROOT = Path(__file__).resolve().parent.parent
SHOW = ROOT / "shows" / "default.toml"
NAME = "ndi-send-benchmark"
#: None: the bundle's size.
SIZES: tuple[tuple[int, int] | None, ...] = (None, (1920, 1080))
CONFIG = {"ndi": {"networks": {"ips": "127.0.0.1"}, "multicast": {"send": {"enable": False}}}}
INSIDE = "NDI_SEND_BENCHMARK_INSIDE"


@dataclass
class Sending:
    """One round's NDI feed, and what its thread noted when it finished."""

    size: tuple[int, int]
    feed: ScreenFeed | None = None
    thread_cpu: float = 0.0
    receivers: int = 0

    def start(self, fps: float, picture: tuple[int, int]) -> ScreenFeed:
        """The feed ``ndi_outputs`` makes, whose ``finish`` (on the feed's thread, after its
        last frame) also notes the thread's CPU time and the receivers still connected."""
        cyndilib = load_cyndilib()
        assert cyndilib is not None, "the ndi extra is not installed: pip install -e '.[ndi]'"
        sender = NdiSender(cyndilib, NdiSettings(NAME), self.size, fps)

        def finish() -> None:
            self.thread_cpu = time.thread_time()
            self.receivers = sender.sender.get_num_connections(0)
            sender.close()

        self.feed = ScreenFeed("ndi", f"NDI {sender.source}", sender, self.size, finish=finish)
        return self.feed


def play_round(seconds: float, ndi: bool, size: tuple[int, int] | None) -> dict[str, object]:
    show, ladder, conductor = open_show(SHOW)
    display = HeadlessDisplay((640, 360))
    sending = Sending(size or ladder.pipeline.bundle.output_size)
    display.open("ndi overhead")
    try:
        running = RunningShow(display, ladder, conductor, show.display.fps, show.engine.lead)
        if ndi:
            running.outputs.append(sending.start)
        cpu = time.process_time()
        result = running.play(seconds)
        cpu = time.process_time() - cpu
    finally:
        display.close()
    stats = result.stats
    row: dict[str, object] = {
        "ndi": f"{sending.size[0]}x{sending.size[1]}" if ndi else "off",
        "shown_per_s": round(stats.shown / result.seconds, 1),
        "longest_tick_ms": round(stats.max_interval * 1e3, 1),
        "median_tick_ms": round(stats.median_interval * 1e3, 2),
        "late_ticks": stats.late,
        "process_cpu": round(cpu / result.seconds, 3),
    }
    if sending.feed is not None:
        row.update(
            sent=sending.feed.taken - sending.feed.failed,
            dropped=sending.feed.dropped,
            receivers=sending.receivers,
            feed_thread_cpu=round(sending.thread_cpu / result.seconds, 3),
        )
    return row


def receive() -> None:
    """The receiver: finds the source by name and takes its frames until killed; NDI
    reconnects it by name to each round's new sender."""
    import cyndilib
    from cyndilib.receiver import ReceiveFrameType

    with cyndilib.Finder() as finder:
        while not any(n.endswith(f"({NAME})") for n in finder.get_source_names()):
            finder.wait_for_sources(0.5)
        found = next(n for n in finder.get_source_names() if n.endswith(f"({NAME})"))
        receiver = cyndilib.Receiver(
            color_format=cyndilib.RecvColorFormat.UYVY_RGBA,
            bandwidth=cyndilib.RecvBandwidth.highest,
        )
        frame = cyndilib.VideoRecvFrame()
        receiver.set_video_frame(frame)
        receiver.set_source(finder.get_source(found))
        while True:
            if receiver.receive(ReceiveFrameType.recv_video, 500) & ReceiveFrameType.recv_video:
                frame.skip_frames(True)


def rounds(args: argparse.Namespace) -> list[dict[str, object]]:
    """The rounds, alternating, with the receiver connected throughout."""
    receiver = subprocess.Popen(["nice", "-n", "19", sys.executable, __file__, "--receive"])
    try:
        plays = [
            play_round(args.play, ndi, size)
            for _ in range(args.rounds)
            for ndi, size in ((False, None), *((True, size) for size in SIZES))
        ]
    finally:
        receiver.kill()
        receiver.wait()
    return plays


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--play", type=float, default=8.0, help="seconds of each round (8)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each kind (2)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--receive", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receive:
        receive()
        return 0
    if os.environ.get(INSIDE) is None:
        return _in_namespace()
    plays = rounds(args)
    if args.json:
        print(json.dumps({"cores": os.cpu_count(), "plays": plays}, indent=2))
        return 0
    print(f"display loop, {args.play:g} s rounds at 60 frames/s, {os.cpu_count()} cores")
    for row in plays:
        extra = (
            f", sent {row['sent']}, dropped {row['dropped']}, feed thread "
            f"{row['feed_thread_cpu']:.0%} of a core, {row['receivers']} receiver(s)"
            if row["ndi"] != "off"
            else ""
        )
        print(
            f"  NDI {row['ndi']}: {row['shown_per_s']} shown/s, longest tick "
            f"{row['longest_tick_ms']} ms, median {row['median_tick_ms']} ms, {row['late_ticks']}"
            f" late, process {row['process_cpu']:.0%} of a core{extra}"
        )
    return 0


def _in_namespace() -> int:
    """Run this benchmark again inside a private network namespace with the NDI config."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "ndi-config.v1.json").write_text(json.dumps(CONFIG))
        environment = {**os.environ, INSIDE: "1", "NDI_CONFIG_DIR": folder}
        environment.setdefault("SDL_VIDEODRIVER", "dummy")
        script = 'ip link set lo up && exec "$0" "$@"'
        command = ["unshare", "-rn", "sh", "-c", script, sys.executable, __file__, *sys.argv[1:]]
        return subprocess.run(command, env=environment).returncode


if __name__ == "__main__":
    raise SystemExit(main())
