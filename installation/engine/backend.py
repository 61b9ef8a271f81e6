"""Backends run one model stage on some hardware behind one small interface.

ONNX Runtime is the implementation here (CPU provider everywhere, CUDA provider where the
machine has one); TensorRT (``installation.engine.gpu``) implements the same interface, and can also
chain stages on the device, so that frames only cross to the host once. Session options are
set on purpose: ONNX Runtime's default intra-op threads spin-wait between runs, which on a
small exhibition PC steals the core the display loop needs, so spinning is off.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from installation.engine.bundle import TensorInfo
from installation.errors import UserError, first_line

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


class LoadedStage(ABC):
    """A model ready to run: what it declares, and a way to run a batch through it."""

    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]

    @abstractmethod
    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run one float32 batch through the model and return its only output."""


class DeviceChain(ABC):
    """Stages run one after another where their data lives (GPU memory), each output feeding
    the next stage's input directly; only the last stage's output comes back to the host."""

    @abstractmethod
    def run(self, batch: np.ndarray, count: int) -> np.ndarray:
        """Run the first ``count`` stages on one float32 batch for the first stage; return the
        last one's raw output as a host array that is only valid until the next ``run``."""


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


def default_threads() -> int:
    """All cores but at most 4: beyond that, small generators gain nothing."""
    return max(1, min(4, os.cpu_count() or 1))


class OnnxRuntimeStage(LoadedStage):
    def __init__(self, session: ort.InferenceSession) -> None:
        self.session: ort.InferenceSession | None = session
        self.inputs = tuple(_info(arg) for arg in session.get_inputs())
        self.outputs = tuple(_info(arg) for arg in session.get_outputs())
        self._input = self.inputs[0].name
        self._output = [self.outputs[0].name]

    def run(self, batch: np.ndarray) -> np.ndarray:
        if self.session is None:
            raise RuntimeError("this model was closed")
        return self.session.run(self._output, {self._input: batch})[0]

    def close(self) -> None:
        """Drop the session: ONNX Runtime frees its memory (and a CUDA arena) with it."""
        self.session = None


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime on one execution provider (CPU or CUDA)."""

    def __init__(self, provider: str = CPU, threads: int | None = None) -> None:
        if provider not in ort.get_available_providers():
            raise UserError(f"ONNX Runtime on this machine has no {provider}")
        self.provider = provider
        self.threads = threads or default_threads()
        self.name = "onnxruntime-" + ("cuda" if provider == CUDA else "cpu")
        self._stages: list[OnnxRuntimeStage] = []

    def session_options(self) -> ort.SessionOptions:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        options.log_severity_level = 3
        return options

    def load(self, path: Path) -> LoadedStage:
        try:
            session = ort.InferenceSession(
                str(path), self.session_options(), providers=[self.provider]
            )
        except Exception as exc:  # ONNX Runtime raises several unrelated types for bad files
            raise UserError(f"{path}: not a loadable ONNX model: {first_line(exc)}") from None
        # ONNX Runtime quietly uses the CPU when a GPU provider fails to initialise.
        if self.provider not in session.get_providers():
            raise UserError(f"{path}: ONNX Runtime could not start {self.provider}")
        stage = OnnxRuntimeStage(session)
        self._stages.append(stage)
        return stage

    def close(self) -> None:
        for stage in self._stages:
            stage.close()
        self._stages.clear()


def _info(arg: ort.NodeArg) -> TensorInfo:
    shape = tuple(size if isinstance(size, int | str) else None for size in arg.shape)
    dtype = arg.type.removeprefix("tensor(").removesuffix(")")
    return TensorInfo(arg.name, shape, "float32" if dtype == "float" else dtype)
