"""TensorRT behind the runtime's Backend interface, with stages chained on the GPU.

Engines are never built here: building takes minutes and belongs to ``installation
build-engines`` (``installation.engine.gpu.build``). Loading a stage takes the engine the
cache holds for exactly this ONNX file, GPU, TensorRT version and input profile, or refuses with
``StaleEngine``. Each stage keeps its engine, execution context and device buffers (sized for
the largest batch of its profile) for the life of the backend; ``close`` frees the memory.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from installation.engine.bundle import Bundle, StageSpec, TensorInfo, extra_inputs
from installation.engine.gpu.cuda import (
    FLOAT32_BYTES,
    INSTALL_HINT,
    DeviceBuffer,
    GpuUnavailable,
    PinnedBuffer,
    Stream,
    driver_version,
    require_gpu,
    select_device,
)
from installation.engine.gpu.engine_cache import EngineCache, StaleEngine, wanted_keys
from installation.engine.model import Backend, DeviceChain, LoadedStage
from installation.errors import UserError, first_line


def not_its_kind(bundle: Bundle) -> str | None:
    """Why TensorRT cannot run ``bundle`` whatever is installed, or None. Its engines are
    built and fed with one input per stage, and a StyleGAN3 synthesis also takes its input
    transform: asked before TensorRT is, so the ladder and build-engines say this reason
    rather than a missing TensorRT or a failed build."""
    if extra_inputs(bundle, 0):
        return (
            "its engines take one input per stage; this bundle's synthesis also takes "
            "an input transform (StyleGAN3): ONNX Runtime runs it"
        )
    return None


def import_tensorrt() -> ModuleType:
    """The ``tensorrt`` module, or GpuUnavailable saying it is missing or cannot load.

    "Not installed" and "installed but broken" need different fixes, and the ImportError alone
    does not tell them apart (its ``name`` is "tensorrt" in both cases when the package's own
    import of its libraries fails), so whether the module exists at all is asked first.
    """
    if importlib.util.find_spec("tensorrt") is None:
        raise GpuUnavailable(f"TensorRT is not installed ({INSTALL_HINT})")
    try:
        import tensorrt
    except (ImportError, OSError) as exc:  # its shared libraries are missing or do not match
        raise GpuUnavailable(
            f"TensorRT is installed but cannot be loaded: {first_line(exc)} (its libraries come "
            f"with tensorrt-cu12/-cu13 from NVIDIA's index, not from PyPI; {INSTALL_HINT})"
        ) from None
    return tensorrt


def make_runtime(trt: ModuleType, logger: Any) -> Any:
    """``trt.Runtime(logger)``, or GpuUnavailable in one line where TensorRT cannot start."""
    return _started(trt, trt.Runtime, logger)


def make_builder(trt: ModuleType, logger: Any) -> Any:
    """``trt.Builder(logger)``, or GpuUnavailable in one line where TensorRT cannot start."""
    return _started(trt, trt.Builder, logger)


def _started(trt: ModuleType, factory: Any, logger: Any) -> Any:
    """TensorRT's objects start CUDA themselves; when that fails (its CUDA newer than the
    driver, say) pybind11 raises "TypeError: factory function returned nullptr", which says
    nothing to a technician: this says what failed and what usually causes it."""
    try:
        made = factory(logger)
    except TypeError as exc:
        made, why = None, first_line(exc)
    else:
        why = "it returned nothing"
    if made is None:
        raise GpuUnavailable(
            f"TensorRT {trt.__version__} could not start on this GPU ({why}; its log above says "
            f"more): usually a TensorRT built for a newer CUDA than the NVIDIA driver "
            f"({driver_version()}) supports; see docs/gpu.md"
        )
    return made


class TensorRTStage(LoadedStage):
    """One engine with its execution context, device input and output buffers for its
    largest batch, and a page-locked host copy of its output."""

    def __init__(self, trt: ModuleType, engine: Any, stream: Stream, spec: StageSpec) -> None:
        self.name = spec.name
        self.engine = engine
        self.context = engine.create_execution_context()
        if self.context is None:  # TensorRT could not get the GPU memory the context needs
            raise RuntimeError(f"{spec.path}: TensorRT could not create an execution context")
        self._input, self._output = _single_io(trt, engine, spec.path)
        self.inputs = (_info(engine, self._input),)
        self.outputs = (_info(engine, self._output),)
        max_shape = tuple(engine.get_tensor_profile_shape(self._input, 0)[2])
        #: The largest batch the engine's profile accepts; larger batches run in chunks.
        self.max_batch: int = max_shape[0]
        self._input_item: tuple[int, ...] = max_shape[1:]
        output_item = tuple(engine.get_tensor_shape(self._output))[1:]
        if any(size < 0 for size in output_item):
            raise UserError(f"{spec.path}: only the batch axis of output {self._output!r} may vary")
        self._stream = stream
        self._owned: list[DeviceBuffer | PinnedBuffer] = []
        try:
            self.input_buffer = self._own(DeviceBuffer(self._bytes(self._input_item)))
            self.output_buffer = self._own(DeviceBuffer(self._bytes(output_item)))
            self.host_output = self._own(PinnedBuffer((self.max_batch, *output_item)))
        except BaseException:
            self.close()
            raise

    def run(self, batch: np.ndarray, extra: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        if extra:
            raise UserError(f"stage {self.name!r}: the TensorRT path feeds one input per stage")
        output = _run_on_device((self,), self._stream, batch)
        # One chunk comes back as a view of the pinned buffer, which the next run overwrites.
        return output.copy() if len(batch) <= self.max_batch else output

    def enqueue(self, count: int, input_ptr: int) -> None:
        """Queue one run of ``count`` items read from device address ``input_ptr`` into this
        stage's output buffer."""
        context = self.context
        if not context.set_input_shape(self._input, (count, *self._input_item)):
            raise RuntimeError(f"stage {self.name!r}: TensorRT refused a batch of {count}")
        if not (
            context.set_tensor_address(self._input, input_ptr)
            and context.set_tensor_address(self._output, self.output_buffer.ptr)
        ):
            raise RuntimeError(f"stage {self.name!r}: TensorRT refused a tensor address")
        if not context.execute_async_v3(self._stream.handle):
            raise RuntimeError(f"stage {self.name!r}: TensorRT could not queue a run")

    def close(self) -> None:
        """Free the device and pinned memory and drop the context before its engine."""
        for buffer in self._owned:
            buffer.free()
        self._owned.clear()
        self.context = None
        self.engine = None

    def _own(self, buffer: Any) -> Any:
        self._owned.append(buffer)
        return buffer

    def _bytes(self, item_shape: tuple[int, ...]) -> int:
        return self.max_batch * int(np.prod(item_shape)) * FLOAT32_BYTES


