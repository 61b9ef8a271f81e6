"""The ONNX Runtime backend: model stages run behind the small interface every backend offers
(``installation.engine.model``).

ONNX Runtime runs them here (CPU provider everywhere, CUDA provider where the machine has
one); TensorRT (``installation.engine.gpu``) implements the same interface. Both can chain
stages on the device, so that frames only cross to the host once (ONNX Runtime with IO
binding: ``installation.engine.ort_chain``). Session options are set on purpose:
ONNX Runtime's default intra-op threads spin-wait between runs, which on a small exhibition
PC steals the core the display loop needs, so spinning is off; the CUDA provider's options
are explained in ``installation.engine.ort_cuda``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import onnxruntime as ort

from installation.engine.model import Backend, DeviceChain, LoadedStage
from installation.engine.ort_chain import OrtChain, linked_stages
from installation.engine.ort_cuda import (
    CUDA,
    DEVICE_ID,
    plan_cuda_graphs,
    preload_libraries,
    provider_options,
    start_failure,
)
from installation.engine.ort_stage import OnnxRuntimeStage
from installation.errors import UserError, first_line

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"


def default_threads() -> int:
    """All cores but at most 4: beyond that, small generators gain nothing."""
    return max(1, min(4, os.cpu_count() or 1))


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime on one execution provider (CPU or CUDA).

    ``chain``: chain stages with IO binding (None: on CUDA, where it saves the copies; on
    the CPU there is no copy to save, but the same code runs there when asked, for tests).
    ``cuda_graphs``: record CUDA graphs where ``plan_cuda_graphs`` allows. ``variants``: a
    model file to load in place of a stage's own (its proven FP16 variant), by stage path.
    """

    def __init__(
        self,
        provider: str = CPU,
        threads: int | None = None,
        *,
        chain: bool | None = None,
        cuda_graphs: bool = True,
        variants: Mapping[Path, Path] | None = None,
    ) -> None:
        if provider not in ort.get_available_providers():
            raise UserError(f"ONNX Runtime on this machine has no {provider}")
        self.provider = provider
        self.threads = threads or default_threads()
        self.name = "onnxruntime-" + ("cuda" if provider == CUDA else "cpu")
        self.chains = provider == CUDA if chain is None else chain
        self.graph_plan = plan_cuda_graphs(provider, cuda_graphs)
        self.variants = {path.resolve(): variant for path, variant in (variants or {}).items()}
        if provider == CUDA:
            preload_libraries()
        self._stages: list[OnnxRuntimeStage] = []
        self._chains: list[OrtChain] = []

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
        variant = self.variants.get(path.resolve())
        source = variant or path
        session = None
        if self.graph_plan.enabled:
            try:
                session = self._session(source, True)
            except Exception as exc:  # as below
                # Most often a node ONNX Runtime put on the CPU, which a graph cannot record.
                log.warning("%s: no CUDA graphs for this stage: %s", source, first_line(exc))
        graphs = session is not None
        if session is None:
            try:
                session = self._session(source, False)
            except Exception as exc:  # ONNX Runtime raises several unrelated types for bad files
                raise UserError(f"{source}: not a loadable ONNX model: {first_line(exc)}") from None
        # ONNX Runtime quietly uses the CPU when a GPU provider fails to initialise.
        if self.provider not in session.get_providers():
            why = f": {start_failure()}" if self.provider == CUDA else ""
            raise UserError(f"{path}: ONNX Runtime could not start {self.provider}{why}")
        stage = OnnxRuntimeStage(session, graphs, "fp16" if variant else "fp32")
        self._stages.append(stage)
        return stage

    def chain(self, models: Sequence[LoadedStage]) -> DeviceChain | None:
        """An IO-binding chain over ``models``, where this backend chains and at least the
        first stage's shapes are fixed but for the batch axis."""
        stages = [model for model in models if isinstance(model, OnnxRuntimeStage)]
        if not self.chains or not stages or len(stages) != len(models):
            return None
        if not linked_stages(stages):
            log.info("stages run one at a time: the first stage's shapes vary")
            return None
        device = "cuda" if self.provider == CUDA else "cpu"
        chain = OrtChain(stages, device, DEVICE_ID)
        if self.provider == CUDA:
            log.info("%s: stages chained on the GPU; %s", self.name, self.graph_plan.reason)
        self._chains.append(chain)
        return chain

    def close(self) -> None:
        for chain in self._chains:
            chain.close()
        self._chains.clear()
        for stage in self._stages:
            stage.close()
        self._stages.clear()

    def _session(self, source: Path, graphs: bool) -> ort.InferenceSession:
        providers = [(CUDA, provider_options(graphs))] if self.provider == CUDA else [self.provider]
        return ort.InferenceSession(str(source), self.session_options(), providers=providers)
