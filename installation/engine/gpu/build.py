"""``installation build-engines``: faster forms of each stage, checked before they are kept.

Two kinds, both in the engine cache: the FP16 variants that ONNX Runtime's CUDA rung runs
(``installation.engine.fp16``; made on any machine, TensorRT or not), and one TensorRT
engine per stage where TensorRT and a GPU are present.

FP16 engines are about twice as fast but a GAN stage may lose detail or drift in colour in
half precision, so no engine is trusted on faith: each is run on fresh random latents next to
ONNX Runtime on the CPU (the reference every other backend is held to,
``installation.engine.parity``), alone and then chained with the others, since a later stage
may amplify an earlier one's error. An FP16 engine over the tolerance is rebuilt in FP32 (when
the chain is over it, the FP16 engine with the largest error of its own first); an engine
still over it is not stored. The report (precision, errors alone and end to end, build time)
is kept in the engine's sidecar, so what runs in the gallery can be traced back to this check.

Half precision is asked for the way the TensorRT in use wants it. From TensorRT 10.12 the
network is strongly typed: the FP16 variant's ONNX (FP16 inside, float32 at the edges) is
parsed as it is and TensorRT keeps its types, which TensorRT 11 requires (it has no weakly
typed networks). Before 10.12, the FP32 ONNX is built with ``BuilderFlag.FP16``, which lets
TensorRT pick FP16 kernels where it likes.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from installation.engine.bundle import Bundle, StageSpec
from installation.engine.fp16 import (
    VariantBuild,
    converter_missing,
    discard_variants,
    make_variants,
    to_fp16,
)
from installation.engine.gpu.cuda import GpuUnavailable
from installation.engine.gpu.engine_cache import EngineCache, EngineKey, engine_key
from installation.engine.gpu.tensorrt_backend import (
    TensorRTBackend,
    TensorRTStage,
    make_builder,
    not_its_kind,
)
from installation.engine.ort_cuda import release
from installation.engine.parity import (
    DEFAULT_TOLERANCE,
    Sample,
    end_to_end_error,
    reference_samples,
    stage_error,
)
from installation.engine.pipeline import Pipeline, Stage
from installation.errors import UserError
from installation.files import write_atomic

__all__ = ["DEFAULT_TOLERANCE", "StageBuild", "build_engines", "closing_line"]

#: Scratch memory TensorRT may use while choosing kernels; generous, it is given back after.
WORKSPACE_BYTES = 1 << 30
CHOICES = ("auto", "fp32")
#: The first TensorRT whose strongly typed networks replace ``BuilderFlag.FP16``.
STRONGLY_TYPED_SINCE = (10, 12)


@dataclass(frozen=True)
class StageBuild:
    stage: str
    precision: str
    max_abs_error: float
    #: Wall time of the stage, including an FP16 build that was rejected.
    seconds: float
    path: Path
    #: The chained engines' output against ONNX Runtime's, fed only the latents.
    end_to_end_error: float


@dataclass(frozen=True)
class _Candidate:
    """An engine built and checked alone, not stored yet."""

    spec: StageSpec
    engine: bytes
    key: EngineKey
    error: float
    seconds: float


def build_engines(
    bundle: Bundle,
    cache: EngineCache,
    *,
    precision: str = "auto",
    tolerance: float = DEFAULT_TOLERANCE,
    say: Callable[[str], object] = print,
) -> list[StageBuild]:
    """Make the FP16 variants, then build, check and store a TensorRT engine for every stage
    of ``bundle``; the engines stored (none where TensorRT or a GPU is missing, or for a
    bundle TensorRT cannot run: ``not_its_kind``). The last line said is ``closing_line``:
    what was kept for each rung and what was not, and why.

    ``precision`` "auto" makes FP16 where the result is within ``tolerance``, else FP32;
    "fp32" makes FP32 engines only and removes the FP16 variants.
    """
    if precision not in CHOICES:
        raise ValueError(f"precision must be one of {CHOICES}, not {precision!r}")
    seed = int(np.random.default_rng().integers(2**63))
    # Drawn once, when first needed, for the FP16 variants and the engines alike.
    reference = functools.cache(functools.partial(reference_samples, bundle, seed))
    variants: list[VariantBuild] = []
    if precision == "fp32":
        discard_variants(bundle, cache.folder)
    else:
        variants = make_variants(
            bundle, cache.folder, seed, tolerance=tolerance, say=say, reference=reference
        )
    unsuited = not_its_kind(bundle)
    if unsuited:
        say(closing_line(bundle, cache.folder, variants, [], f"no TensorRT engines: {unsuited}"))
        return []
    try:
        backend = TensorRTBackend(bundle, cache)
    except GpuUnavailable as exc:
        say(closing_line(bundle, cache.folder, variants, [], f"no TensorRT engines: {exc}"))
        return []
    try:
        samples = reference()
        builder = _Builder(backend, tolerance, seed, say)
        candidates = [
            builder.build(
                spec, sample, f"stage {number}/{len(bundle.stages)} {spec.name}:", precision
            )
            for number, (spec, sample) in enumerate(zip(bundle.stages, samples, strict=True), 1)
        ]
        candidates, chained = builder.check_chain(candidates, samples)
        engines = [builder.store(candidate, chained) for candidate in candidates]
    finally:
        backend.close()
    say(closing_line(bundle, cache.folder, variants, engines))
    return engines


def closing_line(
    bundle: Bundle,
    folder: Path,
    variants: list[VariantBuild],
    engines: list[StageBuild],
    no_engines: str | None = None,
) -> str:
    """The line a build ends with: what is now in ``folder`` for each rung and with what
    error, and what is not (``no_engines``: why TensorRT built nothing). A technician reads
    only this line, and ``gpu-check`` keeps only it."""
    kept = [build for build in variants if build.kept]
    fp16 = f"FP16 variants for ONNX Runtime CUDA: {len(kept)} of {len(bundle.stages)} stages"
    if kept:
        errors = ", ".join(f"{build.stage} {build.max_abs_error:.4f}" for build in kept)
        fp16 += f" (max abs error {errors}{_end_to_end(kept[0].end_to_end_error)})"
    fp16_stages = {build.stage for build in kept}
    in_fp32 = [spec.name for spec in bundle.stages if spec.name not in fp16_stages]
    if in_fp32:
        fp16 += f", in FP32: {', '.join(in_fp32)}"
    if no_engines is None:
        errors = ", ".join(
            f"{build.stage} {build.precision.upper()} {build.max_abs_error:.4f}"
            for build in engines
        )
        chained = _end_to_end(engines[0].end_to_end_error if engines else None)
        no_engines = f"TensorRT engines: {len(engines)} ({errors}{chained})"
    return f"{bundle.name} in {folder}: {fp16}; {no_engines}"


def _end_to_end(error: float | None) -> str:
    return "" if error is None else f"; end to end {error:.4f}"


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
        self.builder = make_builder(self.trt, backend.logger)
        self.version: str = self.trt.__version__
        self.strongly_typed = strongly_typed(self.trt)
        self.timing_path = backend.cache.timing_cache_path(backend.gpu, self.version)
        self.timing = self._load_timing_cache()
        self._samples: dict[str, Sample] = {}

    def build(self, spec: StageSpec, sample: Sample, label: str, precision: str) -> _Candidate:
        """Build an engine for one stage, FP16 first where allowed, and check it alone."""
        started = time.monotonic()
        self._samples[spec.name] = sample
        fast = getattr(self.builder, "platform_has_fast_fp16", True)
        wanted = "fp16" if precision == "auto" and fast else "fp32"
        missing = converter_missing() if self.strongly_typed else None
        if wanted == "fp16" and missing:
            self.say(f"{label} {missing}: FP32 only")
            wanted = "fp32"
        self.say(f"{label} building {wanted.upper()} engine ...")
        candidate = self._candidate(spec, wanted, started)
        if candidate.error > self.tolerance and wanted == "fp16":
            self.say(
                f"{label} FP16 error {candidate.error:.3f} > {self.tolerance}: rebuilding in FP32"
            )
            candidate = self._candidate(spec, "fp32", started)
        if candidate.error > self.tolerance:
            raise UserError(
                f"{spec.path}: its FP32 TensorRT engine differs from ONNX Runtime by "
                f"{candidate.error:.3f} (> {self.tolerance}); no engine stored"
            )
        return candidate

    def check_chain(
        self, candidates: list[_Candidate], samples: list[Sample]
    ) -> tuple[list[_Candidate], float]:
        """The engines chained on the GPU against ONNX Runtime end to end; while over the
        tolerance, the FP16 engine with the largest error alone is rebuilt in FP32."""
        while True:
            error = self._end_to_end(candidates, samples)
            if error <= self.tolerance:
                return candidates, error
            halves = [c for c in candidates if c.key.precision == "fp16"]
            if not halves:
                raise UserError(
                    f"{candidates[-1].spec.path}: the chained FP32 TensorRT engines differ "
                    f"from ONNX Runtime by {error:.3f} (> {self.tolerance}); no engine stored"
                )
            worst = max(halves, key=lambda c: c.error)
            self.say(
                f"{worst.spec.name}: chained error {error:.3f} > {self.tolerance}: "
                "rebuilding in FP32"
            )
            rebuilt = self._candidate(worst.spec, "fp32", time.monotonic() - worst.seconds)
            candidates = [rebuilt if c is worst else c for c in candidates]

    def store(self, candidate: _Candidate, chained: float) -> StageBuild:
        seconds = round(candidate.seconds, 3)
        report = {
            "precision": candidate.key.precision,
            "max_abs_error": candidate.error,
            "end_to_end_max_abs_error": chained,
            "tolerance": self.tolerance,
            "parity_seed": self.seed,
            "strongly_typed": self.strongly_typed,
            "build_seconds": seconds,
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        spec, key = candidate.spec, candidate.key
        path = self.backend.cache.store(spec.name, key, candidate.engine, report)
        self.say(
            f"{spec.name}: {key.precision.upper()}, max abs error {candidate.error:.4f} "
            f"(end to end {chained:.4f}), built in {seconds:.1f} s: {path}"
        )
        return StageBuild(spec.name, key.precision, candidate.error, seconds, path, chained)

    def _candidate(self, spec: StageSpec, precision: str, started: float) -> _Candidate:
        engine, key = self._build(spec, precision)
        error = self._error(spec, engine, self._samples[spec.name])
        return _Candidate(spec, engine, key, error, time.monotonic() - started)

    def _build(self, spec: StageSpec, precision: str) -> tuple[bytes, EngineKey]:
        trt = self.trt
        flags = (
            1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if self.strongly_typed else 0
        )
        network = self.builder.create_network(flags)  # TensorRT 10: always explicit batch
        parser = trt.OnnxParser(network, self.backend.logger)
        if self.strongly_typed and precision == "fp16":
            # The types are the network's: FP16 inside, as the converter made them.
            parsed = parser.parse(to_fp16(spec.path), str(spec.path))
        else:
            parsed = parser.parse_from_file(str(spec.path))
        if not parsed:
            raise UserError(
                f"{spec.path}: TensorRT cannot parse this ONNX model: {_parse_error(parser)}"
            )
        batch = network.get_input(0).shape[0]
        key = engine_key(
            spec, self.backend.gpu, self.version, precision, None if batch < 0 else batch
        )
        serialized = self.builder.build_serialized_network(network, self._config(spec, key))
        if serialized is None:
            raise UserError(
                f"{spec.path}: TensorRT could not build a {precision.upper()} engine "
                "(its messages above say why)"
            )
        write_atomic(self.timing_path, bytes(self.timing.serialize()))
        return bytes(serialized), key

    def _config(self, spec: StageSpec, key: EngineKey) -> Any:
        trt = self.trt
        config = self.builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
        if key.precision == "fp16" and not self.strongly_typed:
            config.set_flag(trt.BuilderFlag.FP16)
        elif key.precision == "fp32":
            # TF32 (on by default) rounds to FP16's mantissa: FP32 should mean FP32 here.
            config.clear_flag(trt.BuilderFlag.TF32)
        profile = self.builder.create_optimization_profile()
        profile.set_shape(key.input_name, key.min_shape, key.opt_shape, key.max_shape)
        if config.add_optimization_profile(profile) < 0:
            raise UserError(
                f"{spec.path}: TensorRT refused the input profile of {key.input_name!r} "
                f"({key.min_shape} to {key.max_shape}): the model's input has another shape"
            )
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

    def _error(self, spec: StageSpec, engine: bytes, sample: Sample) -> float:
        """Largest difference from ONNX Runtime on the 0..1 scale."""
        stage = self.backend.stage(spec, engine)
        try:
            return stage_error(stage.run(sample.batch, sample.extra), spec, sample)
        finally:
            stage.close()

    def _end_to_end(self, candidates: list[_Candidate], samples: list[Sample]) -> float:
        """The candidates loaded together and chained as the show runs them."""
        stages: list[TensorRTStage] = []
        try:
            for candidate in candidates:
                stages.append(self.backend.stage(candidate.spec, candidate.engine))
            pipeline = Pipeline(
                self.backend.bundle,
                [Stage(c.spec, stage) for c, stage in zip(candidates, stages, strict=True)],
                self.backend.name,
                self.backend.chain(stages),
            )
            return end_to_end_error(pipeline, samples)
        finally:
            for stage in stages:
                stage.close()


def strongly_typed(trt: Any) -> bool:
    """Whether to build strongly typed networks with this TensorRT module."""
    flags = getattr(trt, "NetworkDefinitionCreationFlag", None)
    return release(trt.__version__) >= STRONGLY_TYPED_SINCE and hasattr(flags, "STRONGLY_TYPED")


def _parse_error(parser: Any) -> str:
    """The first line of the ONNX parser's first error."""
    lines = str(parser.get_error(0).desc()).strip().splitlines() if parser.num_errors else []
    return lines[0] if lines else "no reason given"
