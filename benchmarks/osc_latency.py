"""OSC latency: from a UDP message leaving a client to the first presented frame showing it.

Runs the real runtime headless (ONNX Runtime worker, conductor, OSC server, the show loop
and SDL's dummy display) with a show of two scenes, sends ``/blackout`` and ``/scene`` from
python-osc's client over loopback, and timestamps every present. A blackout counts as shown
at the first present with brightness 0; a scene change at the first present whose frame is
exactly the new scene's first face (computed beforehand by the same pipeline). Trials are
spaced by a random pause so they fall on every phase of the display's tick.

    python benchmarks/osc_latency.py                   # 100 trials of each, 60 Hz
    python benchmarks/osc_latency.py --trials 300 --json

Targets (issue 4): p95 within 2 display frames for /blackout, within 100 ms for /scene.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pythonosc.udp_client import SimpleUDPClient

from installation.control.steering import ShowControl
from installation.display import Action, HeadlessDisplay
from installation.engine.frames import Frame
from installation.player import play
from installation.score.trajectory import keyframe
from installation.session import open_show

BUNDLE = Path(__file__).resolve().parent.parent / "bundles" / "faces-256"
SHOW = f"""
bundle = "{BUNDLE}"
[display]
mode = "headless"
fps = {{fps}}
[osc]
port = 0
max_rate = 100000
[[scenes]]
name = "a"
seed = 1
hold = 3600.0
transition = "cut"
[[scenes]]
name = "b"
seed = 2
hold = 3600.0
transition = "cut"
"""


class TimingDisplay(HeadlessDisplay):
    """The real headless display, noting when each present finished and what it showed."""

    def __init__(self) -> None:
        super().__init__((320, 180))
        self.lock = threading.Lock()
        self.presents: list[tuple[float, float, Frame]] = []
        self.quit = threading.Event()

    def present(self, a: Frame, b: Frame | None, weight: float, brightness: float = 1.0) -> None:
        super().present(a, b, weight, brightness)
        with self.lock:
            self.presents.append((time.perf_counter(), brightness, a))
            del self.presents[:-600]

    def poll(self) -> list[Action]:
        return [*super().poll(), *([Action.QUIT] if self.quit.is_set() else [])]

    def first_after(self, sent: float, shows: Callable[[float, Frame], bool]) -> float:
        """Seconds from ``sent`` to the first present after it that ``shows`` the change."""
        deadline = time.perf_counter() + 5.0
        while time.perf_counter() < deadline:
            with self.lock:
                found = [
                    at for at, level, frame in self.presents if at >= sent and shows(level, frame)
                ]
            if found:
                return found[0] - sent
            time.sleep(0.002)
        raise RuntimeError("the change never reached the screen")


def measure(trials: int, fps: float) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "latency.toml"
        path.write_text(SHOW.replace("{fps}", str(fps)))
        show, ladder, conductor = open_show(path)
        pipeline = ladder.pipeline
    faces = {
        name: pipeline.run(keyframe(seed, 0, 100)[None])[0] for name, seed in (("a", 1), ("b", 2))
    }
    display = TimingDisplay()
    control = ShowControl(show, conductor, pipeline.bundle)

    def run() -> None:
        display.open("latency")
        try:
            play(display, pipeline, conductor, fps, show.engine.lead)
        finally:
            display.close()

    with control:
        assert control.osc is not None and control.osc.wait_bound(5.0)
        address = control.osc.address
        assert address is not None
        client = SimpleUDPClient(*address)
        thread = threading.Thread(target=run)
        thread.start()
        time.sleep(1.0)  # warm-up: first uploads, the worker's latency estimate
        rng = random.Random(0)
        blackout, scene = [], []
        for trial in range(trials):
            time.sleep(rng.uniform(0.05, 0.1))
            sent = time.perf_counter()
            client.send_message("/blackout", 1)
            blackout.append(display.first_after(sent, lambda level, _: level == 0.0))
            client.send_message("/blackout", 0)
            time.sleep(rng.uniform(0.05, 0.1))
            target = "b" if trial % 2 == 0 else "a"
            sent = time.perf_counter()
            client.send_message("/scene", target)
            face = faces[target]
            scene.append(
                display.first_after(sent, lambda _, f, face=face: np.array_equal(f.image, face))
            )
        display.quit.set()
        thread.join()
    frame = 1.0 / fps
    return {
        name: _summary(values, frame)
        for name, values in (("/blackout", blackout), ("/scene", scene))
    }


def _summary(values: list[float], frame: float) -> dict[str, float]:
    ms = np.asarray(values) * 1e3
    return {
        "trials": len(values),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "max_ms": float(ms.max()),
        "p95_frames": float(np.percentile(ms, 95) / (frame * 1e3)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100, help="messages of each kind (100)")
    parser.add_argument("--fps", type=float, default=60.0, help="display rate (60)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    report = measure(args.trials, args.fps)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    headers = ("trials", "p50 ms", "p95 ms", "max ms", "p95 frames")
    print(f"{'address':<10}" + "".join(f" {h:>10}" for h in headers))
    for name, row in report.items():
        print(
            f"{name:<10} {row['trials']:>10.0f} {row['p50_ms']:>10.1f} {row['p95_ms']:>10.1f} "
            f"{row['max_ms']:>10.1f} {row['p95_frames']:>10.2f}"
        )


if __name__ == "__main__":
    main()
