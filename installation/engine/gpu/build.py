"""``installation build-engines``: one TensorRT engine per stage, checked before it is kept.

FP16 engines are about twice as fast but a GAN stage may lose detail or drift in colour in
half precision, so no engine is trusted on faith: each is run on fresh random latents next to
ONNX Runtime on the CPU (the reference every other backend is held to), and its largest error
on the 0..1 scale decides. An FP16 engine over the tolerance is rebuilt in FP32; an engine
still over it is not stored. The report (precision, error, build time) is kept in the engine's
sidecar, so what runs in the gallery can be traced back to this check.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.bundle import Bundle, StageSpec
from installation.engine.convention import to_unit
from installation.engine.gpu.engine_cache import EngineCache, EngineKey, engine_key
from installation.engine.gpu.tensorrt_backend import TensorRTBackend
from installation.engine.pipeline import Pipeline
from installation.errors import UserError
from installation.files import write_atomic
from installation.score.trajectory import keyframe

#: Largest accepted difference from ONNX Runtime on the 0..1 scale: about 5 of 255 grey levels.
DEFAULT_TOLERANCE = 0.02
#: Latents of the parity check: one batch of the largest profile size.
PARITY_SAMPLES = 4
#: Scratch memory TensorRT may use while choosing kernels; generous, it is given back after.
WORKSPACE_BYTES = 1 << 30
CHOICES = ("auto", "fp32")


@dataclass(frozen=True)
class StageBuild:
    stage: str
    precision: str
    max_abs_error: float
    #: Wall time of the stage, including an FP16 build that was rejected.
    seconds: float
    path: Path


@dataclass(frozen=True)
class _Sample:
    """A stage's input in its own convention and ONNX Runtime's output for it, NCHW 0..1."""

    batch: np.ndarray
    expected: np.ndarray


def build_engines(
    bundle: Bundle,
    cache: EngineCache,
    *,
    precision: str = "auto",
    tolerance: float = DEFAULT_TOLERANCE,
    say: Callable[[str], object] = print,
) -> list[StageBuild]:
    """Build, check and store an engine for every stage of ``bundle``.

    ``precision`` "auto" builds FP16 where the GPU is fast at it and the result is within
    ``tolerance``, else FP32; "fp32" builds FP32 only. Without TensorRT or a usable GPU this
    raises GpuUnavailable before anything slow happens.
    """
    if precision not in CHOICES:
        raise ValueError(f"precision must be one of {CHOICES}, not {precision!r}")
    backend = TensorRTBackend(bundle, cache)
    try:
        seed = int(np.random.default_rng().integers(2**63))
        samples = _reference_samples(Pipeline.load(bundle, OnnxRuntimeBackend(CPU)), seed)
        builder = _Builder(backend, tolerance, seed, say)
        return [
            builder.build(
                spec, sample, f"stage {number}/{len(bundle.stages)} {spec.name}:", precision
            )
            for number, (spec, sample) in enumerate(zip(bundle.stages, samples, strict=True), 1)
        ]
    finally:
        backend.close()


def _reference_samples(reference: Pipeline, seed: int) -> list[_Sample]:
    """Every stage's input and ONNX Runtime's output for random latents (drawn like a show's
    keyframes from ``seed``, so the bundle's latent distribution is respected and a failed
    check can be replayed), each stage fed the reference output of the one before, so that
    errors do not add up along the chain."""
    bundle = reference.bundle
    latents = np.stack(
        [
            keyframe(seed, index, bundle.latent_size, bundle.latent_distribution)
            for index in range(PARITY_SAMPLES)
        ]
    )
    batch = latents.reshape((PARITY_SAMPLES, *bundle.stages[0].input_shape))
    return [_Sample(inputs, expected) for inputs, expected in reference.walk(batch)]


class _Builder:
    """Builds engines with one TensorRT builder and one timing cache for all stages."""

    def __init__(
        self, backend: TensorRTBackend, tolerance: float, seed: int, say: Callable[[str], object]
    ) -> None:
        self.backend = backend
        self.trt = backend.trt
        self.tolerance = tolerance
        self.seed = seed
        self.say = say
        self.builder = self.trt.Builder(backend.logger)
        self.version: str = self.trt.__version__
        self.timing_path = backend.cache.timing_cache_path(backend.gpu, self.version)
        self.timing = self._load_timing_cache()

    def build(self, spec: StageSpec, sample: _Sample, label: str, precision: str) -> StageBuild:
        """Build an engine for one stage, FP16 first where allowed, check it, store it."""
        started = time.monotonic()
        wanted = "fp16" if precision == "auto" and self.builder.platform_has_fast_fp16 else "fp32"
        self.say(f"{label} building {wanted.upper()} engine ...")
        engine, key = self._build(spec, wanted)
        error = self._error(spec, engine, sample)
        if wanted == "fp16" and error > self.tolerance:
            self.say(f"{label} FP16 error {error:.3f} > {self.tolerance}: rebuilding in FP32")
            engine, key = self._build(spec, "fp32")
            error = self._error(spec, engine, sample)
        if error > self.tolerance:
            raise UserError(
                f"{spec.path}: its FP32 TensorRT engine differs from ONNX Runtime by "
                f"{error:.3f} (> {self.tolerance}); no engine stored"
            )
        seconds = time.monotonic() - started
        report = {
            "precision": key.precision,
            "max_abs_error": error,
            "tolerance": self.tolerance,
            "parity_seed": self.seed,
            "build_seconds": round(seconds, 3),
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        path = self.backend.cache.store(spec.name, key, engine, report)
        self.say(
            f"{label} {key.precision.upper()}, max abs error {error:.4f}, "
            f"built in {seconds:.1f} s: {path}"
        )
        return StageBuild(spec.name, key.precision, error, seconds, path)

    def _build(self, spec: StageSpec, precision: str) -> tuple[bytes, EngineKey]:
        network = self.builder.create_network(0)  # TensorRT 10: always explicit batch
        parser = self.trt.OnnxParser(network, self.backend.logger)
        if not parser.parse_from_file(str(spec.path)):
            raise UserError(
                f"{spec.path}: TensorRT cannot parse this ONNX model: {_parse_error(parser)}"
            )
        batch = network.get_input(0).shape[0]
        key = engine_key(
            spec, self.backend.gpu, self.version, precision, None if batch < 0 else batch
        )
        serialized = self.builder.build_serialized_network(network, self._config(key))
        if serialized is None:
            raise UserError(
                f"{spec.path}: TensorRT could not build a {precision.upper()} engine "
                "(its messages above say why)"
            )
        write_atomic(self.timing_path, bytes(self.timing.serialize()))
        return bytes(serialized), key

    def _config(self, key: EngineKey) -> Any:
        trt = self.trt
        config = self.builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
        if key.precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        else:
            # TF32 (on by default) rounds to FP16's mantissa: FP32 should mean FP32 here.
            config.clear_flag(trt.BuilderFlag.TF32)
        profile = self.builder.create_optimization_profile()
        profile.set_shape(key.input_name, key.min_shape, key.opt_shape, key.max_shape)
        config.add_optimization_profile(profile)
        if not config.set_timing_cache(self.timing, False):  # False: refuse another device's
            # Measured on another device after all: measure again rather than trust it.
            self.timing = config.create_timing_cache(b"")
            config.set_timing_cache(self.timing, False)
        return config

    def _load_timing_cache(self) -> Any:
        """The saved timing cache (kernel timings measured here before), or a new one; a
        cache TensorRT cannot read only costs time, so it is replaced, not reported."""
        self.backend.cache.folder.mkdir(parents=True, exist_ok=True)
        data = self.timing_path.read_bytes() if self.timing_path.is_file() else b""
        config = self.builder.create_builder_config()
        return config.create_timing_cache(data) or config.create_timing_cache(b"")

    def _error(self, spec: StageSpec, engine: bytes, sample: _Sample) -> float:
        """Largest difference from ONNX Runtime on the 0..1 scale."""
        stage = self.backend.stage(spec, engine)
        try:
            raw = stage.run(sample.batch)
        finally:
            stage.close()
        return float(np.max(np.abs(to_unit(raw, spec.layout, spec.range) - sample.expected)))


def _parse_error(parser: Any) -> str:
    """The first line of the ONNX parser's first error."""
    lines = str(parser.get_error(0).desc()).strip().splitlines() if parser.num_errors else []
    return lines[0] if lines else "no reason given"
