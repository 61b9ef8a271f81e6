"""A room of PCs in frame lockstep, on this one machine: run by tests/test_sync_room.py and
benchmarks/sync_room.py inside a private network namespace (``unshare -rn``,
``conftest.MULTICAST_NETNS``), where the show's multicast group reaches only the instances
started here.

Four real ``installation run --headless`` instances of one show, ranks 0 to 3, each with its
own clock error (``INSTALLATION_CLOCK_OFFSET``, as chrony would leave them) and a frame trace
(``INSTALLATION_FRAME_TRACE``): which frame each presented when, on the one real clock. The
scenario: rank 0 starts and leads, ranks 1 and 2 join it; a cue (OSC ``/scene 2``) goes to
the leader; rank 3 starts late; rank 2 is cut off from the group (``INSTALLATION_SYNC_DROP``)
until it leads alone, then let back; the leader is killed (SIGKILL) and rank 1 takes over; a
cue goes to the new leader; the rest stop (SIGTERM). What the traces say is printed as one
JSON object: the figures and the facts the test judges (``measure``).

    python tests/sync_room.py WORKDIR [--play SECONDS] [--heartbeat S --failover S]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from conftest import DEFAULT_BUNDLE
from pythonosc.udp_client import SimpleUDPClient

from installation.control.sync.clock import OFFSET_ENV
from installation.control.sync.multicast import DROP_ENV
from installation.output.trace import TRACE_ENV, read_trace

#: The clock error of each rank's PC, in seconds: up to +-20 ms, as the issue asks.
OFFSETS = (0.0, 0.02, -0.02, 0.01)
FPS = 60
OSC_PORT = 9300
#: Seconds any one step may take before the room is declared broken: generous, for loaded CI.
PATIENCE = 60.0
FOLLOWING = r"sync: following rank (\d+)"
LEADING = r"sync: leading \(rank (\d+)"
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


class RoomError(RuntimeError):
    """The room did not do what the scenario waits for within ``PATIENCE``."""


def room_show(rank: int, heartbeat: float, failover: float) -> str:
    """The show every PC plays, but for its rank and its OSC port: two scenes of held faces
    (a cue between them cuts), one ONNX Runtime thread each, as four share two cores here."""
    return f"""title = "room"
bundle = "{DEFAULT_BUNDLE}"

[display]
mode = "headless"
fps = {FPS}

[engine]
threads = 1
backend = "onnxruntime-cpu"

[osc]
port = {OSC_PORT + rank}

[sync]
rank = {rank}
heartbeat = {heartbeat}
failover = {failover}

[[scenes]]
name = "first"
seed = 1
hold = 2.0
morph = 2.0

[[scenes]]
name = "second"
seed = 2
hold = 2.0
morph = 2.0
transition = "cut"
"""


@dataclass
class Instance:
    """One PC of the room: ``installation run`` with its own show, clock error, trace, log,
    runtime folder (its health record) and partition switch (``drop``: while it exists, the
    instance hears and sends nothing to the group)."""

    rank: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    ended: float | None = None

    @property
    def offset(self) -> float:
        return OFFSETS[self.rank]

    @property
    def log(self) -> Path:
        return self.folder / "log.txt"

    @property
    def trace(self) -> Path:
        return self.folder / "trace.npy"

    @property
    def drop(self) -> Path:
        return self.folder / "drop"

    def start(self, heartbeat: float, failover: float, lifetime: float) -> None:
        """Start the show. It stops by itself after ``lifetime`` seconds: were this harness
        killed (a test's timeout) before stopping it, it would play on for good."""
        self.folder.mkdir(parents=True, exist_ok=True)
        show = self.folder / "show.toml"
        show.write_text(room_show(self.rank, heartbeat, failover))
        environment = {
            **os.environ,
            OFFSET_ENV: str(self.offset),
            TRACE_ENV: str(self.trace),
            DROP_ENV: str(self.drop),
            "XDG_RUNTIME_DIR": str(self.folder),
            "SDL_VIDEODRIVER": "dummy",
        }
        environment.pop("RUNTIME_DIRECTORY", None)
        command = [sys.executable, "-m", "installation", "run", str(show), "--headless"]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*command, "--duration", str(lifetime)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=environment,
            )
        self.started = time.time()

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def mark(self) -> int:
        """Where the log ends now: ``wait_for`` after it sees only what comes later."""
        return len(self.text())

    def wait_for(self, pattern: str, after: int = 0) -> tuple[float, re.Match[str]]:
        """The wall time of the first log line after ``after`` matching ``pattern``, and the
        match; waits for it."""
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            text = self.text()
            for line in text[after:].splitlines():
                found = re.search(pattern, line)
                stamp = _STAMP.match(line)
                if found and stamp:
                    moment = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f")
                    return moment.timestamp(), found
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise RoomError(f"rank {self.rank} never logged {pattern!r}; its log:\n{self.text()}")

    def kill(self) -> float:
        assert self.process is not None
        moment = time.time()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.ended = moment
        return moment

    def stop(self) -> int:
        """SIGTERM, as systemd stops a show; the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=PATIENCE)
        self.ended = time.time()
        return code


def cue(rank: int, address: str, value: int) -> float:
    """Send one OSC message to rank ``rank``'s show; when it was sent."""
    SimpleUDPClient("127.0.0.1", OSC_PORT + rank).send_message(address, value)
    return time.time()


