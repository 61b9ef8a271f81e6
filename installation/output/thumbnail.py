"""The live thumbnail of the web page: what the screen shows, small, as JPEG.

Like a recording or NDI, the thumbnail is a picture that leaves the show, so it is made the
same way: ``compose.on_screen`` (the blend and the brightness as the screen shows them) and
``compose.fit`` (Lanczos, down to at most MAX_WIDTH wide). The display loop only leaves a
reference to what it presented (a Pick and a brightness, one attribute assignment per tick);
every pixel is read, blended, scaled and encoded here, on the web server's thread, so a phone
watching the show can never slow the screen. One encoding serves every viewer while the
screen shows the same thing, and for a short while after, so twenty phones cost what one does.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from io import BytesIO

import numpy as np

from installation.display.layout import fit_rect, to_byte
from installation.engine.frames import Pick
from installation.output.compose import OnlyOnGpu, fit, on_screen

#: The widest thumbnail sent: enough for a phone's screen, small enough to encode in a few ms.
MAX_WIDTH = 480
#: Fewest seconds between two thumbnails for one viewer (at most two per second).
INTERVAL = 0.5
#: Viewers remembered for the per-viewer limit; the oldest is forgotten first.
MAX_VIEWERS = 256

Latest = Callable[[], tuple[Pick, float] | None]


class Thumbnails:
    """JPEGs of what is on screen for many viewers, each at most once per ``interval``.

    ``latest`` returns what the display presented last (or None before the first frame);
    ``clock`` is injectable so tests decide what time it is. Thread-safe: the server may
    call ``jpeg`` from several threads; a second caller waits for the first one's encoding
    rather than making its own. A picture encoded less than ``interval / 2`` ago is sent
    again even if the screen has moved on, so there are at most ``2 / interval`` encodings a
    second however many watch.
    """

    class TooSoon(Exception):
        """This viewer had a thumbnail less than ``interval`` ago."""

        def __init__(self, retry_after: float) -> None:
            super().__init__(f"too soon for another thumbnail: retry in {retry_after:.2f} s")
            self.retry_after = retry_after

    class Unavailable(Exception):
        """Nothing can be shown: no frame yet, or the frame never left the GPU."""

        def __init__(self, reason: str) -> None:
            super().__init__(reason)
            self.reason = reason

    def __init__(
        self,
        latest: Latest,
        clock: Callable[[], float] = time.monotonic,
        interval: float = INTERVAL,
    ) -> None:
        self._latest = latest
        self._clock = clock
        self.interval = interval
        self._lock = threading.Lock()
        self._viewers: OrderedDict[str, float] = OrderedDict()
        self._key: tuple[int, int | None, int, int] | None = None
        self._made = 0.0
        self._jpeg = b""
        #: How many JPEGs were encoded, for tests and the benchmark.
        self.encoded = 0

    def jpeg(self, viewer: str) -> bytes:
        """The current thumbnail for ``viewer`` (a session id or client address).

        Raises TooSoon within ``interval`` of this viewer's last one and Unavailable when
        there is nothing to show; neither counts as a thumbnail sent.
        """
        with self._lock:
            now = self._clock()
            last = self._viewers.get(viewer)
            if last is not None and now - last < self.interval:
                raise Thumbnails.TooSoon(self.interval - (now - last))
            shown = self._latest()
            if shown is None:
                raise Thumbnails.Unavailable("nothing has been shown yet")
            pick, brightness = shown
            key = (
                pick.a.serial,
                None if pick.b is None else pick.b.serial,
                to_byte(pick.weight),
                to_byte(brightness),
            )
            # The same picture, or one made moments ago: encoding it again shows no one more.
            if key != self._key and (self._key is None or now - self._made >= self.interval / 2):
                try:
                    self._jpeg = encode_jpeg(screen_image(pick, brightness))
                except OnlyOnGpu as exc:
                    raise Thumbnails.Unavailable(str(exc)) from None
                self._key, self._made = key, now
                self.encoded += 1
            self._viewers[viewer] = now
            self._viewers.move_to_end(viewer)
            while len(self._viewers) > MAX_VIEWERS:
                self._viewers.popitem(last=False)
            return self._jpeg


def screen_image(pick: Pick, brightness: float) -> np.ndarray:
    """What the screen shows for ``pick`` at ``brightness`` (``compose.on_screen``), scaled
    down to at most MAX_WIDTH wide keeping its aspect, as H x W x 3 uint8; never enlarged."""
    image = on_screen(pick, brightness)
    height, width = image.shape[:2]
    _, _, w, h = fit_rect(width, height, min(width, MAX_WIDTH), height)
    return fit(image, (w, h))


def encode_jpeg(image: np.ndarray) -> bytes:
    """H x W x 3 uint8 RGB as JPEG bytes, through pygame's SDL_image (safe off the main
    thread: it touches no display, only the surface it is given)."""
    import pygame

    height, width = image.shape[:2]
    surface = pygame.image.frombuffer(np.ascontiguousarray(image), (width, height), "RGB")
    out = BytesIO()
    pygame.image.save(surface, out, "thumbnail.jpg")
    return out.getvalue()
