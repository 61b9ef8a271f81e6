"""The fallback ladder: the best backend that works, and the next one down when it stops working.

An exhibition PC must show something even when its GPU path is broken (engines never built or
built for another TensorRT, a driver update gone wrong, a CUDA library missing, memory taken by
another program): a slower show is better than a black screen. ``backend = "auto"`` tries
TensorRT, then ONNX Runtime's CUDA provider, then its CPU provider, and proves each with one
frame before trusting it. Before any of them, the bundle itself is checked (files, sha256,
models, a sample: ``installation.engine.bundle_check``), so that a changed or corrupt model file is
reported as what it is, naming the file, rather than as every backend failing. A silent
fallback would only be noticed weeks later as a lower frame rate, so the choice is logged once
with the reason every better backend was passed over, as an error in capitals when one of them
is installed but failed. A backend that fails while the show runs drops the show to the next
rung: the supervisor asks ``fall`` for it while the display holds its last frames. A rung the
ladder leaves, or one that failed to start, is closed at once: a TensorRT engine keeps device
and pinned memory, a CUDA session its arena, and the next rung may need them.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import onnxruntime as ort

from installation.engine.backend import CPU, CUDA, OnnxRuntimeBackend
from installation.engine.bundle import Bundle
from installation.engine.bundle_check import check_bundle
from installation.engine.faults import DeliberateFault, Faults, FaultyPipeline
from installation.engine.fp16 import proven_variants
from installation.engine.gpu.cuda import INSTALL_HINT
from installation.engine.gpu.engine_cache import default_cache_dir
from installation.engine.gpu.tensorrt_backend import not_its_kind
from installation.engine.model import Backend
from installation.engine.pipeline import Pipeline
from installation.errors import UserError, first_line

log = logging.getLogger(__name__)

TENSORRT = "tensorrt"
ORT_CUDA = "onnxruntime-cuda"
ORT_CPU = "onnxruntime-cpu"
#: Best first.
LADDER = (TENSORRT, ORT_CUDA, ORT_CPU)
#: onnxruntime and onnxruntime-gpu install the same module: one must go before the other comes.
ORT_GPU_HINT = (
    "on a kiosk: sudo deploy/setup.sh SHOW --gpu; elsewhere: pip uninstall onnxruntime, then "
    "pip install -r deploy/onnxruntime-gpu-cuda13.txt (NVIDIA driver 580 or newer; "
    "-cuda12.txt from 525); see docs/gpu.md"
)


class Absent(UserError):
    """A backend that is not installed here (TensorRT, ONNX Runtime's CUDA build), as opposed
    to one that is installed and failed: the first is normal on a PC meant for the CPU, the
    second is a fault someone should fix."""


@dataclass(frozen=True)
class Rung:
    """One backend of the ladder: its name and how to load the bundle on it."""

    name: str
    load: Callable[[], Pipeline]


class BackendLadder:
    """The pipeline the show runs on now, and the rungs below it to fall to."""

    def __init__(
        self, rungs: Sequence[Rung], faults: Faults | None = None, bundle: Bundle | None = None
    ) -> None:
        if not rungs:
            raise ValueError("a ladder needs at least one rung")
        self.rungs = tuple(rungs)
        self.faults = faults or Faults()
        #: Checked by ``start`` before the first rung is tried; what looked doubtful goes to
        #: ``warnings``.
        self.bundle = bundle
        self.warnings: list[str] = []
        #: Times the show dropped to a lower rung while it ran (for /metrics).
        self.falls = 0
        self._index = -1
        self._pipeline: Pipeline | None = None
        self._lock = threading.Lock()

    @classmethod
    def holding(cls, pipeline: Pipeline) -> BackendLadder:
        """A ladder of one rung that is already loaded (tests, benchmarks, offline use)."""
        ladder = cls([Rung(pipeline.backend_name, lambda: pipeline)])
        ladder._index, ladder._pipeline = 0, pipeline
        return ladder

    @property
    def pipeline(self) -> Pipeline:
        with self._lock:
            if self._pipeline is None:
                raise RuntimeError("the ladder has not been started")
            return self._pipeline

    @property
    def name(self) -> str:
        """The backend in use, for logs and the health record."""
        with self._lock:
            return self.rungs[self._index].name if self._index >= 0 else "-"

    def start(self) -> Pipeline:
        """Load the bundle on the best rung that runs a frame; UserError if the bundle is
        broken, or if no rung runs it."""
        if self.bundle is not None:
            self.warnings = check_bundle(self.bundle)
        reasons = self._climb(0)
        if self._pipeline is None:
            raise UserError("no backend can run this bundle: " + _joined(reasons))
        self._announce(reasons)
        return self._pipeline

    def fall(self, error: BaseException) -> bool:
        """After inference failed with ``error``: move to the next rung that works and return
        True, or False on the last rung (then the supervisor restarts or gives up as usual)."""
        if self._index + 1 >= len(self.rungs):
            return False
        failed, before = self.name, self._index
        log.error(
            "BACKEND %s FAILED WHILE RUNNING, DROPPING TO THE NEXT BACKEND (the screen holds "
            "meanwhile; the show will run slower): %s: %s",
            failed.upper(),
            type(error).__name__,
            first_line(error),
        )
        reasons = self._climb(self._index + 1)
        if self._index == before:
            log.error("no backend below %s works either: %s", failed, _joined(reasons))
            return False
        self.falls += 1
        self._announce([(failed, error), *reasons])
        return True

    def _climb(self, start: int) -> list[tuple[str, BaseException]]:
        """Try the rungs from ``start`` down; keep the first that works. Returns why each
        rung before it did not."""
        reasons: list[tuple[str, BaseException]] = []
        for index in range(start, len(self.rungs)):
            rung = self.rungs[index]
            try:
                pipeline = self._load(rung, last=index == len(self.rungs) - 1, first=start == 0)
            except Exception as exc:  # whatever a driver raises, the next rung may still work
                reasons.append((rung.name, exc))
                continue
            with self._lock:
                left, self._index, self._pipeline = self._pipeline, index, pipeline
            if left is not None:
                # The supervisor asks to fall only once the worker stopped with an error, so
                # nothing runs on the rung left any more.
                left.close()
            return reasons
        return reasons

    def _load(self, rung: Rung, last: bool, first: bool) -> Pipeline:
        if self.faults.gpu_start and rung.name != ORT_CPU:
            raise DeliberateFault("deliberate fault: gpu-start")
        pipeline = rung.load()
        if not last:  # a rung with a rung below it must prove itself before the show trusts it
            try:
                pipeline.run(pipeline.neutral_latents(1))
            except BaseException:
                pipeline.close()
                raise
        faults = self.faults if first else replace(self.faults, backend_crash_at=None)
        return FaultyPipeline(pipeline, faults) if faults.in_worker else pipeline

    def _announce(self, reasons: list[tuple[str, BaseException]]) -> None:
        if not reasons:
            log.info("inference runs on %s", self.name)
            return
        why = _joined(reasons)
        if all(isinstance(error, Absent) for _, error in reasons):
            log.warning("inference runs on %s (%s)", self.name, why)
        else:
            log.error(
                "INFERENCE RUNS ON %s, NOT ON THE BEST BACKEND (expect a lower frame rate): %s",
                self.name.upper(),
                why,
            )


def _joined(reasons: list[tuple[str, BaseException]]) -> str:
    return "; ".join(f"{name}: {first_line(error)}" for name, error in reasons)


def ladder_for(
    bundle: Bundle,
    backend: str,
    threads: int | None,
    engines: Path | None,
    faults: Faults | None = None,
) -> BackendLadder:
    """The rungs a show's ``[engine] backend`` asks for: all of them for "auto", else one."""
    loaders: dict[str, Callable[[], Pipeline]] = {
        TENSORRT: lambda: _tensorrt(bundle, engines),
        ORT_CUDA: lambda: _onnxruntime_cuda(bundle, threads, engines),
        ORT_CPU: lambda: _pipeline(bundle, OnnxRuntimeBackend(CPU, threads)),
    }
    names = LADDER if backend == "auto" else (backend,)
    faults = Faults.from_environment() if faults is None else faults
    return BackendLadder([Rung(name, loaders[name]) for name in names], faults, bundle)


def _tensorrt(bundle: Bundle, engines: Path | None) -> Pipeline:
    """TensorRT not installed is a PC meant for the CPU; installed but failing (no driver,
    stale engines) is a fault on a PC meant for the GPU. A StyleGAN3 synthesis takes its input
    transform as a second input, which the TensorRT path does not feed: not this backend's
    kind of bundle, like TensorRT not installed."""
    unsuited = not_its_kind(bundle)
    if unsuited:
        raise Absent(unsuited)
    if importlib.util.find_spec("tensorrt") is None:
        raise Absent(f"TensorRT is not installed ({INSTALL_HINT})")
    from installation.engine.gpu.engine_cache import EngineCache
    from installation.engine.gpu.tensorrt_backend import TensorRTBackend

    return _pipeline(bundle, TensorRTBackend(bundle, EngineCache(engines or default_cache_dir())))


def _onnxruntime_cuda(bundle: Bundle, threads: int | None, engines: Path | None) -> Pipeline:
    """The stages chained on the GPU, each in its proven FP16 variant where build-engines
    made one (kept in the engine cache beside TensorRT's engines), else in FP32."""
    if CUDA not in ort.get_available_providers():
        raise Absent(f"this ONNX Runtime has no {CUDA} ({ORT_GPU_HINT})")
    variants = proven_variants(bundle, engines or default_cache_dir())
    return _pipeline(bundle, OnnxRuntimeBackend(CUDA, threads, variants=variants))


def _pipeline(bundle: Bundle, backend: Backend) -> Pipeline:
    """The bundle loaded on a backend made for one rung; one that fails half-way gives back
    the stages it did load (their memory may be what the next rung needs)."""
    try:
        return Pipeline.load(bundle, backend)
    except BaseException:
        backend.close()
        raise
