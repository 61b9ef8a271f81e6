"""Snapshot size and cost: does the conductor's whole state fit one sync datagram?

A sync leader sends its state (``installation.score.snapshot``) at every change and with every
heartbeat, in one UDP datagram of at most 60 KB. The tests check that a typical state fits;
this reports the sizes for the shapes that make it big: a transition's start pictures, one
latent per face stream, for a Z bundle of the default show's size and for a W bundle of
StyleGAN's size (16 ws of 512, the ws of each keyframe drawn from a seeded generator: sizes
depend on the shapes, and mapped ws compress no better than random ones), in one face and in
grids, mid-transition with a change pending and settled after it. It also times encoding,
decoding and installing on this machine (the leader's heartbeat, a follower's receipt).
Exit status 1 when a state, settled or mid-transition, does not fit a datagram (a W bundle's
4 x 4 grid with a change pending is the largest: about 33 KB, its start pictures sent once
for both states).

    python benchmarks/snapshot_size.py
    python benchmarks/snapshot_size.py --json
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from installation.score.conductor import Conductor
from installation.score.show import load_show
from installation.score.snapshot import decode, encode
from installation.score.wspace import WSpace

ROOT = Path(__file__).resolve().parent.parent
DATAGRAM = 60_000
W_DIM, NUM_WS = 512, 16
SCENES = """
[[scenes]]
name = "a"
seed = "random"
hold = 1.0
morph = 2.0
breathing = 0.3
transition = "morph"

[[scenes]]
name = "b"
seed = 3
hold = 0.5
morph = 1.0
transition = "crossfade"
"""


@functools.lru_cache(maxsize=4096)
def keyframe_w(seed: int, index: int, label: int) -> np.ndarray:
    return np.random.default_rng([seed, index, label]).standard_normal(W_DIM).astype(np.float32)


def conductor(folder: Path, grid: tuple[int, int], w: bool) -> tuple[Conductor, list[float]]:
    display = "" if grid == (1, 1) else f'[display]\nlayout = "grid"\ngrid = {list(grid)}\n'
    path = folder / "show.toml"
    path.write_text(f'bundle = "{ROOT / "bundles" / "faces-256"}"\n{display}{SCENES}')
    show = load_show(path)
    if w:
        space = WSpace(np.zeros(W_DIM, np.float32), NUM_WS, 0, True, keyframe_w)
        made = Conductor(show, 512, "normal", 1, space, delay=0.1)
    else:
        made = Conductor(show, 100, "normal", 1, delay=0.1)
    now = [0.0]
    made.start(lambda: now[0])
    return made, now


def median_ms(work: Callable[[], object], repeat: int = 50) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000.0


def measure(folder: Path, grid: tuple[int, int], w: bool) -> dict[str, float]:
    leader, now = conductor(folder, grid, w)
    follower, _ = conductor(folder, grid, w)
    now[0] = 3.0
    leader.go_to_scene("b")  # crossfades in over 1 s from 3.1
    now[0] = 3.5
    leader.tick(3.5)
    leader.set_seed(7)  # a transition from a transition, pending at 3.6
    snapshot = leader.snapshot()
    during = encode(snapshot)
    now[0] = 6.0
    leader.tick(6.0)
    settled = encode(leader.snapshot())
    return {
        "during_bytes": len(during),
        "settled_bytes": len(settled),
        "encode_ms": median_ms(lambda: encode(snapshot)),
        "decode_ms": median_ms(lambda: decode(during, follower.score)),
        "install_ms": median_ms(lambda: follower.install(decode(during, follower.score))),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for w in (False, True):
            for grid in ((1, 1), (2, 2), (4, 4)):
                name = f"{'W 16x512' if w else 'Z 100'} grid {grid[0]}x{grid[1]}"
                results[name] = measure(Path(folder), grid, w)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{'':22} {'during':>8} {'settled':>8} {'encode':>9} {'decode':>9} {'install':>9}")
        for name, r in results.items():
            print(
                f"{name:22} {r['during_bytes']:8.0f} {r['settled_bytes']:8.0f} "
                f"{r['encode_ms']:7.2f}ms {r['decode_ms']:7.2f}ms {r['install_ms']:7.2f}ms"
            )
    sizes = [max(r["settled_bytes"], r["during_bytes"]) for r in results.values()]
    return 0 if all(size < DATAGRAM for size in sizes) else 1


if __name__ == "__main__":
    sys.exit(main())
