"""Frames that stay in GPU memory from TensorRT to the screen: the inference worker's side.

On the TensorRT path a frame is float32 in GPU memory when its last stage ends. The host path
copies it to the host, converts it to 8 bits there and uploads it again: two trips over PCIe
a frame (12 MiB each way at 1024 px) and a core busy converting. Here it stays on the GPU:
on the inference worker, the chain's last output is copied on the device into a slot of a
``DeviceRing`` (TensorRT overwrites its output buffer at the next run, and frames wait in
the queue for their time); the frame carries a ``DeviceImage`` naming the slot. The GL
presenter draws it from there (``installation.display.gpu_texture``).

It is used only where it can work (``frame_path``): the TensorRT rung, the GL presenter, and a
GL context that runs on the CUDA device TensorRT uses. Anywhere else frames take the host
path, which ONNX Runtime always uses, and ``FramePathLog`` says which path and why, once.

cuda-python is imported inside functions, as in the rest of ``engine.gpu``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from installation.engine.gpu.cuda import FLOAT32_BYTES, DeviceBuffer

if TYPE_CHECKING:
    from installation.engine.pipeline import Pipeline

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FramePath:
    """Whether frames go from TensorRT to the presenter's texture on the GPU, and why."""

    interop: bool
    reason: str


def frame_path(
    backend: str, presenter: str, gl_devices: Sequence[int] | None, device: int = 0
) -> FramePath:
    """The path for frames made by ``backend`` and drawn by ``presenter`` ("gl" or "sdl"),
    where the GL context runs on CUDA devices ``gl_devices`` (None: CUDA cannot reach it,
    see ``installation.display.gpu_texture.gl_devices``) and TensorRT on ``device``."""
    host = "frames cross the host: "
    if backend != "tensorrt":
        return FramePath(False, f"{host}the {backend} backend hands them back there")
    if presenter != "gl":
        return FramePath(False, f"{host}the {presenter} presenter uploads them from there")
    if gl_devices is None:
        return FramePath(False, f"{host}CUDA cannot reach the GL context (not NVIDIA's GL)")
    if device not in gl_devices:
        on = ", ".join(str(number) for number in gl_devices) or "none"
        return FramePath(
            False, f"{host}the screen's GL runs on CUDA device {on}, TensorRT on {device}"
        )
    return FramePath(True, "frames go from TensorRT into the presenter's texture on the GPU")


class FramePathLog:
    """Says which path frames take when it changes (the ladder may leave TensorRT in the
    middle of a show), not once a frame."""

    def __init__(self) -> None:
        self._last: FramePath | None = None

    def note(self, path: FramePath) -> None:
        if path != self._last:
            log.info("%s", path.reason)
            self._last = path


def staging_size(item: tuple[int, int, int], layout: str) -> tuple[int, int]:
    """Width and height, in R32F texels, of one output ``item`` (C, H, W for "NCHW", else
    H, W, C) copied as it lies in memory, a row of texels per stored row."""
    if layout == "NCHW":
        channels, height, width = item
        return width, channels * height
    height, width, channels = item
    return width * channels, height


@dataclass(frozen=True)
class DeviceImage:
    """One frame's picture in GPU memory as its last stage wrote it: float32 ``item`` (C, H,
    W or H, W, C by ``layout``) at device address ``ptr``, values in ``value_range``."""

    ptr: int
    item: tuple[int, int, int]
    layout: str
    value_range: tuple[float, float]

    @property
    def size(self) -> tuple[int, int]:
        """The picture's width and height."""
        if self.layout == "NCHW":
            return self.item[2], self.item[1]
        return self.item[1], self.item[0]


def item_bytes(item: Sequence[int | None]) -> int:
    """The bytes of one float32 output item of shape ``item``."""
    total = FLOAT32_BYTES
    for size in item:
        if size is None:
            raise ValueError(f"an output of shape {item} has no fixed size")
        total *= size
    return total


class DeviceRing:
    """``slots`` device buffers of ``nbytes`` (the largest frame the bundle makes), reused in
    turn, for frames that wait on the GPU: at least the frame queue's capacity plus the two
    the display may be blending, so a slot is never refilled while its frame can be drawn.
    Never reallocated while the show runs, so no frame can point at freed memory."""

    def __init__(self, slots: int, nbytes: int) -> None:
        self.slots = slots
        self.nbytes = nbytes
        self._buffers: list[DeviceBuffer] = []
        self._next = 0

    def next_slot(self) -> DeviceBuffer:
        index = self._next
        self._next = (index + 1) % self.slots
        if index == len(self._buffers):
            self._buffers.append(DeviceBuffer(self.nbytes))
        return self._buffers[index]

    def free(self) -> None:
        for buffer in self._buffers:
            buffer.free()
        self._buffers.clear()


def ring_for(pipeline: Pipeline, queue_capacity: int) -> DeviceRing:
    """The ring for frames of a TensorRT ``pipeline`` (fixed output shapes) waiting in a queue
    of ``queue_capacity``: a slot per queued frame and for the two on screen, each the size
    of the largest stage output."""
    largest = max(item_bytes(stage.model.outputs[0].shape[1:]) for stage in pipeline.stages)
    return DeviceRing(queue_capacity + 2, largest)


def paint_on_device(
    pipeline: Pipeline, latent: Any, stages: int | None, ring: DeviceRing
) -> DeviceImage | None:
    """One latent through the TensorRT chain into the next slot of ``ring``, or None where the
    frame must take the host path (no TensorRT chain, a stage met on the host, an input the
    chain cannot feed)."""
    from installation.engine.gpu.tensorrt_backend import TensorRTChain

    chain = pipeline.chain
    count = min(stages or len(pipeline.stages), len(pipeline.stages))
    latents = latent.reshape(1, -1)
    if not isinstance(chain, TensorRTChain) or count > pipeline.chained:
        return None
    if pipeline.first_extra(latents):
        return None
    last = pipeline.stages[count - 1].spec
    channels, height, width = chain.stages[count - 1].outputs[0].shape[1:]
    item = (int(channels or 0), int(height or 0), int(width or 0))
    if item_bytes(item) > ring.nbytes:
        raise ValueError(f"a {item} frame does not fit the ring's {ring.nbytes} bytes")
    slot = ring.next_slot()
    chain.run_into(pipeline.first_input(latents), count, slot.ptr)
    return DeviceImage(slot.ptr, item, last.layout, last.range)
