"""OSC flood: does the display keep its rate while a sender floods the OSC port?

Runs the real runtime headless (ONNX Runtime worker, conductor, OSC server, show loop, SDL's
dummy display) and measures the display's tick intervals for a quiet stretch, then while a
client sends ``--rate`` messages per second for ``--seconds`` seconds: a mix of valid
``/intensity`` messages, wrong arguments, unknown addresses and random bytes. It does this
twice: with the show's default ``max_rate`` (the excess is dropped at the door) and with
the limit lifted, so every message is parsed and handled (the worst case). The sender is
another process, as a lighting desk or a rogue machine on the network would be.

    python benchmarks/osc_flood.py                      # 10,000 messages/s for 10 s
    python benchmarks/osc_flood.py --seconds 3 --json
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import socket
import tempfile
import threading
import time
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

import numpy as np
from pythonosc.osc_message_builder import OscMessageBuilder

from installation.control import ShowControl
from installation.display import Action, HeadlessDisplay
from installation.frames import Frame
from installation.player import play
from installation.session import open_show

BUNDLE = Path(__file__).resolve().parent.parent / "bundles" / "faces-256"
SHOW = f"""
bundle = "{BUNDLE}"
[display]
mode = "headless"
[osc]
port = 0
max_rate = {{max_rate}}
[[scenes]]
name = "a"
seed = 1
hold = 1.0
morph = 2.0
breathing = 0.1
"""


class TickDisplay(HeadlessDisplay):
    """The real headless display, noting when each present finished."""

    def __init__(self) -> None:
        super().__init__((320, 180))
        self.ticks: list[float] = []
        self.quit = threading.Event()

    def present(self, a: Frame, b: Frame | None, weight: float, brightness: float = 1.0) -> None:
        super().present(a, b, weight, brightness)
        self.ticks.append(time.perf_counter())

    def poll(self) -> list[Action]:
        return [*super().poll(), *([Action.QUIT] if self.quit.is_set() else [])]

    def stretch(self, start: float, end: float) -> dict[str, float]:
        ticks = np.asarray([t for t in self.ticks if start <= t <= end])
        intervals = np.diff(ticks) * 1e3
        return {
            "frames_per_s": float(len(ticks) / (end - start)),
            "median_interval_ms": float(np.median(intervals)),
            "p99_interval_ms": float(np.percentile(intervals, 99)),
            "max_interval_ms": float(intervals.max()),
        }


def datagrams() -> list[bytes]:
    """One cycle of the flood: mostly valid messages, with every kind of bad one mixed in."""

    def message(address: str, *args: object) -> bytes:
        builder = OscMessageBuilder(address)
        for arg in args:
            builder.add_arg(arg)
        return builder.build().dgram

    valid = [message("/intensity", i / 10) for i in range(10)]
    bad = [message("/intensity", "loud"), message("/nowhere", 1), os.urandom(48), valid[0][:9]]
    return valid * 4 + bad


def flood(address: tuple[str, int], rate: float, seconds: float, sent: Synchronized) -> None:
    """Send ``rate`` datagrams a second for ``seconds``; runs in its own process."""
    cycle = datagrams()
    count = 0
    start = time.perf_counter()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        while (elapsed := time.perf_counter() - start) < seconds:
            while count < int(elapsed * rate):
                sock.sendto(cycle[count % len(cycle)], address)
                count += 1
            time.sleep(0.001)
    sent.value = count


def run(max_rate: float, rate: float, seconds: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "flood.toml"
        path.write_text(SHOW.replace("{max_rate}", f"{max_rate:g}"))
        show, ladder, conductor = open_show(path)
        pipeline = ladder.pipeline
    display = TickDisplay()

    def show_loop() -> None:
        display.open("flood")
        try:
            play(display, pipeline, conductor, show.display.fps, show.engine.lead)
        finally:
            display.close()

    with ShowControl(show, conductor, len(pipeline.stages)) as control:
        assert control.osc is not None and control.osc.wait_bound(5.0)
        address = control.osc.address
        assert address is not None
        thread = threading.Thread(target=show_loop)
        thread.start()
        time.sleep(1.0)
        quiet_start = time.perf_counter()
        time.sleep(seconds / 2)
        spawn = multiprocessing.get_context("spawn")
        sent = spawn.Value("q", 0)
        sender = spawn.Process(target=flood, args=(address, rate, seconds, sent))
        sender.start()
        time.sleep(0.5)  # the sender's interpreter starting
        flood_start = time.perf_counter()
        sender.join()
        flood_end = time.perf_counter()
        time.sleep(0.5)
        display.quit.set()
        thread.join()
        stats = control.osc.stats
    return {
        "max_rate": max_rate,
        "sent": sent.value,
        "sent_per_s": sent.value / seconds,
        "quiet": display.stretch(quiet_start, flood_start),
        "flood": display.stretch(flood_start, flood_end),
        "osc": stats.summary(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10_000, help="messages per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the flood")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    reports = [run(limit, args.rate, args.seconds) for limit in (1000.0, 100_000.0)]
    if args.json:
        print(json.dumps(reports, indent=2))
        return
    for report in reports:
        print(
            f"max_rate {report['max_rate']:g}: sent {report['sent']} ({report['sent_per_s']:.0f}/s)"
        )
        for stretch in ("quiet", "flood"):
            row = report[stretch]
            assert isinstance(row, dict)
            print(
                f"  {stretch:<6} {row['frames_per_s']:6.1f} frames/s, median tick "
                f"{row['median_interval_ms']:.1f} ms, p99 {row['p99_interval_ms']:.1f} ms, "
                f"max {row['max_interval_ms']:.1f} ms"
            )
        print(f"  osc: {report['osc']}")


if __name__ == "__main__":
    main()
