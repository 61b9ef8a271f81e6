"""What every backend offers, whatever runs the models: a loaded stage, a chain of stages on
the device, and the backend that makes both.

ONNX Runtime (``installation.engine.backend``, chained by ``installation.engine.ort_chain``)
and TensorRT (``installation.engine.gpu``) implement these; the pipeline and the ladder use
only them. They live apart from any implementation so that each implementation, and the
pieces it is made of, imports them downward.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from installation.engine.bundle import TensorInfo


class LoadedStage(ABC):
    """A model ready to run: what it declares, and a way to run a batch through it."""

    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]

    @abstractmethod
    def run(self, batch: np.ndarray, extra: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Run one float32 batch through the model and return its only output.

        ``extra`` feeds the model's other inputs by name (a StyleGAN3 synthesis takes its
        input transform beside the ws); a backend that cannot feed them raises."""


class DeviceChain(ABC):
    """Stages run one after another where their data lives (GPU memory), each output feeding
    the next stage's input directly; only the last stage's output comes back to the host."""

    #: Whether ``run`` takes ``extra`` inputs for the first stage (TensorRT's does not).
    feeds_extra: bool = False

    @abstractmethod
    def run(
        self, batch: np.ndarray, count: int, extra: Mapping[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """Run the first ``count`` stages on one float32 batch for the first stage; return the
        last one's raw output as a host array that is only valid until the next ``run``.

        ``extra`` feeds the first stage's other inputs by name, as ``LoadedStage.run``."""


class Backend(ABC):
    name: str

    @abstractmethod
    def load(self, path: Path) -> LoadedStage:
        """Load a model file, raising UserError naming the file if it cannot be used."""

    def chain(self, models: Sequence[LoadedStage]) -> DeviceChain | None:
        """A device chain over ``models`` (loaded by this backend, in order), or None where
        the backend has nothing better than a host round trip between stages."""
        return None

    @abstractmethod
    def close(self) -> None:
        """Release every model it loaded (sessions, device and pinned memory); safe to call
        again. A backend left for another must give these back, or the next may not fit."""
