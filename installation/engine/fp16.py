"""FP16 variants of a bundle's stages for ONNX Runtime's CUDA provider, made and proven once.

Half precision roughly halves a generator's memory traffic and uses the GPU's tensor cores,
but a GAN stage may lose detail or drift in colour in it, and a small error of the first
stage may be amplified by the next. So ``installation build-engines`` converts each stage
with ONNX Runtime's own converter (``onnxruntime.transformers.float16``, shipped inside
onnxruntime; it needs the ``onnx`` package), keeping float32 inputs and outputs so that the
stage still meets the bundle's manifest, and checks the variants against FP32 ONNX Runtime
on the CPU (``installation.engine.parity``) per stage and end to end. A variant over the
tolerance is dropped; where the stages together are over it, the variant with the largest
error of its own is dropped and the rest measured again. What passes is kept in the engine
cache, keyed by the source model's sha256, the converter and the ONNX Runtime version, with
the check's figures in its sidecar. The CUDA rung loads a stage's variant only from there.

The check runs on the CUDA provider where there is one, else on the CPU provider, which
runs FP16 models too (it wraps operators that lack an FP16 kernel in casts to FP32). On the
CPU it measures the rounding of weights and activations to FP16, not CUDA's FP16
arithmetic: run ``build-engines`` on the exhibition PC itself to measure that.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from installation.engine.backend import CPU, CUDA, OnnxRuntimeBackend
from installation.engine.bundle import Bundle, StageSpec
from installation.engine.gpu.engine_cache import CacheKey, EngineCache, StaleEngine
from installation.engine.parity import (
    DEFAULT_TOLERANCE,
    Sample,
    end_to_end_error,
    reference_samples,
)
from installation.engine.pipeline import Pipeline, load_stage
from installation.errors import UserError, first_line

log = logging.getLogger(__name__)

CONVERTER = "onnxruntime.transformers.float16(keep_io_types=True)"
#: Entries of the variants in the engine cache: "<stage>.onnxruntime-fp16-<digest>.onnx",
#: apart from the stage's TensorRT engine, which storing one of them must not remove.
ENTRY = "{stage}.onnxruntime-fp16"
NEEDS_ONNX = "FP16 conversion needs the onnx package (pip install onnx)"


@dataclass(frozen=True)
class VariantKey(CacheKey):
    """What an FP16 variant was made from and with; it is used only for an identical key.

    - ``onnx_sha256``: the stage's model file the variant was converted from.
    - ``converter``, ``onnxruntime_version``: another converter may convert differently,
      and another ONNX Runtime may run the result differently from what was checked.
    """

    onnx_sha256: str
    precision: str
    converter: str
    onnxruntime_version: str


@dataclass(frozen=True)
class VariantBuild:
    """The verdict on one stage's variant: kept (``path``) or not, and the figures."""

    stage: str
    kept: bool
    #: The stage alone (fed the reference input) and the whole chain, on the 0..1 scale.
    max_abs_error: float
    end_to_end_error: float | None
    path: Path | None


def variant_key(spec: StageSpec) -> VariantKey:
    return VariantKey(spec.sha256, "fp16", CONVERTER, ort.__version__)


def variant_cache(folder: Path) -> EngineCache:
    return EngineCache(folder, suffix=".onnx", what="FP16 variant")


def converter_missing() -> str | None:
    """Why models cannot be converted to FP16 here, or None: the converter needs the onnx
    package, which the runtime itself does not."""
    if importlib.util.find_spec("onnx") is None:
        return NEEDS_ONNX
    return None


def to_fp16(path: Path) -> bytes:
    """The model at ``path`` converted to FP16 inside, float32 at its inputs and outputs."""
    try:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError as exc:
        raise UserError(f"{NEEDS_ONNX} ({first_line(exc)})") from None
    try:
        half = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
        # The converter appends its casts at the end of the node list; ONNX wants the nodes
        # in the order they run.
        _sort_nodes(half.graph)
        onnx.checker.check_model(half)
    except Exception as exc:  # onnx and the converter raise many types for models they reject
        raise UserError(f"{path}: cannot convert to FP16: {first_line(exc)}") from None
    return half.SerializeToString()


def make_variants(
    bundle: Bundle,
    folder: Path,
    seed: int,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    say: Callable[[str], object] = print,
    provider: str | None = None,
    reference: Callable[[], list[Sample]] | None = None,
) -> list[VariantBuild]:
    """Convert, check and keep (or drop) the FP16 variant of every stage of ``bundle``;
    none, said in one line, where the converter cannot run. A stage the converter or ONNX
    Runtime cannot handle in FP16 is said so and runs in FP32. The check runs on
    ``provider``, by default the CUDA provider where there is one, else the CPU, against
    ``reference()`` (``reference_samples`` of ``seed`` where None)."""
    missing = converter_missing()
    if missing:
        say(f"no FP16 variants: {missing}")
        return []
    if provider is None:
        provider = CUDA if CUDA in ort.get_available_providers() else CPU
    samples = reference() if reference else reference_samples(bundle, seed)
    cache = variant_cache(folder)
    check = _Check(bundle, samples, provider, tolerance)
    with tempfile.TemporaryDirectory(prefix="fp16-") as scratch:
        candidates = {}
        for index, spec in enumerate(bundle.stages):
            try:
                converted = to_fp16(spec.path)
            except UserError as exc:
                check.failed[spec.path] = str(exc)
                continue
            candidates[spec.path] = Path(scratch) / f"{index}.onnx"
            candidates[spec.path].write_bytes(converted)
        builds = []
        for spec, build in zip(bundle.stages, check.decide(candidates), strict=True):
            name = ENTRY.format(stage=spec.name)
            if build.kept:
                data, report = candidates[spec.path].read_bytes(), check.report(build, seed)
                build = replace(build, path=cache.store(name, variant_key(spec), data, report))
            else:
                cache.discard(name)
            builds.append(build)
    for spec, build in zip(bundle.stages, builds, strict=True):
        say(f"{build.stage}: ONNX Runtime FP16 variant{check.verdict(spec, build)}")
    return builds


