"""DMX in a running show: a desk's 44 Hz full-universe stream, and blackout to screen.

Runs the real runtime headless (ONNX Runtime worker, conductor, the DMX receiver, the show loop
and SDL's dummy display). First the display runs alone for a baseline; then a desk in a process
of its own streams all 512 channels 44 times a second (Art-Net datagrams as a desk builds them,
or sACN through the ``sacn`` library's sender) for ``--seconds``, the truncation channel in a
slow 16-bit fade all along, so every packet moves the conductor. Reported: the display's frames
per second and longest tick, alone and under the stream. Then, with the stream still going,
the blackout channel is switched on in the stream and the time from that packet leaving to the
first black present is measured, as benchmarks/osc_latency.py does for /blackout.

    python benchmarks/dmx_stream.py                      # Art-Net, 60 s, 60 Hz display
    python benchmarks/dmx_stream.py --protocol sacn --seconds 20 --json

Targets (issue 13): the display keeps its rate; blackout p95 within 2 display frames.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import random
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import sacn
from osc_latency import BUNDLE, TimingDisplay, _summary

from installation.control.dmx.artnet import art_dmx_packet
from installation.control.dmx.channels import slot_names
from installation.control.steering import ShowControl
from installation.player import play
from installation.session import open_show

RATE = 44.0
UNIVERSE = 1
SHOW = f"""
bundle = "{BUNDLE}"
[display]
mode = "headless"
fps = {{fps}}
[osc]
enabled = false
[dmx]
protocol = "{{protocol}}"
universe = {UNIVERSE}
port = {{port}}
[[scenes]]
name = "a"
seed = 1
hold = 2.0
morph = 2.0
"""
SLOT = {name: index for index, name in enumerate(slot_names())}


class Desk:
    """The desk: a process of its own (as a real desk is another machine, its work must not
    take the show's interpreter) sending the universe ``RATE`` times a second, the truncation
    channel fading all along; ``blackout`` switches the channel in the next packet and returns
    when that packet left (perf_counter is the system's monotonic clock, shared by processes).
    """

    def __init__(self, protocol: str, address: tuple[str, int]) -> None:
        context = multiprocessing.get_context("spawn")
        self.wanted = context.Value("b", -1)  # -1: no change; 0 or 1: the blackout to send
        self.changed_at = context.Value("d", 0.0)
        self.sent = context.Value("q", 0)
        self.changed = context.Event()
        self.stop = context.Event()
        arguments = (protocol, address, self.wanted, self.changed_at, self.sent)
        self.process = context.Process(
            target=stream, args=(*arguments, self.changed, self.stop), name="desk"
        )

    def blackout(self, on: bool) -> float:
        self.changed.clear()
        self.wanted.value = int(on)
        if not self.changed.wait(5.0):
            raise RuntimeError("the desk did not send")
        return self.changed_at.value


def stream(protocol: str, address: tuple[str, int], *shared: Any) -> None:
    """The desk process: ``shared`` are ``Desk``'s values and events, in its order."""
    wanted, changed_at, sent, changed, stop = shared
    send, close = artnet_sender(address) if protocol == "artnet" else sacn_sender()
    universe = bytearray(512)
    universe[SLOT["Master dimmer"]] = universe[SLOT["Master dimmer fine"]] = 255
    truncation = SLOT["Truncation"]
    due = time.perf_counter()
    count = 0
    while not stop.is_set():
        fade = int(32767 + 32767 * np.sin(count / RATE / 4.0))
        universe[truncation : truncation + 2] = fade.to_bytes(2, "big")
        universe[100 + count % 400] = count % 256  # the rest of the desk, moving
        switched = wanted.value
        if switched >= 0:
            universe[SLOT["Blackout"]] = 255 if switched else 0
        send(bytes(universe))
        if switched >= 0:
            wanted.value = -1
            changed_at.value = time.perf_counter()
            changed.set()
        count += 1
        sent.value = count
        due += 1.0 / RATE
        time.sleep(max(0.0, due - time.perf_counter()))
    close()


def artnet_sender(address: tuple[str, int]) -> tuple[Callable[[bytes], None], Callable[[], None]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sequence = iter(range(1 << 62))
    return (
        lambda data: sock.sendto(art_dmx_packet(UNIVERSE, data, next(sequence) % 255 + 1), address),
        sock.close,
    )


def sacn_sender() -> tuple[Callable[[bytes], None], Callable[[], None]]:
    """The library's thread sends a changed universe on its next tick (at twice the stream's
    rate here), so the stream's pace and a change in every packet make it 44 Hz; the blackout
    time counts from handing the universe over, so it includes up to 1/88 s of that wait."""
    sender = sacn.sACNsender(
        bind_address="127.0.0.1", bind_port=0, fps=int(RATE) * 2, universeDiscovery=False
    )
    sender.start()
    sender.activate_output(UNIVERSE)
    sender[UNIVERSE].multicast = False
    sender[UNIVERSE].destination = "127.0.0.1"

    def send(data: bytes) -> None:
        sender[UNIVERSE].dmx_data = data

    return send, sender.stop


def window(display: TimingDisplay, start: float, end: float) -> dict[str, float]:
    with display.lock:
        times = [at for at, _, _ in display.presents_all if start <= at <= end]
    ticks = np.diff(times)
    return {
        "frames_per_second": (len(times) - 1) / (times[-1] - times[0]),
        "longest_tick_ms": float(ticks.max() * 1e3),
        "p99_tick_ms": float(np.percentile(ticks, 99) * 1e3),
    }


class StreamDisplay(TimingDisplay):
    """Keeps every present's time too, for the rate over a whole window."""

    def __init__(self) -> None:
        super().__init__()
        self.presents_all: list[tuple[float, float, object]] = []

    def present(self, a, b, weight, brightness=1.0):  # type: ignore[no-untyped-def]
        super().present(a, b, weight, brightness)
        with self.lock:
            self.presents_all.append(self.presents[-1])


def measure(protocol: str, seconds: float, trials: int, fps: float) -> dict[str, object]:
    port = 0 if protocol == "artnet" else 5568
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "dmx.toml"
        path.write_text(SHOW.format(fps=fps, protocol=protocol, port=port))
        show, ladder, conductor = open_show(path)
    pipeline = ladder.pipeline
    display = StreamDisplay()
    control = ShowControl(show, conductor, pipeline.bundle)

    def run() -> None:
        display.open("dmx")
        try:
            play(display, pipeline, conductor, fps, show.engine.lead)
        finally:
            display.close()

    report: dict[str, object] = {"protocol": protocol, "display_fps": fps, "rate_hz": RATE}
    with control:
        receiver = control.dmx
        assert receiver is not None and receiver.wait_bound(5.0)
        address = receiver.address
        assert address is not None
        thread = threading.Thread(target=run)
        thread.start()
        time.sleep(1.0)  # warm-up: first uploads, the worker's latency estimate
        begin = time.perf_counter()
        time.sleep(min(5.0, seconds))
        report["alone"] = window(display, begin, time.perf_counter())
        desk = Desk(protocol, address)
        desk.process.start()
        begin = time.perf_counter()
        time.sleep(seconds)
        report["streaming"] = window(display, begin, time.perf_counter())
        report["packets_sent"] = desk.sent.value
        rng = random.Random(0)
        blackout = []
        for _ in range(trials):
            time.sleep(rng.uniform(0.05, 0.1))
            sent = desk.blackout(True)
            blackout.append(display.first_after(sent, lambda level, _: level == 0.0))
            desk.blackout(False)
        desk.stop.set()
        desk.process.join()
        display.quit.set()
        thread.join()
        report["receiver"] = vars(receiver.stats) | {
            "changes": receiver.steering.changes,
            "rejected": receiver.steering.rejected,
        }
    report["blackout"] = _summary(blackout, 1.0 / fps)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", choices=("artnet", "sacn"), default="artnet")
    parser.add_argument("--seconds", type=float, default=60.0, help="of the stream (60)")
    parser.add_argument("--trials", type=int, default=100, help="blackouts timed (100)")
    parser.add_argument("--fps", type=float, default=60.0, help="display rate (60)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a summary")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    report = measure(args.protocol, args.seconds, args.trials, args.fps)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for name in ("alone", "streaming"):
        row = report[name]
        assert isinstance(row, dict)
        print(
            f"{name:<10} {row['frames_per_second']:6.1f} frames/s, longest tick "
            f"{row['longest_tick_ms']:.1f} ms, p99 {row['p99_tick_ms']:.1f} ms"
        )
    row = report["blackout"]
    assert isinstance(row, dict)
    print(
        f"blackout   p50 {row['p50_ms']:.1f} ms, p95 {row['p95_ms']:.1f} ms "
        f"({row['p95_frames']:.2f} frames), max {row['max_ms']:.1f} ms over {row['trials']} trials"
    )
    print(f"receiver   {report['receiver']}")


if __name__ == "__main__":
    main()
