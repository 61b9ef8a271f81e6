"""Where built TensorRT engines are kept, and the rule that a stale engine is never used.

A TensorRT engine is compiled for one ONNX file, one GPU model, one TensorRT version, one
precision and one range of input shapes; run anywhere else it fails to load or, worse, loads
and draws wrong pictures. So every engine is stored with a sidecar recording exactly what it
was built for (``EngineKey``) and the sha256 of its bytes, and ``EngineCache.load`` returns an
engine only when the sidecar equals the key the runtime wants and the bytes are intact.
Otherwise it raises ``StaleEngine``, naming what differs and what to run.

The FP16 variants of the stages that ONNX Runtime's CUDA provider runs
(``installation.engine.fp16``) are kept the same way in the same folder, under their own
entry names and file suffix, with their own key (the source ONNX and the converter).

Pure Python (no TensorRT, no CUDA), so all of it is tested on any machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from installation.engine.bundle import StageSpec
from installation.engine.gpu.cuda import GpuInfo
from installation.errors import UserError
from installation.files import write_atomic

#: Batch sizes the engines are optimised for: the worker runs batch 1, a crossfade 2, the
#: bench larger batches in chunks of MAX_BATCH. Device buffers are sized for MAX_BATCH.
MIN_BATCH = 1
OPT_BATCH = 1
MAX_BATCH = 4
#: Preference order: FP16 where the builder found it accurate enough, else FP32.
PRECISIONS = ("fp16", "fp32")

ENGINE = ".engine"
SIDECAR = ".json"
#: What a cache may hold besides its sidecars: TensorRT engines and ONNX models.
ARTIFACTS = (ENGINE, ".onnx")
_DIGEST_CHARS = 16

Shape = tuple[int, ...]


class CacheKey:
    """What a key of a cache entry can do: a frozen dataclass whose fields say everything
    the entry was made for."""

    def fields_json(self) -> dict[str, Any]:
        """The fields as JSON would give them back (tuples as lists)."""
        return json.loads(json.dumps(asdict(self)))

    def digest(self) -> str:
        """sha256 of the canonical JSON of all fields."""
        text = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class EngineKey(CacheKey):
    """Everything an engine was built for; an engine is used only for an identical key.

    - ``onnx_sha256``: the engine is a compiled copy of these exact weights; a retrained or
      re-exported stage needs a new engine even when its file name stays the same.
    - ``gpu_name``, ``compute_capability``: TensorRT picks and compiles kernels for one GPU
      model; engines do not load on another architecture and may be slow on another model.
    - ``tensorrt_version``: engines are only valid for the TensorRT version that built them.
    - ``precision``: "fp16" or "fp32", what the parity check accepted for this stage.
    - ``input_name``, ``min_shape``, ``opt_shape``, ``max_shape``: the optimisation profile
      (shapes include the batch axis); runs outside it are refused by TensorRT.
    """

    onnx_sha256: str
    gpu_name: str
    compute_capability: str
    tensorrt_version: str
    precision: str
    input_name: str
    min_shape: Shape
    opt_shape: Shape
    max_shape: Shape


def profile_shapes(item_shape: Shape, fixed_batch: int | None = None) -> tuple[Shape, Shape, Shape]:
    """Minimum, optimum and maximum input shapes for a stage's per-item input shape; a model
    whose batch axis is fixed gets that size for all three."""
    batches = (fixed_batch,) * 3 if fixed_batch is not None else (MIN_BATCH, OPT_BATCH, MAX_BATCH)
    low, best, high = ((batch, *item_shape) for batch in batches)
    return low, best, high


def engine_key(
    spec: StageSpec,
    gpu: GpuInfo,
    tensorrt_version: str,
    precision: str,
    fixed_batch: int | None = None,
) -> EngineKey:
    """The key of an engine for ``spec`` on this GPU and TensorRT."""
    low, best, high = profile_shapes(spec.input_shape, fixed_batch)
    return EngineKey(
        spec.sha256,
        gpu.name,
        gpu.compute_capability,
        tensorrt_version,
        precision,
        spec.input_name,
        low,
        best,
        high,
    )


def wanted_keys(spec: StageSpec, gpu: GpuInfo, tensorrt_version: str) -> list[EngineKey]:
    """The keys an engine for ``spec`` may have, best first.

    Whether a model's batch axis is dynamic or fixed at 1 (the only sizes a bundle allows)
    is only known by parsing the ONNX file, which the runtime does not do; both profiles
    are asked for. That is safe: the ONNX sha256 in the key decides which one it has, so
    at most one of them can ever have been built.
    """
    return [
        engine_key(spec, gpu, tensorrt_version, precision, fixed_batch)
        for fixed_batch in (None, 1)
        for precision in PRECISIONS
    ]


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/installation/engines``, else ``~/.cache/installation/engines``;
    the kiosk unit sets XDG_CACHE_HOME=/var/cache/installation."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says to ignore a relative path.
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "installation" / "engines"


Key = TypeVar("Key", bound=CacheKey)


class StaleEngine(UserError):
    """No engine in the cache may be used for a stage; the message says why and what to run."""

    def __init__(
        self, stage: str, folder: Path, reason: str, what: str = "TensorRT engine"
    ) -> None:
        super().__init__(
            f"stage {stage!r}: no usable {what} in {folder}: {reason}; "
            "run installation build-engines SHOW"
        )
        self.stage = stage
        self.reason = reason


class EngineCache:
    """A folder of ``<stage>-<digest[:16]>.engine`` files, each with a ``.json`` sidecar.

    It never grows: storing an engine for a stage removes every other entry of that stage
    (other precision, other GPU, older ONNX). ``suffix`` and ``what`` make the same kind of
    cache for other artifacts (ONNX models: ``.onnx``), named in its refusals.
    """

    def __init__(self, folder: Path, suffix: str = ENGINE, what: str = "TensorRT engine") -> None:
        if suffix not in ARTIFACTS:
            raise ValueError(f"suffix must be one of {ARTIFACTS}, not {suffix!r}")
        self.folder = folder
        self.suffix = suffix
        self.what = what

    def store(
        self, stage_name: str, key: CacheKey, engine_bytes: bytes, report: dict[str, Any]
    ) -> Path:
        """Keep an engine built for ``key`` with its build report; returns the engine's path.

        The sidecar is written last, so an entry is complete before it can be loaded.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        engine = self._path(stage_name, key, self.suffix)
        sidecar = self._path(stage_name, key, SIDECAR)
        record = {
            "stage": stage_name,
            "key": key.fields_json(),
            "engine_file": engine.name,
            "engine_sha256": hashlib.sha256(engine_bytes).hexdigest(),
            "report": report,
        }
        write_atomic(engine, engine_bytes)
        write_atomic(sidecar, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
        for path in self._entries(stage_name, with_temporary=True):
            if path not in (engine, sidecar):
                path.unlink(missing_ok=True)
        return engine

    def discard(self, stage_name: str) -> None:
        """Remove every entry of a stage (a check it no longer passes must not leave an
        older one in use)."""
        for path in self._entries(stage_name, with_temporary=True):
            path.unlink(missing_ok=True)

    def path(self, stage_name: str, key: CacheKey) -> Path:
        """Where the artifact for ``key`` is (or would be) kept: for a runtime that loads
        files, once ``load`` has checked them."""
        return self._path(stage_name, key, self.suffix)

    def load(self, stage_name: str, keys: Sequence[Key]) -> tuple[bytes, Key]:
        """The engine of the first of ``keys`` (best first) that is stored intact, exactly
        for that key; StaleEngine naming the stage and the reason otherwise."""
        for key in keys:
            record = _read_record(self._path(stage_name, key, SIDECAR))
            engine = self._path(stage_name, key, self.suffix)
            if record is None or record.get("key") != key.fields_json() or not engine.is_file():
                continue
            data = engine.read_bytes()
            if hashlib.sha256(data).hexdigest() == record.get("engine_sha256"):
                return data, key
        raise StaleEngine(stage_name, self.folder, self._why_not(stage_name, keys), self.what)

    def timing_cache_path(self, gpu: GpuInfo, tensorrt_version: str) -> Path:
        """The builder's timing cache for this GPU model and TensorRT version: it holds
        measured kernel timings, valid only where they were measured."""
        return self.folder / (
            f"timing-{_file_part(gpu.name)}-sm{gpu.compute_capability}-trt{tensorrt_version}.cache"
        )

    def _path(self, stage_name: str, key: CacheKey, suffix: str) -> Path:
        return self.folder / f"{_file_part(stage_name)}-{key.digest()[:_DIGEST_CHARS]}{suffix}"

    def _entries(self, stage_name: str, with_temporary: bool = False) -> list[Path]:
        """This stage's files: exactly its name, so stage "refine" never matches the
        entries of "refine-256"."""
        dot, tmp = (r"\.?", r"(\.\d+\.tmp)?") if with_temporary else ("", "")
        pattern = re.compile(
            rf"{dot}{re.escape(_file_part(stage_name))}-[0-9a-f]{{{_DIGEST_CHARS}}}"
            rf"({re.escape(self.suffix)}|{re.escape(SIDECAR)}){tmp}"
        )
        if not self.folder.is_dir():
            return []
        return sorted(path for path in self.folder.iterdir() if pattern.fullmatch(path.name))

    def _why_not(self, stage_name: str, keys: Sequence[CacheKey]) -> str:
        """Why none of ``keys`` could be loaded, from whatever entry the stage has."""
        entries = self._entries(stage_name)
        sidecars = [path for path in entries if path.suffix == SIDECAR]
        if not sidecars:
            return f"its {self.noun} has no record (.json)" if entries else "never built"
        record = _read_record(sidecars[0])
        recorded = record.get("key") if record else None
        if not isinstance(recorded, dict):
            return f"its record {sidecars[0].name} is unreadable"
        wanted = [key.fields_json() for key in keys]
        for field in fields(keys[0]):
            choices = [key[field.name] for key in wanted]
            if recorded.get(field.name) not in choices:
                return _mismatch(field.name, recorded.get(field.name), choices[0])
        if recorded not in wanted:
            return "built for another combination of settings"
        key = keys[wanted.index(recorded)]
        if sidecars[0] != self._path(stage_name, key, SIDECAR):
            return f"its record {sidecars[0].name} was changed after the build"
        engine = sidecars[0].with_suffix(self.suffix)
        if not engine.is_file():
            return f"its {self.noun} file is missing"
        return f"its {self.noun} file is corrupt or truncated (sha256 differs from its record)"

    @property
    def noun(self) -> str:
        """The last word of ``what``: "engine", "variant"."""
        return self.what.split()[-1]


def _mismatch(field: str, recorded: Any, wanted: Any) -> str:
    """Why an entry whose ``field`` is ``recorded`` cannot serve a runtime that wants ``wanted``."""
    if field in ("gpu_name", "compute_capability"):
        return f"built for another GPU ({recorded}, this one is {wanted})"
    if field == "tensorrt_version":
        return f"built with another TensorRT version ({recorded}, this is {wanted})"
    if field == "onnx_sha256":
        return "the ONNX file changed since its engine was built"
    if field == "precision":
        return f"built in another precision ({recorded})"
    if field in ("converter", "onnxruntime_version"):
        return f"made with another {field.replace('_', ' ')} ({recorded}, this is {wanted})"
    return f"built for another input ({field} {recorded}, wanted {wanted})"


def _read_record(path: Path) -> dict[str, Any] | None:
    """A sidecar's content, or None when it is missing or not a JSON object."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _file_part(text: str) -> str:
    """``text`` safe as part of a file name (stage and GPU names are free text)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)