class TensorRTChain(DeviceChain):
    """Stages run back to back on the GPU, stage k+1 reading stage k's output buffer.

    Why: at 1024 px a frame is 12 MiB of float32 each way over PCIe, which costs more than
    the small early stages themselves; chained, a batch crosses to the device once and back
    once. Everything is queued on one stream and waited for once, so the worker thread sleeps
    on the stream while the display thread presents the previous frame.
    """

    def __init__(self, stages: Sequence[TensorRTStage], stream: Stream) -> None:
        self.stages = tuple(stages)
        self._stream = stream
        #: How many leading stages link up: each output shape is the next input shape.
        self.linked = 1
        for before, after in zip(self.stages, self.stages[1:], strict=False):
            if before.outputs[0].shape[1:] != after.inputs[0].shape[1:]:
                break
            self.linked += 1

    def run(
        self, batch: np.ndarray, count: int, extra: Mapping[str, np.ndarray] | None = None
    ) -> np.ndarray:
        if extra:
            raise UserError("the TensorRT chain feeds one input per stage")
        if not 1 <= count <= self.linked:
            raise ValueError(f"this chain runs 1 to {self.linked} stages, not {count}")
        return _run_on_device(self.stages[:count], self._stream, batch)

    def run_into(self, batch: np.ndarray, count: int, target: int) -> None:
        """Run the first ``count`` stages on one item and copy the last output on the GPU to
        device address ``target``, never to the host; returns when the copy is done. For
        frames drawn from GPU memory (installation.engine.gpu.device_frames)."""
        if len(batch) != 1 or not 1 <= count <= self.linked:
            raise ValueError(f"run_into takes one item through 1 to {self.linked} stages")
        last = self.stages[count - 1]
        _enqueue(self.stages[:count], self._stream, np.ascontiguousarray(batch, np.float32))
        self._stream.within_device(
            target, last.output_buffer, last.output_buffer.nbytes // last.max_batch
        )
        self._stream.synchronize()


