"""A live show for tests: the real runtime, headless, steered over a real UDP socket.

``LiveShow`` opens a show file the way ``installation run`` does (bundle, ONNX Runtime,
conductor, OSC server on the port the show names, 0 for any free port), runs the real show
loop on a thread with the real headless display, and records what every present put on the
screen, so tests can send OSC from python-osc's client and look at the pictures.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
from pythonosc.udp_client import SimpleUDPClient

from installation.control.osc.server import OscServer
from installation.control.steering import ShowControl
from installation.display import Action, HeadlessDisplay
from installation.engine.frames import Frame
from installation.player import RunResult, play
from installation.session import open_show


@dataclass(frozen=True)
class Presented:
    """One present: when (perf_counter), the frame shown and what the screen read back."""

    at: float
    frame: Frame
    brightness: float
    peak: int


class ProbeDisplay(HeadlessDisplay):
    """The real headless display, remembering the last few seconds of presents."""

    def __init__(self) -> None:
        super().__init__((96, 96))
        self.presents: deque[Presented] = deque(maxlen=2000)
        self.quit = threading.Event()

    def present(self, a: Frame, b: Frame | None, weight: float, brightness: float = 1.0) -> None:
        super().present(a, b, weight, brightness)
        peak = int(self.snapshot().max())
        self.presents.append(Presented(time.perf_counter(), a, brightness, peak))

    def poll(self) -> list[Action]:
        actions = super().poll()
        return [*actions, Action.QUIT] if self.quit.is_set() else actions

    def since(self, moment: float) -> list[Presented]:
        return [p for p in list(self.presents) if p.at >= moment]


class LiveShow:
    """Context manager: the show running, ``client`` aimed at its OSC port."""

    def __init__(self, show: Path, seconds: float = 30.0) -> None:
        self.show, self.ladder, self.conductor = open_show(show)
        self.pipeline = self.ladder.pipeline
        self.display = ProbeDisplay()
        self.control = ShowControl(self.show, self.conductor, self.pipeline.bundle)
        self.seconds = seconds
        self.result: RunResult | None = None
        self._thread = threading.Thread(target=self._play, name="show")

    @property
    def osc(self) -> OscServer:
        assert self.control.osc is not None
        return self.control.osc

    def __enter__(self) -> LiveShow:
        self.control.__enter__()
        if self.control.osc is not None:
            assert self.osc.wait_bound(5.0), "the OSC server did not bind"
            host, port = self.osc.address
            self.client = SimpleUDPClient(host, port)
        self._thread.start()
        self.wait_for(lambda: len(self.display.presents) > 5, "the first frames")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.display.quit.set()
        self._thread.join(10.0)
        self.control.__exit__(kind, error, traceback)

    def _play(self) -> None:
        self.display.open("test")
        try:
            fps, lead = self.show.display.fps, self.show.engine.lead
            self.result = play(self.display, self.pipeline, self.conductor, fps, lead, self.seconds)
        finally:
            self.display.close()

    def wait_for(self, condition: Callable[[], object], what: str, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.01)

    def face(self, latent: np.ndarray) -> np.ndarray:
        """The picture the pipeline draws for ``latent``, to compare with what was shown."""
        return self.pipeline.run(latent[None])[0]
