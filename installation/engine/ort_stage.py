"""One model loaded into an ONNX Runtime session, run from the host.

The backend (``installation.engine.backend``) makes these, and its IO-binding chain
(``installation.engine.ort_chain``) runs them back to back on the device; a module of its own
so that both import it downward.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnxruntime as ort

from installation.engine.bundle import TensorInfo
from installation.engine.model import LoadedStage
from installation.engine.ort_cuda import graph_run_options


class OnnxRuntimeStage(LoadedStage):
    def __init__(
        self, session: ort.InferenceSession, graphs: bool = False, precision: str = "fp32"
    ) -> None:
        self.session: ort.InferenceSession | None = session
        self.inputs = tuple(_info(arg) for arg in session.get_inputs())
        self.outputs = tuple(_info(arg) for arg in session.get_outputs())
        #: Whether the session records CUDA graphs (only runs through an OrtChain do).
        self.graphs = graphs
        #: "fp16" where the backend loaded the stage's proven FP16 variant.
        self.precision = precision
        #: A session that records graphs would record one at every plain run, for inputs
        #: at addresses that change: its plain runs say to skip that.
        self.run_options = graph_run_options(None) if graphs else None
        self._input = self.inputs[0].name
        self._output = [self.outputs[0].name]

    def run(self, batch: np.ndarray, extra: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        if self.session is None:
            raise RuntimeError("this model was closed")
        feed = {self._input: batch, **(extra or {})}
        return self.session.run(self._output, feed, self.run_options)[0]

    def close(self) -> None:
        """Drop the session: ONNX Runtime frees its memory (and a CUDA arena) with it."""
        self.session = None


def _info(arg: ort.NodeArg) -> TensorInfo:
    shape = tuple(size if isinstance(size, int | str) else None for size in arg.shape)
    dtype = arg.type.removeprefix("tensor(").removesuffix(")")
    return TensorInfo(arg.name, shape, "float32" if dtype == "float" else dtype)
