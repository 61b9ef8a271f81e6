"""Web load: does the display keep its rate while twenty phones watch the remote page?

Plays a show headless as ``installation run`` does (ONNX Runtime worker, monitor, health
record, web server on a free loopback port) and measures the display's ticks for a quiet
stretch, then for as long again while ``--clients`` client threads poll the server the way the
page does: the thumbnail twice a second, the status once, the log every two seconds. The
clients run in another process, as phones would, each from its own loopback address (all of
127/8 is loopback), so each has its own rate allowance and thumbnail limit like a phone of its
own. Reported for both stretches: frames shown per second, median and longest tick, late ticks
(over twice the budget), and the CPU share of each thread (from /proc/self/task), so the web
server's own cost shows beside the display's.

    python benchmarks/web_load.py                       # 20 clients, 60 s quiet + 60 s polled
    python benchmarks/web_load.py --clients 5 --seconds 10 --json
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from ticks import TickDisplay

from installation.player import RunningShow
from installation.service.signals import RunSignals
from installation.session import open_show

BUNDLE = Path(__file__).resolve().parent.parent / "bundles" / "faces-256"
SHOW = f"""
title = "Web load"
bundle = "{BUNDLE}"
[display]
mode = "headless"
fps = 60
[osc]
enabled = false
[web]
enabled = true
port = 0
[[scenes]]
name = "a"
seed = 1
hold = 1.0
morph = 2.0
"""

#: What one client asks, and how many seconds after each answer it asks again: as the page.
POLLS = (("/api/thumbnail.jpg", 0.5), ("/api/status", 1.0), ("/api/log", 2.0))


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of each thread of this process so far, by thread name
    (threads of one name, like the web server's pool, summed)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    seconds: Counter[str] = Counter()
    for task in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{task}/stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        fields = stat.rsplit(")", 1)[1].split()
        name = names.get(int(task), "native (ONNX Runtime, SDL)")
        name = name.rstrip("_0123456789") if name.startswith("web-work") else name
        seconds[name] += (int(fields[11]) + int(fields[12])) / tick
    return dict(seconds)


def cpu_share(before: dict[str, float], after: dict[str, float], wall: float) -> dict[str, float]:
    return {
        name: round((after[name] - before.get(name, 0.0)) / wall, 4)
        for name in sorted(after, key=lambda n: before.get(n, 0.0) - after[n])
        if after[name] - before.get(name, 0.0) > 0.001 * wall
    }


def poll(
    address: tuple[str, int], clients: int, seconds: float, out: multiprocessing.Queue
) -> None:
    """``clients`` threads polling like the page for ``seconds``; runs in its own process and
    puts the answers' status codes (and bytes received) on ``out``."""
    os.nice(19)  # phones are other machines: here the clients take only what the show leaves
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def client(index: int) -> None:
        source = (f"127.0.0.{2 + index}", 0)
        connection = http.client.HTTPConnection(*address, timeout=10, source_address=source)
        start = time.perf_counter()
        due = {path: start + index * 0.5 / clients for path, _ in POLLS}
        mine: Counter[str] = Counter()
        while (now := time.perf_counter()) < start + seconds:
            for path, every in POLLS:
                if now >= due[path]:
                    connection.request("GET", path)
                    response = connection.getresponse()
                    body = response.read()
                    mine[f"{path} {response.status}"] += 1
                    mine["bytes"] += len(body)
                    due[path] = time.perf_counter() + every  # as the page: after the answer
            time.sleep(max(0.0, min(due.values()) - time.perf_counter()))
        connection.close()
        with lock:
            counts.update(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    out.put("polling")
    for thread in threads:
        thread.join()
    out.put(dict(counts))


def run(clients: int, seconds: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        os.environ.pop("RUNTIME_DIRECTORY", None)
        os.environ["XDG_RUNTIME_DIR"] = folder  # the health record goes here, not over a real one
        path = Path(folder) / "web_load.toml"
        path.write_text(SHOW)
        show, ladder, conductor = open_show(path)
        display = TickDisplay((640, 360))
        running = RunningShow.for_show(show, ladder, conductor, display, RunSignals())
        thread = threading.Thread(target=running.play, name="show")
        thread.start()
        try:
            return measure(running, display, clients, seconds, 1 / show.display.fps)
        finally:
            display.quit.set()
            thread.join()


def measure(
    running: RunningShow, display: TickDisplay, clients: int, seconds: float, budget: float
) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while running.control is None or running.control.web is None or not display.ticks:
        assert time.monotonic() < deadline, "the show did not start"
        time.sleep(0.1)
    web = running.control.web
    while web.address is None:
        assert time.monotonic() < deadline, "the web server did not bind"
        time.sleep(0.1)
    time.sleep(3.0)  # the first frames and the monitor's first record

    def mark() -> tuple[float, dict[str, float], int]:
        return time.perf_counter(), thread_cpu(), int(running.sample()["generated"])

    def stretch(begun: tuple, ended: tuple) -> dict[str, object]:
        wall = ended[0] - begun[0]
        return {
            **display.stretch(begun[0], ended[0], budget),
            "generated_per_s": (ended[2] - begun[2]) / wall,
            "cpu_share": cpu_share(begun[1], ended[1], wall),
        }

    quiet_start = mark()
    time.sleep(seconds)
    quiet_end = mark()

    spawn = multiprocessing.get_context("spawn")
    answers = spawn.Queue()
    sender = spawn.Process(target=poll, args=(web.address, clients, seconds + 1.0, answers))
    sender.start()
    assert answers.get(timeout=60) == "polling"
    polled_start = mark()
    time.sleep(seconds)
    polled_end = mark()
    counts = answers.get(timeout=60)
    sender.join()
    return {
        "clients": clients,
        "seconds": seconds,
        "quiet": stretch(quiet_start, quiet_end),
        "polled": stretch(polled_start, polled_end),
        "answers": counts,
        "thumbnails_encoded": web.sources.thumbnails.encoded,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20, help="polling clients (20)")
    parser.add_argument("--seconds", type=float, default=60.0, help="each stretch's length (60)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    if not 1 <= args.clients <= 200:
        parser.error("--clients: 1 to 200 (each takes a loopback address 127.0.0.N)")
    result = run(args.clients, args.seconds)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for stretch in ("quiet", "polled"):
        figures = result[stretch]
        shares = ", ".join(f"{name} {share:.1%}" for name, share in figures["cpu_share"].items())
        print(
            f"{stretch:>6}: {figures['frames_per_s']:.1f} frames/s shown, "
            f"{figures['generated_per_s']:.1f} generated, median tick "
            f"{figures['median_tick_ms']:.1f} ms, longest {figures['longest_tick_ms']:.1f} ms, "
            f"{figures['late_ticks']} late; CPU by thread: {shares}"
        )
    answers = ", ".join(f"{key}: {value}" for key, value in sorted(result["answers"].items()))
    print(f"answers: {answers}; {result['thumbnails_encoded']} thumbnails encoded")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
