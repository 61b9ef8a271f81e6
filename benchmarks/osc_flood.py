"""OSC flood: does the display keep its rate while a sender floods the OSC port?

Runs the real runtime headless (ONNX Runtime worker, conductor, OSC server, show loop, SDL's
dummy display) and measures the display's tick intervals for a quiet stretch, then while a
client sends ``--rate`` messages per second for ``--seconds`` seconds: a mix of valid
``/intensity`` messages, wrong arguments, unknown addresses and random bytes. It does this
twice: with the show's default ``max_rate`` (the excess is dropped at the door) and with
the limit lifted, so every message is parsed and handled (the worst case). The sender is
another process, as a lighting desk or a rogue machine on the network would be.

``--bundles`` floods with 64 KB bundles of about 2,700 ``/intensity`` messages each instead
(``--rate`` then counts bundles): the attack that once took 126 ms of parsing per datagram,
before the rate limit looked at it. In both modes another client asks ``/status`` every
50 ms during the flood and counts the replies, as an operator's screen polling the show would.

    python benchmarks/osc_flood.py                      # 10,000 messages/s for 10 s
    python benchmarks/osc_flood.py --bundles --rate 200 --seconds 5
    python benchmarks/osc_flood.py --seconds 3 --json
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import socket
import struct
import tempfile
import threading
import time
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

from pythonosc.osc_message_builder import OscMessageBuilder
from ticks import TickDisplay

from installation.control.steering import ShowControl
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

#: The flood's source address: another host to the rate limit (all of 127/8 is loopback).
FLOODER = "127.0.0.2"


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


def big_bundle(size: int = 65_000) -> bytes:
    """A bundle of as many small valid messages as fit in ``size`` bytes."""
    element = OscMessageBuilder("/intensity")
    element.add_arg(0.5)
    dgram = element.build().dgram
    element_bytes = struct.pack(">i", len(dgram)) + dgram
    count = (size - 16) // len(element_bytes)
    return b"#bundle\x00" + bytes(7) + b"\x01" + element_bytes * count


def flood(
    address: tuple[str, int], rate: float, seconds: float, bundles: bool, sent: Synchronized
) -> None:
    """Send ``rate`` datagrams a second for ``seconds``; runs in its own process."""
    cycle = [big_bundle()] if bundles else datagrams()
    count = 0
    start = time.perf_counter()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((FLOODER, 0))
        while (elapsed := time.perf_counter() - start) < seconds:
            while count < int(elapsed * rate):
                sock.sendto(cycle[count % len(cycle)], address)
                count += 1
            time.sleep(0.001)
    sent.value = count


class StatusProbe:
    """Asks ``/status`` every 50 ms from its own socket and counts the replies; from
    127.0.0.1 while the flood comes from ``FLOODER``, so each has its own rate allowance."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.asked = 0
        self.answered = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        ask = OscMessageBuilder("/status").build().dgram
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.05)
            while not self.stop.is_set():
                sock.sendto(ask, self.address)
                self.asked += 1
                deadline = time.perf_counter() + 0.05
                while (left := deadline - time.perf_counter()) > 0:
                    sock.settimeout(left)
                    try:
                        if sock.recv(1024).startswith(b"/status/reply"):
                            self.answered += 1
                    except TimeoutError:
                        break


def run(max_rate: float, rate: float, seconds: float, bundles: bool) -> dict[str, object]:
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

    with ShowControl(show, conductor, pipeline.bundle) as control:
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
        sender = spawn.Process(target=flood, args=(address, rate, seconds, bundles, sent))
        sender.start()
        time.sleep(0.5)  # the sender's interpreter starting
        flood_start = time.perf_counter()
        probe = StatusProbe(address)
        probe.thread.start()
        sender.join()
        flood_end = time.perf_counter()
        probe.stop.set()
        probe.thread.join()
        time.sleep(0.5)
        display.quit.set()
        thread.join()
        stats = control.osc.stats
    return {
        "max_rate": max_rate,
        "datagrams": "64 KB bundles" if bundles else "messages",
        "sent": sent.value,
        "sent_per_s": sent.value / seconds,
        "quiet": display.stretch(quiet_start, flood_start, 1 / show.display.fps),
        "flood": display.stretch(flood_start, flood_end, 1 / show.display.fps),
        "status_asked": probe.asked,
        "status_answered": probe.answered,
        "osc": stats.summary(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10_000, help="datagrams per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the flood")
    parser.add_argument("--bundles", action="store_true", help="flood with 64 KB bundles")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    reports = [run(limit, args.rate, args.seconds, args.bundles) for limit in (1000.0, 100_000.0)]
    if args.json:
        print(json.dumps(reports, indent=2))
        return
    for report in reports:
        print(
            f"max_rate {report['max_rate']:g}: sent {report['sent']} {report['datagrams']} "
            f"({report['sent_per_s']:.0f}/s)"
        )
        for stretch in ("quiet", "flood"):
            row = report[stretch]
            assert isinstance(row, dict)
            print(
                f"  {stretch:<6} {row['frames_per_s']:6.1f} frames/s, median tick "
                f"{row['median_tick_ms']:.1f} ms, p99 {row['p99_tick_ms']:.1f} ms, "
                f"max {row['longest_tick_ms']:.1f} ms, {row['late_ticks']} late"
            )
        print(f"  /status answered {report['status_answered']} of {report['status_asked']}")
        print(f"  osc: {report['osc']}")


if __name__ == "__main__":
    main()
