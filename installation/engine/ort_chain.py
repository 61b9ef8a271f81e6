"""ONNX Runtime stages chained with IO binding: the data stays where the provider runs.

Without binding, every ``session.run`` takes its input from the host and gives its output
back to the host; on the CUDA provider a 1024 px frame then crosses PCIe twice per stage. Here
each stage's output is preallocated as an OrtValue on the provider's device and bound as the
next stage's input, the first input is copied to the device once, and only the last output
is copied back once. The same code runs on the CPU provider (the "device" is then host
memory), so CI tests it.

Buffers are made per batch size the first time it runs (batches larger than ``MAX_BATCH``
run in chunks of it, so there are at most ``MAX_BATCH`` sets) and kept at fixed addresses,
which is what a CUDA graph needs: each set gets its own ``gpu_graph_id``. A graph whose
capture fails (a node ONNX Runtime placed on the CPU, an operator that cannot be recorded)
is reported once and the chain runs on without graphs.

The output comes back with ``OrtValue.numpy()``: on the CPU a view of the last buffer (valid
until the next run, as ``DeviceChain.run`` says), from the GPU a copy into ordinary host
memory: ONNX Runtime's Python API offers page-locked ("pinned") host memory only through the
``memory_info`` of a plugin execution provider's device (``OrtEpDevice``), which the CUDA
provider built into ``onnxruntime-gpu`` does not list, so one pageable copy per run is what is
reachable.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import onnxruntime as ort

from installation.engine.model import DeviceChain
from installation.engine.ort_cuda import graph_run_options
from installation.engine.ort_stage import OnnxRuntimeStage
from installation.errors import first_line

log = logging.getLogger(__name__)

#: The largest batch one set of buffers holds: the worker runs 1, a crossfade 2, the bench 8.
MAX_BATCH = 8


class OrtChain(DeviceChain):
    """Stages of one ONNX Runtime backend run back to back on ``device`` ("cuda" or "cpu")."""

    feeds_extra = True

    def __init__(self, stages: Sequence[OnnxRuntimeStage], device: str, device_id: int) -> None:
        self.stages = tuple(stages)
        self.device = device
        self.device_id = device_id
        #: How many leading stages link up: each output shape is the next input shape. The
        #: stages after them (a refinement exported for any picture size) take the linked
        #: stages' output from the host, as it is: the pipeline asks for a chain only where
        #: each raw output is the next stage's input.
        self.linked = linked_stages(self.stages)
        #: Models whose batch axis is fixed (at 1) take their batches one item at a time.
        self.max_batch = min(_batch_limit(stage) for stage in self.stages)
        #: Whether runs may record and replay CUDA graphs; off for good once a capture failed.
        self.graphs = any(stage.graphs for stage in self.stages)
        self._sets: dict[tuple[object, ...], _Buffers] = {}

    def run(
        self, batch: np.ndarray, count: int, extra: Mapping[str, np.ndarray] | None = None
    ) -> np.ndarray:
        if not 1 <= count <= len(self.stages):
            raise ValueError(f"this chain runs 1 to {len(self.stages)} stages, not {count}")
        if any(stage.session is None for stage in self.stages[:count]):
            raise RuntimeError("this model was closed")
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        extra = {name: np.ascontiguousarray(value) for name, value in (extra or {}).items()}
        linked = min(count, self.linked)
        starts = range(0, len(batch), self.max_batch)
        parts = []
        for start in starts:
            end = start + self.max_batch
            chunk = {name: value[start:end] for name, value in extra.items()}
            output = self._run_set(batch[start:end], linked, chunk)
            for stage in self.stages[linked:count]:
                output = stage.run(output)
            # On the CPU the output is a view of the set's buffer, which the next chunk of the
            # same size fills again: kept chunks are copied.
            parts.append(output if len(starts) == 1 else np.array(output))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    @property
    def held(self) -> tuple[int, ...]:
        """The batch sizes it holds buffers for, in the order they were first run."""
        return tuple(buffers.size for buffers in self._sets.values())

    def close(self) -> None:
        """Drop every buffer set (their device memory) and binding."""
        for buffers in self._sets.values():
            buffers.clear()
        self._sets.clear()

    def _run_set(
        self, batch: np.ndarray, count: int, extra: Mapping[str, np.ndarray]
    ) -> np.ndarray:
        buffers = self._buffers(len(batch), extra)
        buffers.input.update_inplace(batch)
        for name, value in extra.items():
            buffers.extra[name].update_inplace(value)
        for index in range(count):
            self._run_stage(buffers, index)
        return buffers.outputs[count - 1].numpy()

    def _run_stage(self, buffers: _Buffers, index: int) -> None:
        session = self.stages[index].session
        assert session is not None  # run checked
        binding, plain = buffers.bindings[index], self.stages[index].run_options
        if not (self.graphs and self.stages[index].graphs):
            session.run_with_iobinding(binding, plain)
            return
        try:
            session.run_with_iobinding(binding, buffers.graph_options)
        except Exception as exc:
            log.warning(
                "CUDA graphs off from now on: stage %d failed in a run with one: %s",
                index + 1,
                first_line(exc),
            )
            self.graphs = False
            session.run_with_iobinding(binding, plain)

    def _buffers(self, size: int, extra: Mapping[str, np.ndarray]) -> _Buffers:
        key = (size, *sorted((name, value.shape, value.dtype.str) for name, value in extra.items()))
        if key not in self._sets:
            # Graph ids are never reused: a graph recorded for freed buffers is never replayed.
            graph = len(self._sets) + 1
            self._sets[key] = _Buffers(self, size, extra, graph)
        return self._sets[key]


class _Buffers:
    """The device buffers, bindings and graph of one batch size: the first input
    (and any extra inputs of the first stage), every stage's output."""

    def __init__(
        self, chain: OrtChain, size: int, extra: Mapping[str, np.ndarray], graph: int
    ) -> None:
        stages = chain.stages[: chain.linked]
        self.size = size
        self.input = _device_value(chain, (size, *_item(stages[0].inputs[0].shape)), np.float32)
        self.extra = {
            name: _device_value(chain, value.shape, value.dtype) for name, value in extra.items()
        }
        self.outputs: list[ort.OrtValue] = []
        self.bindings: list[ort.IOBinding] = []
        source = self.input
        for index, stage in enumerate(stages):
            assert stage.session is not None
            output = _device_value(chain, (size, *_item(stage.outputs[0].shape)), np.float32)
            binding = stage.session.io_binding()
            binding.bind_ortvalue_input(stage.inputs[0].name, source)
            for name, value in self.extra.items() if index == 0 else ():
                binding.bind_ortvalue_input(name, value)
            binding.bind_ortvalue_output(stage.outputs[0].name, output)
            self.outputs.append(output)
            self.bindings.append(binding)
            source = output
        #: Replays (or first records) this set's graph on the stages that record graphs.
        self.graph_options = graph_run_options(graph)

    def clear(self) -> None:
        for binding in self.bindings:
            binding.clear_binding_inputs()
            binding.clear_binding_outputs()
        self.bindings.clear()
        self.outputs.clear()
        self.extra.clear()