def _run_on_device(
    stages: Sequence[TensorRTStage], stream: Stream, batch: np.ndarray
) -> np.ndarray:
    """Run ``stages`` back to back on one batch, in chunks the smallest profile takes.

    Returns the last stage's output: a view of its pinned buffer when one chunk was enough
    (valid until the next run), else a new array.
    """
    batch = np.ascontiguousarray(batch, dtype=np.float32)
    last = stages[-1]
    starts = range(0, len(batch), min(stage.max_batch for stage in stages))
    parts = []
    for start in starts:
        chunk = batch[start : start + starts.step]
        _enqueue(stages, stream, chunk)
        host = last.host_output.array[: len(chunk)]
        stream.to_host(host, last.output_buffer)
        stream.synchronize()
        # The next chunk overwrites the pinned buffer.
        parts.append(host if len(starts) == 1 else host.copy())
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _enqueue(stages: Sequence[TensorRTStage], stream: Stream, chunk: np.ndarray) -> None:
    """Queue one chunk (contiguous float32, within every profile) through ``stages``, each
    reading the output buffer of the one before."""
    stream.to_device(stages[0].input_buffer, chunk)
    source = stages[0].input_buffer.ptr
    for stage in stages:
        stage.enqueue(len(chunk), source)
        source = stage.output_buffer.ptr


class TensorRTBackend(Backend):
    """TensorRT engines from an EngineCache for the stages of one bundle, on one GPU."""

    name = "tensorrt"

    def __init__(self, bundle: Bundle, cache: EngineCache) -> None:
        self.trt = import_tensorrt()
        # The first GPU: CUDA's current device is per thread, and the worker thread that runs
        # the stages never selects one, so it is device 0 there too.
        self.gpu = require_gpu(0)
        select_device(0)
        self.bundle = bundle
        self.cache = cache
        self.logger = self.trt.Logger(self.trt.Logger.WARNING)
        self.runtime = make_runtime(self.trt, self.logger)
        self.stream = Stream()
        self._stages: list[TensorRTStage] = []

    def load(self, path: Path) -> TensorRTStage:
        spec = self._spec(path)
        keys = wanted_keys(spec, self.gpu, self.trt.__version__)
        engine_bytes, _key = self.cache.load(spec.name, keys)
        return self.stage(spec, engine_bytes)

    def stage(self, spec: StageSpec, engine_bytes: bytes) -> TensorRTStage:
        """A runnable stage from a serialized engine (the builder checks new ones this way)."""
        engine = self.runtime.deserialize_cuda_engine(engine_bytes)
        if engine is None:
            raise StaleEngine(spec.name, self.cache.folder, "TensorRT could not deserialize it")
        stage = TensorRTStage(self.trt, engine, self.stream, spec)
        self._stages.append(stage)
        return stage

    def chain(self, models: Sequence[LoadedStage]) -> TensorRTChain | None:
        stages = [model for model in models if isinstance(model, TensorRTStage)]
        if not stages or len(stages) != len(models):
            return None
        return TensorRTChain(stages, self.stream)

    def close(self) -> None:
        """Free every stage's memory and the stream; the backend is unusable afterwards."""
        for stage in self._stages:
            stage.close()
        self._stages.clear()
        self.stream.free()

    def _spec(self, path: Path) -> StageSpec:
        for spec in self.bundle.stages:
            if spec.path.resolve() == path.resolve():
                return spec
        raise UserError(f"{path}: not a stage of bundle {self.bundle.name!r} ({self.bundle.path})")


def _single_io(trt: ModuleType, engine: Any, path: Path) -> tuple[str, str]:
    """The names of the engine's one input and one output, both float32."""
    names = [engine.get_tensor_name(index) for index in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
    if len(inputs) != 1 or len(outputs) != 1:
        raise UserError(
            f"{path}: its TensorRT engine has {len(inputs)} inputs and {len(outputs)} outputs, "
            "a stage has one of each"
        )
    for name in names:
        if engine.get_tensor_dtype(name) != trt.DataType.FLOAT:
            raise UserError(f"{path}: tensor {name!r} of its TensorRT engine is not float32")
    return inputs[0], outputs[0]


def _info(engine: Any, name: str) -> TensorInfo:
    shape = tuple(None if size < 0 else size for size in engine.get_tensor_shape(name))
    return TensorInfo(name, shape, "float32")
