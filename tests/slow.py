"""A real ONNX Runtime stage made slow on purpose, like a weak machine or a busy GPU."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.model import LoadedStage


class SlowStage(LoadedStage):
    """A real ONNX Runtime stage that takes at least ``delay`` seconds, like a weak machine."""

    def __init__(self, inner: LoadedStage, delay: float) -> None:
        self.inner = inner
        self.delay = delay
        self.inputs = inner.inputs
        self.outputs = inner.outputs

    def run(self, batch: np.ndarray) -> np.ndarray:
        time.sleep(self.delay)
        return self.inner.run(batch)


class SlowBackend(OnnxRuntimeBackend):
    def __init__(self, delay: float) -> None:
        super().__init__(CPU, threads=1)
        self.delay = delay

    def load(self, path: Path) -> LoadedStage:
        return SlowStage(super().load(path), self.delay)
