"""Soak test: run a show headless for a long time and check that nothing grows.

An installation runs for weeks; a leak of a few kilobytes a minute fills the machine before the
exhibition closes. This runs the real command line (``installation run --headless``) in a
child process, as the service would, samples its resident memory from /proc, and reads the
frame counters from the health record the runtime writes (the one ``installation status``
shows). It reports frames shown, dropped, generated and skipped, worker restarts, and memory
after warm-up and at the end.

    python benchmarks/soak.py --minutes 30                 # the default show
    python benchmarks/soak.py --minutes 5 --show my.toml --json

Exit status 1 when memory grew by more than ``--max-growth`` percent after warm-up, or the
run itself failed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLE_INTERVAL = 5.0


def rss_kib(pid: int) -> int | None:
    """Resident set size of ``pid`` in KiB, or None once it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def soak(show: Path | None, seconds: float, warmup: float) -> dict[str, object]:
    runtime = Path(tempfile.mkdtemp(prefix="soak-"))
    environ = dict(os.environ, RUNTIME_DIRECTORY=str(runtime), SDL_VIDEODRIVER="dummy")
    command = [sys.executable, "-m", "installation", "run", "--headless"]
    command += ["--duration", str(seconds)] + ([str(show)] if show else [])
    log_path = runtime / "run.log"
    started = time.monotonic()
    with log_path.open("w") as log:
        child = subprocess.Popen(command, env=environ, stdout=log, stderr=subprocess.STDOUT)
        samples: list[tuple[float, int]] = []
        fps_samples: list[float] = []
        while child.poll() is None:
            time.sleep(SAMPLE_INTERVAL)
            rss = rss_kib(child.pid)
            if rss is not None:
                samples.append((time.monotonic() - started, rss))
            record = _record(runtime)
            if record and record["state"] == "playing" and record["fps"]["shown"] > 0:
                fps_samples.append(record["fps"]["shown"])
        returncode = child.wait()
    record = _record(runtime)
    after_warmup = [rss for t, rss in samples if t >= warmup]
    if returncode != 0 or record is None or len(after_warmup) < 2:
        tail = log_path.read_text()[-2000:]
        raise SystemExit(f"soak run failed (exit {returncode}); log ends:\n{tail}")
    start, end = after_warmup[0], after_warmup[-1]
    frames = record["frames"]
    return {
        "seconds": record["uptime"],
        "warmup_seconds": warmup,
        "frames_shown": frames["shown"],
        "frames_dropped": frames["dropped"],
        "frames_generated": frames["generated"],
        "frames_skipped": frames["skipped"],
        "worker_restarts": record["restarts"]["worker"],
        "median_fps_shown": statistics.median(fps_samples) if fps_samples else 0.0,
        "target_fps": record["fps"]["target"],
        "rss_start_kib": start,
        "rss_end_kib": end,
        "rss_max_kib": max(after_warmup),
        "rss_growth_percent": 100.0 * (end - start) / start,
        "backend": record["backend"],
        "exit_code": returncode,
    }


def _record(runtime: Path) -> dict | None:
    try:
        return json.loads((runtime / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the run (30)")
    parser.add_argument("--show", type=Path, help="show file (default: shows/default.toml)")
    parser.add_argument(
        "--warmup", type=float, default=120.0, help="seconds before memory counts (120)"
    )
    parser.add_argument(
        "--max-growth", type=float, default=5.0, help="allowed memory growth in percent (5)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    seconds = args.minutes * 60
    warmup = min(args.warmup, seconds / 4)
    report = soak(args.show, seconds, warmup)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        width = max(len(key) for key in report)
        for key, value in report.items():
            text = f"{value:.2f}" if isinstance(value, float) else str(value)
            print(f"{key:<{width}}  {text}")
    growth = report["rss_growth_percent"]
    assert isinstance(growth, float)
    return 0 if growth < args.max_growth else 1


if __name__ == "__main__":
    sys.exit(main())
