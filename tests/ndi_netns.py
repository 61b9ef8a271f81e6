"""NDI as a projection-mapping PC sees it: run by tests/test_ndi.py inside a private network
namespace (``unshare -rn``) that has only its own loopback interface, so nothing is announced
or sent beyond it. ``NDI_CONFIG_DIR`` (set by the test) holds an NDI configuration that finds
sources by asking 127.0.0.1 directly instead of through mDNS multicast.

Two senders: a real headless show (``installation run`` with ``[ndi]``) in a subprocess, and
a ``ScreenFeed`` in this process fed a known test pattern at a configured size. A cyndilib
Finder looks both up by name and a Receiver takes frames from each; what was received (the
last frame of each as .npy in the output folder, sizes, frame rates, the show's log) is
printed as one JSON object for the test to judge.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from installation.engine.frames import Frame, Pick
from installation.output.ndi import ndi_outputs
from installation.score.ndi_settings import NdiSettings

#: Seconds to wait for a source to be listed: the show loads its models first.
FIND_TIMEOUT = 40.0
#: Frames taken from each source; the last is kept.
FRAMES = 3
PATTERN_SIZE = (320, 180)
PATTERN_FPS = 25.0


def pattern() -> np.ndarray:
    """A 64 x 48 test pattern: colour ramps across and down, and a checkerboard in blue."""
    y, x = np.mgrid[0:48, 0:64]
    image = np.empty((48, 64, 3), np.uint8)
    image[..., 0] = x * 4
    image[..., 1] = y * 5
    image[..., 2] = ((x // 8 + y // 8) % 2) * 160 + 40
    return image


def main() -> None:
    import cyndilib  # here, not at the top: test_ndi imports the pattern without the extra

    show, name, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    command = [sys.executable, "-m", "installation", "run", "--headless", "--duration", "120"]
    with (out / "show.log").open("wb") as show_log:
        player = subprocess.Popen([*command, str(show)], stdout=show_log, stderr=show_log)
        results: dict[str, Any] = {}
        try:
            with cyndilib.Finder() as finder:
                try:
                    results["show"] = receive(finder, name, out / "show.npy")
                finally:
                    player.send_signal(signal.SIGTERM)  # a clean stop, as systemd's
                settings = NdiSettings("pattern", PATTERN_SIZE)
                (start,) = ndi_outputs(settings, (64, 48), PATTERN_FPS)
                with start(PATTERN_FPS, (64, 48)) as feed:
                    feeding = Feeder(feed, Pick(Frame(0.0, pattern(), 0), None, 1.0))
                    results["pattern"] = receive(finder, "pattern", out / "pattern.npy", feeding)
                results["pattern"]["counts"] = [feeding.offered, feed.taken, feed.dropped]
                results["pattern"]["failed"] = feed.failed
        finally:
            results["show_rc"] = player.wait(timeout=60)
    results["show_log"] = (out / "show.log").read_text(errors="replace")
    print(json.dumps(results))


class Feeder:
    """Offers the test pattern to the feed as the display loop would, one frame a call."""

    def __init__(self, feed: Any, pick: Pick) -> None:
        self.feed, self.pick, self.offered = feed, pick, 0

    def __call__(self) -> None:
        self.feed.offer(self.pick, 1.0, self.offered / PATTERN_FPS)
        self.offered += 1


def receive(finder: Any, name: str, keep: Path, between: Any = None) -> dict[str, Any]:
    """Find the source called ``name`` (listed as ``MACHINE (name)``), take ``FRAMES`` video
    frames from it and keep the last in ``keep``; ``between`` is called before each wait."""
    import cyndilib
    from cyndilib.receiver import ReceiveFrameType

    deadline = time.monotonic() + FIND_TIMEOUT
    found = None
    while found is None and time.monotonic() < deadline:
        if between is not None:
            between()
        finder.wait_for_sources(0.2)
        found = next((n for n in finder.get_source_names() if n.endswith(f"({name})")), None)
    result: dict[str, Any] = {"listed": finder.get_source_names(), "found": found, "frames": 0}
    if found is None:
        return result
    receiver = cyndilib.Receiver(
        color_format=cyndilib.RecvColorFormat.RGBX_RGBA, bandwidth=cyndilib.RecvBandwidth.highest
    )
    frame = cyndilib.VideoRecvFrame()
    receiver.set_video_frame(frame)
    receiver.set_source(finder.get_source(found))
    deadline = time.monotonic() + FIND_TIMEOUT
    while result["frames"] < FRAMES and time.monotonic() < deadline:
        if between is not None:
            between()
        if receiver.receive(ReceiveFrameType.recv_video, 100) & ReceiveFrameType.recv_video:
            result["frames"] += 1
            width, height = frame.get_resolution()
            data = np.empty(frame.get_data_size(), np.uint8)
            frame.fill_p_data(data)
            rows = data.reshape(height, frame.get_line_stride())
            np.save(keep, rows[:, : width * 4].reshape(height, width, 4))
            result["size"] = [width, height]
            result["frame_rate"] = str(frame.get_frame_rate())
            result["fourcc"] = frame.get_fourcc().name
    receiver.disconnect()
    return result


if __name__ == "__main__":
    main()
