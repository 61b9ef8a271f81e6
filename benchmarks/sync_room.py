"""Frame lockstep of a room: four shows on this machine, ranks 0 to 3, with clock errors of 0,
+20, -20 and +10 ms, in a private network namespace (``unshare -rn``), playing the scenario of
tests/sync_room.py (a cue, a late joiner, a follower cut off and let back, the leader killed
and replaced, a cue to the new leader) with longer steps and the show's own heartbeat and
failover (0.25 s, 2 s).

Prints, in frames at 60 fps: how far apart the screens' frames are at the same moment beyond
what the clock errors explain (median, 95th percentile, largest; sampled every 5 ms of the
whole run), the frame at which each cue took effect on each screen (spread), the seconds from
a cue sent to the leader's screen changing, and from the leader's death to the new leader.

    python benchmarks/sync_room.py                 # 10 s steps: about 90 s
    python benchmarks/sync_room.py --play 20 --json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "tests" / "sync_room.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--play", type=float, default=10.0, help="seconds between steps")
    parser.add_argument("--heartbeat", type=float, default=0.25)
    parser.add_argument("--failover", type=float, default=2.0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    sys.path.insert(0, str(HARNESS.parent))
    from conftest import MULTICAST_NETNS

    environment = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    environment["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HARNESS.parent)])
    timing = ["--play", str(args.play), "--heartbeat", str(args.heartbeat)]
    timing += ["--failover", str(args.failover)]
    with tempfile.TemporaryDirectory() as folder:
        harness = [sys.executable, str(HARNESS), folder, *timing]
        completed = subprocess.run(
            ["unshare", "-rn", "sh", "-c", MULTICAST_NETNS, *harness],
            capture_output=True,
            text=True,
            env=environment,
            cwd=ROOT,
        )
    if completed.returncode != 0:
        sys.exit(completed.stderr[-6000:])
    room = json.loads(completed.stdout)
    room.pop("logs")
    if args.json:
        print(json.dumps(room, indent=1))
        return
    spread = room["disagreement"]
    cues = room["cue frames"], room["second cue frames"]
    print(f"room: ranks 0-3, clock offsets {room['offsets']} s, {room['fps']} fps")
    print(f"ticks traced per screen: {room['ticks']}")
    print(
        f"frame disagreement beyond the offsets ({spread['samples']} moments): median "
        f"{spread['median']:.2f}, p95 {spread['p95']:.2f}, max {spread['max']:.2f} frames"
    )
    epochs = room["epochs"].values()
    apart = (max(epochs) - min(epochs)) * 1e3
    print(f"frame grids apart (each screen's epoch from its best-timed tick): {apart:.3f} ms")
    for name, switches in zip(("cue to rank 0", "cue to rank 1 (new leader)"), cues, strict=True):
        print(f"{name}: {cue_spread(switches)}")
    print(f"cue sent to the leader's screen changing: {room['cue delay']:.3f} s")
    print(
        f"leader killed to rank {room['events']['new leader']} leading: "
        f"{room['takeover seconds']:.2f} s (failover {args.failover} s); show time moved "
        f"{max(room['epoch moved at takeover']) * 1e3:.1f} ms at the takeover"
    )
    print(
        f"same frame, same picture: followers {room['followers']}, late joiner "
        f"{room['late joiner']}, after takeover {room['after takeover']} ([frames, differing])"
    )
    print(
        f"cut-off screen: {room['cut off ticks']} ticks while alone, longest gap "
        f"{room['cut off longest gap'] * 1e3:.0f} ms, then followed rank "
        f"{room['events']['rejoined rank']}"
    )


def cue_spread(switches: list[list[int] | None]) -> str:
    """Where each screen changed (the last frame before, the first after: a late tick skips
    some) and how many frames apart the screens changed, 0 when one frame fits them all."""
    if None in switches:
        return f"a screen never changed: {switches}"
    first = max(before for before, _ in switches) + 1
    spread = max(0, first - min(after for _, after in switches))
    return f"screens changed between frames {switches}: frame {first}, spread {spread} frames"


if __name__ == "__main__":
    main()