def linked_stages(stages: Sequence[OnnxRuntimeStage]) -> int:
    """How many leading stages can be chained: each output is the next input as it is
    (same per-item shape), and every shape but the batch axis is fixed, so that buffers
    can be made ahead."""
    if not _fixed(stages[0].inputs[0].shape):
        return 0
    count = 0
    for index, stage in enumerate(stages):
        if not _fixed(stage.outputs[0].shape):
            break
        count += 1
        after = stages[index + 1] if index + 1 < len(stages) else None
        if after is None or _item(after.inputs[0].shape) != _item(stage.outputs[0].shape):
            break
    return count


def _device_value(chain: OrtChain, shape: Sequence[int], dtype: object) -> ort.OrtValue:
    return ort.OrtValue.ortvalue_from_shape_and_type(
        list(shape), dtype, chain.device, chain.device_id
    )


def _item(shape: Sequence[int | str | None]) -> tuple[int | str | None, ...]:
    return tuple(shape[1:])


def _fixed(shape: Sequence[int | str | None]) -> bool:
    return all(isinstance(size, int) for size in shape[1:])


def _batch_limit(stage: OnnxRuntimeStage) -> int:
    batch = stage.inputs[0].shape[0]
    return batch if isinstance(batch, int) else MAX_BATCH
