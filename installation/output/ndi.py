"""The show as an NDI source, for projection-mapping tools (TouchDesigner, Resolume, MadMapper).

On Linux NDI is how pictures reach those tools over the network. The sender is a sink of a
``ScreenFeed``: the display loop only offers what it presented; the feed's thread composes
the picture at the NDI size and hands it here, where it is sent as RGBX (alpha off: NDI
compresses no alpha plane and receivers get an opaque layer), stamped with the show's frame
rate. The display paces the frames, so the sender does not clock them itself, and a slow
network costs NDI frames (counted by the feed), never the screen's.

NDI comes with the optional ``ndi`` extra (``cyndilib``, whose wheel carries the NDI runtime
library). Without it a show with ``[ndi]`` plays on and says once why nothing is sent.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from installation.output import frame_rate
from installation.output.feed import Output, ScreenFeed
from installation.score.ndi_settings import NdiSettings

if TYPE_CHECKING:
    from cyndilib import Sender

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install -e '.[ndi]'"
#: Seconds between looks at how many receivers are connected (logged when it changes).
WATCH_INTERVAL = 2.0


def load_cyndilib() -> Any | None:
    """The cyndilib module, or None after logging why NDI cannot be used on this machine."""
    try:
        import cyndilib
    except ModuleNotFoundError as exc:
        if exc.name != "cyndilib":
            raise
        log.warning("[ndi]: no NDI output: cyndilib is not installed (%s)", INSTALL_HINT)
        return None
    except ImportError as exc:  # the wheel's NDI runtime library did not load
        log.warning("[ndi]: no NDI output: the NDI library cannot be loaded: %s", exc)
        return None
    return cyndilib


class NdiSender:
    """An open NDI source that sends pictures of one ``size`` (width, height) at ``fps``;
    called with each H x W x 3 RGB picture on the feed's thread."""

    def __init__(
        self, cyndilib: Any, settings: NdiSettings, size: tuple[int, int], fps: float
    ) -> None:
        width, height = size
        frame = cyndilib.VideoSendFrame()
        frame.set_resolution(width, height)
        frame.set_fourcc(cyndilib.FourCC.RGBX)
        frame.set_frame_rate(frame_rate(fps))
        self.sender: Sender = cyndilib.Sender(
            settings.name, ",".join(settings.groups), clock_video=False
        )
        self.sender.set_video_frame(frame)
        self.sender.open()
        self.source = self.sender.name
        # The X byte is the same for every frame: set once, only the colours are copied in.
        self._rgbx = np.full((height, width, 4), 255, np.uint8)
        self._connections = 0
        self._watched = time.monotonic()

    def __call__(self, picture: np.ndarray, t: float) -> None:
        for channel in range(3):  # a plane at a time: 5 times faster than [..., :3] at once
            np.copyto(self._rgbx[..., channel], picture[..., channel])
        # Returns once the frame is copied; NDI compresses it on its own thread meanwhile.
        self.sender.write_video_async(self._rgbx.reshape(-1))
        now = time.monotonic()
        if now - self._watched >= WATCH_INTERVAL:
            self._watched = now
            self._watch()

    def close(self) -> None:
        self.sender.close()

    def _watch(self) -> None:
        """Say when receivers connect or leave: in a gallery, the first question when the
        projection stays dark is whether the mapping PC receives the show at all."""
        connections = self.sender.get_num_connections(0)
        if connections != self._connections:
            self._connections = connections
            log.info("NDI %s: %d receiver(s) connected", self.source, connections)


def ndi_outputs(settings: NdiSettings | None, size: tuple[int, int], fps: float) -> list[Output]:
    """What sends the screen as the NDI source ``settings.name`` at ``settings.size`` (else
    ``size``, the bundle's) and ``fps``, the show's rate: one output, or none without
    ``[ndi]`` or, after one log line saying why, where NDI cannot be used here, so that the
    show plays on without it. The source is created now, so that NDI failing to start is
    known before the show plays."""
    if settings is None:
        return []
    cyndilib = load_cyndilib()
    if cyndilib is None:
        return []
    size = settings.size or size
    try:
        sender = NdiSender(cyndilib, settings, size, fps)
    except Exception as exc:  # cyndilib raises plain exceptions when NDI cannot start
        log.error("[ndi]: no NDI output: the NDI source cannot be created: %s", exc)
        return []
    log.info("sending NDI source %s at %dx%d, %s frames/s", sender.source, *size, frame_rate(fps))
    return [
        lambda _fps, _picture: ScreenFeed(
            "ndi", f"NDI {sender.source}", sender, size, finish=sender.close
        )
    ]