@dataclass
class Scenario:
    """The room's timeline: what was done when (wall-clock seconds), for ``measure``."""

    play: float
    heartbeat: float
    failover: float
    events: dict[str, float] = field(default_factory=dict)
    codes: dict[int, int] = field(default_factory=dict)


def run(folder: Path, scenario: Scenario) -> list[Instance]:
    """Play the scenario (see the module docstring); every instance stopped at the end."""
    room = [Instance(rank, folder / f"rank{rank}") for rank in range(4)]
    a, b, c, d = room
    events = scenario.events
    beat = (scenario.heartbeat, scenario.failover, 10 * (PATIENCE + scenario.play))
    try:
        a.start(*beat)  # alone first: rank 0 leads whichever instance loads faster
        a.wait_for(LEADING)
        b.start(*beat)
        c.start(*beat)
        b.wait_for(FOLLOWING)
        c.wait_for(FOLLOWING)
        events["steady"] = time.time() + 1.0  # past the first frames after adopting the epoch
        time.sleep(scenario.play)
        events["cue"] = cue(0, "/scene", 2)
        time.sleep(scenario.play)
        d.start(*beat)
        events["late joined"], _ = d.wait_for(FOLLOWING)
        time.sleep(scenario.play)
        mark = c.mark()
        c.drop.touch()
        events["cut off"] = time.time()
        events["alone"], _ = c.wait_for(LEADING, mark)
        time.sleep(scenario.play / 2)
        mark = c.mark()
        c.drop.unlink()
        events["let back"] = time.time()
        events["rejoined"], found = c.wait_for(FOLLOWING, mark)
        events["rejoined rank"] = int(found.group(1))
        time.sleep(scenario.play)
        marks = [x.mark() for x in (b, c, d)]
        events["killed"] = a.kill()
        events["taken over"], found = b.wait_for(LEADING, marks[0])
        events["new leader"] = int(found.group(1))
        events["c follows"] = int(c.wait_for(FOLLOWING, marks[1])[1].group(1))
        events["d follows"] = int(d.wait_for(FOLLOWING, marks[2])[1].group(1))
        time.sleep(scenario.play)
        events["second cue"] = cue(1, "/scene", 1)
        time.sleep(scenario.play)
        events["stopping"] = time.time()
    finally:
        for instance in room:
            if instance.process is not None and instance.ended is None:
                scenario.codes[instance.rank] = instance.stop()
    return room


# What the traces say.


def presented(rows: np.ndarray, times_ns: np.ndarray) -> np.ndarray:
    """Index of the row on screen at each wall time (the last presented at or before it), -1
    before the first."""
    return np.searchsorted(rows["wall_ns"], times_ns, side="right") - 1


def disagreement(
    traces: dict[int, np.ndarray], windows: dict[int, tuple[float, float]], step: float = 0.005
) -> np.ndarray:
    """At every ``step`` seconds of wall time where at least two instances play (each within
    its window), how far apart their frames are, in frames, after taking out what their clock
    errors account for: the largest minus the smallest of frame - offset x fps. A window
    ends at the trace's last tick at the latest (a killed instance's last second is lost)."""
    start = min(begin for begin, _ in windows.values())
    end = max(finish for _, finish in windows.values())
    times = np.arange(start, end, step)
    times_ns = (times * 1e9).astype(np.int64)
    corrected = np.full((len(traces), len(times)), np.nan)
    for row, (rank, rows) in enumerate(sorted(traces.items())):
        begin, finish = windows[rank]
        finish = min(finish, rows["wall_ns"][-1] / 1e9)
        index = presented(rows, times_ns)
        inside = (index >= 0) & (times >= begin) & (times <= finish)
        frames = rows["frame"][np.maximum(index, 0)] - OFFSETS[rank] * FPS
        corrected[row, inside] = frames[inside]
    counted = np.sum(~np.isnan(corrected), axis=0) >= 2
    spread = np.nanmax(corrected[:, counted], axis=0) - np.nanmin(corrected[:, counted], axis=0)
    return spread


def switch(rows: np.ndarray, scene: int, after: float) -> tuple[int, int] | None:
    """Between which frames the screen changed to scene ``scene`` after wall time ``after``:
    the last frame presented before and the first presented in it. Consecutive on time; a
    late tick skips frames, and then the change happened at one of those between."""
    found = np.flatnonzero((rows["wall_ns"] >= after * 1e9) & (rows["scene"] == scene))
    if len(found) == 0 or found[0] == 0:
        return None
    return int(rows["frame"][found[0] - 1]), int(rows["frame"][found[0]])


