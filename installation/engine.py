"""Starting the engine on the best backend that works: the GPU where there is one, else the CPU.

A kiosk must show something even when its GPU is broken (a driver update gone wrong, a CUDA
library missing, memory taken by another program): a slower show on the CPU is better than a
black screen. But a silent fallback would only be noticed weeks later as a low frame rate, so
it is logged as an error, and ``installation status`` names the backend in use.
"""

from __future__ import annotations

import logging

import numpy as np
import onnxruntime as ort

from installation.backend import CPU, CUDA, OnnxRuntimeBackend
from installation.bundle import Bundle
from installation.errors import first_line
from installation.faults import DeliberateFault, Faults, FaultyPipeline
from installation.pipeline import Pipeline

log = logging.getLogger(__name__)


def start_pipeline(bundle: Bundle, threads: int | None, faults: Faults | None = None) -> Pipeline:
    """Load ``bundle`` on the GPU if ONNX Runtime offers one and it runs a first frame;
    otherwise on the CPU. ``faults`` (default: from the environment) can break things on
    purpose, see installation.faults."""
    faults = Faults.from_environment() if faults is None else faults
    pipeline = None
    if CUDA in ort.get_available_providers() or faults.gpu_start:
        pipeline = _try_gpu(bundle, threads, faults)
    if pipeline is None:
        pipeline = Pipeline.load(bundle, OnnxRuntimeBackend(CPU, threads))
    return FaultyPipeline(pipeline, faults) if faults.in_worker else pipeline


def _try_gpu(bundle: Bundle, threads: int | None, faults: Faults) -> Pipeline | None:
    """The pipeline on CUDA, proven by one frame, or None after saying loudly why not."""
    try:
        if faults.gpu_start:
            raise DeliberateFault("deliberate fault: gpu-start")
        pipeline = Pipeline.load(bundle, OnnxRuntimeBackend(CUDA, threads))
        pipeline.run(np.zeros((1, bundle.latent_size), dtype=np.float32))
    except Exception as exc:  # whatever the driver raises, the CPU may still work
        log.error(
            "GPU BACKEND FAILED AT START, FALLING BACK TO THE CPU BACKEND (expect a lower "
            "frame rate; check the GPU driver): %s: %s",
            type(exc).__name__,
            first_line(exc),
        )
        return None
    return pipeline