def discard_variants(bundle: Bundle, folder: Path) -> None:
    """Remove the stages' variants (``build-engines --fp32``: FP32 only from now on)."""
    cache = variant_cache(folder)
    for spec in bundle.stages:
        cache.discard(ENTRY.format(stage=spec.name))


def proven_variants(bundle: Bundle, folder: Path) -> dict[Path, Path]:
    """The variant files the CUDA rung may load, by stage path: those the cache holds intact
    for exactly this model, converter and ONNX Runtime. One log line names the stages that
    run in FP32 and why."""
    cache = variant_cache(folder)
    variants: dict[Path, Path] = {}
    reasons = []
    for spec in bundle.stages:
        name = ENTRY.format(stage=spec.name)
        try:
            _data, key = cache.load(name, [variant_key(spec)])
        except StaleEngine as exc:
            reasons.append(f"{spec.name}: {exc.reason}")
            continue
        variants[spec.path] = cache.path(name, key)
    if reasons:
        log.info(
            "ONNX Runtime CUDA runs in FP32 where no proven FP16 variant is in %s (%s; "
            "installation build-engines SHOW makes them)",
            folder,
            "; ".join(reasons),
        )
    return variants


class _Check:
    """Per stage and end-to-end errors of FP16 variants, on one provider."""

    def __init__(
        self, bundle: Bundle, samples: list[Sample], provider: str, tolerance: float
    ) -> None:
        self.bundle = bundle
        self.samples = samples
        self.provider = provider
        self.tolerance = tolerance
        #: Why a stage has no variant to check (not convertible, not runnable), by path.
        self.failed: dict[Path, str] = {}

    def decide(self, candidates: dict[Path, Path]) -> list[VariantBuild]:
        """Keep the variants within the tolerance alone, then drop the worst of them until
        the chain of the kept ones is within it too."""
        own = {path: self._stage_error(path, variant) for path, variant in candidates.items()}
        kept = {path for path, error in own.items() if error <= self.tolerance}
        chained: float | None = None
        while kept:
            chained = self._end_to_end({path: candidates[path] for path in kept})
            if chained <= self.tolerance:
                break
            kept.remove(max(kept, key=own.__getitem__))
            chained = None
        return [
            VariantBuild(spec.name, spec.path in kept, own.get(spec.path, math.inf), chained, None)
            for spec in self.bundle.stages
        ]

    def verdict(self, spec: StageSpec, build: VariantBuild) -> str:
        """The rest of the line ``build-engines`` prints for a stage's variant."""
        if spec.path in self.failed:
            return f": none, the stage runs in FP32: {self.failed[spec.path]}"
        chain = (
            "" if build.end_to_end_error is None else f", end to end {build.end_to_end_error:.4f}"
        )
        verdict = "kept" if build.kept else f"dropped (> {self.tolerance}): the stage runs in FP32"
        return f", max abs error {build.max_abs_error:.4f}{chain} on {self.provider}: {verdict}"

    def report(self, build: VariantBuild, seed: int) -> dict[str, Any]:
        return {
            "precision": "fp16",
            "max_abs_error": build.max_abs_error,
            "end_to_end_max_abs_error": build.end_to_end_error,
            "tolerance": self.tolerance,
            "parity_seed": seed,
            "parity_provider": self.provider,
            "converter": CONVERTER,
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def _stage_error(self, path: Path, variant: Path) -> float:
        """The variant alone, fed the reference's input for its stage; infinite (and the
        reason kept) where ONNX Runtime cannot load or run it."""
        index = [spec.path for spec in self.bundle.stages].index(path)
        sample = self.samples[index]
        backend = OnnxRuntimeBackend(self.provider, variants={path: variant})
        try:  # this stage only (the reference's load hashed the files): the rest is not run
            alone = Pipeline(self.bundle, [load_stage(self.bundle, backend, index)], backend.name)
            unit = alone.run_stage(0, sample.batch, sample.extra)
        except Exception as exc:  # whatever ONNX Runtime raises for a model it cannot run
            self.failed[path] = f"ONNX Runtime cannot run it: {first_line(exc)}"
            return math.inf
        finally:
            backend.close()
        return float(np.max(np.abs(unit - sample.expected)))

    def _end_to_end(self, variants: dict[Path, Path]) -> float:
        backend = OnnxRuntimeBackend(self.provider, chain=True, variants=variants)
        try:
            return end_to_end_error(Pipeline.load(self.bundle, backend), self.samples)
        finally:
            backend.close()


def _sort_nodes(graph: Any) -> None:
    """Put ``graph``'s nodes in an order where each runs after the nodes it reads from."""
    available = {value.name for value in graph.input} | {init.name for init in graph.initializer}
    available.add("")  # an omitted optional input
    pending = [type(node).FromString(node.SerializeToString()) for node in graph.node]
    ordered = []
    while pending:
        ready = [node for node in pending if all(name in available for name in node.input)]
        if not ready:
            raise ValueError("the converted graph has a cycle or an undefined input")
        for node in ready:
            available.update(node.output)
        ordered.extend(ready)
        pending = [node for node in pending if all(node is not done for done in ready)]
    del graph.node[:]
    graph.node.extend(ordered)