def epoch(rows: np.ndarray, offset: float, begin: float, end: float) -> float:
    """The show-time epoch the instance played on between ``begin`` and ``end`` (wall time):
    each tick is at or after its frame's grid line, so the earliest is the line itself."""
    chosen = rows[(rows["wall_ns"] >= begin * 1e9) & (rows["wall_ns"] <= end * 1e9)]
    return float(np.min(chosen["wall_ns"] / 1e9 + offset - chosen["frame"] / FPS))


def mismatches(one: np.ndarray, other: np.ndarray, after: float) -> tuple[int, int]:
    """Frames both presented (``other`` after wall time ``after``) and how many of them showed
    a different scene, seed or brightness: the same frame must be the same picture."""
    other = other[other["wall_ns"] >= after * 1e9]
    frames, mine, theirs = np.intersect1d(one["frame"], other["frame"], return_indices=True)
    fields = ("scene", "seed", "brightness")
    differ = np.zeros(len(frames), bool)
    for name in fields:
        differ |= one[name][mine] != other[name][theirs]
    return len(frames), int(differ.sum())


def measure(room: list[Instance], scenario: Scenario) -> dict[str, Any]:
    """The figures and facts of a played scenario."""
    events = scenario.events
    traces = {x.rank: read_trace(x.trace) for x in room}
    a, b, c, d = (traces[rank] for rank in range(4))
    killed, taken = events["killed"], events["taken over"]
    joined = events["late joined"] + 0.2
    stopping = events["stopping"]
    windows = {0: (events["steady"], killed), 1: (events["steady"], stopping)}
    windows[2] = (events["steady"], stopping)
    windows[3] = (joined, stopping)
    spread = disagreement(traces, windows)
    quiet = (killed - 1.0, taken + 1.0)  # no cue meanwhile: nothing may change
    during = c[
        (c["wall_ns"] >= events["cut off"] * 1e9) & (c["wall_ns"] <= events["let back"] * 1e9)
    ]
    gaps = np.diff(during["wall_ns"]) / 1e9 if len(during) > 1 else np.array([np.inf])
    return {
        "offsets": list(OFFSETS),
        "fps": FPS,
        "events": events,
        "codes": scenario.codes,
        "ticks": {rank: len(rows) for rank, rows in traces.items()},
        "disagreement": {
            "samples": len(spread),
            "median": float(np.median(spread)),
            "p95": float(np.percentile(spread, 95)),
            "max": float(np.max(spread)),
        },
        "epochs": {rank: epoch(traces[rank], OFFSETS[rank], *windows[rank]) for rank in traces},
        "cue frames": [switch(rows, 2, events["cue"]) for rows in (a, b, c)],
        "second cue frames": [switch(rows, 1, events["second cue"]) for rows in (b, c, d)],
        "cue delay": scenario_delay(a, events["cue"]),
        "takeover seconds": taken - killed,
        "epoch moved at takeover": [
            abs(
                epoch(rows, OFFSETS[rank], killed - 2.0, killed)
                - epoch(rows, OFFSETS[rank], taken, taken + 2.0)
            )
            for rank, rows in ((1, b), (2, c), (3, d))
        ],
        "pictures at takeover": [
            sorted({(int(r["scene"]), int(r["seed"])) for r in window(rows, *quiet)})
            for rows in (b, c, d)
        ],
        "late joiner": mismatches(a, d, joined),
        "followers": [mismatches(a, rows, events["steady"]) for rows in (b, c)],
        "after takeover": [mismatches(b, rows, taken + 0.5) for rows in (c, d)],
        "cut off ticks": len(during),
        "cut off longest gap": float(np.max(gaps)),
        "logs": {x.rank: x.text()[-4000:] for x in room},
    }


def window(rows: np.ndarray, begin: float, end: float) -> np.ndarray:
    return rows[(rows["wall_ns"] >= begin * 1e9) & (rows["wall_ns"] <= end * 1e9)]


def scenario_delay(leader: np.ndarray, sent: float) -> float | None:
    """Seconds from sending the cue to the leader's first frame of the new scene."""
    chosen = leader[(leader["wall_ns"] >= sent * 1e9) & (leader["scene"] == 2)]
    return float(chosen["wall_ns"][0] / 1e9 - sent) if len(chosen) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--play", type=float, default=2.0, help="seconds between steps")
    parser.add_argument("--heartbeat", type=float, default=0.1)
    parser.add_argument("--failover", type=float, default=1.0)
    args = parser.parse_args()
    scenario = Scenario(args.play, args.heartbeat, args.failover)
    try:
        room = run(args.folder, scenario)
    except RoomError as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
    print(json.dumps(measure(room, scenario)))


if __name__ == "__main__":
    main()
