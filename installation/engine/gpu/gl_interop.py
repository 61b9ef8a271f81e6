"""Frames from TensorRT into the GL presenter's texture without crossing the host: CUDA-OpenGL
interop through cuda-python.

On the TensorRT path a frame is float32 in GPU memory when its last stage ends. The host path
copies it to the host, converts it to 8 bits there and uploads it again: two trips over PCIe
a frame (12 MiB each way at 1024 px) and a core busy converting. Here it stays on the GPU:

1. On the inference worker, the chain's last output is copied on the device into a slot of a
   ``DeviceRing`` (TensorRT overwrites its output buffer at the next run, and frames wait in
   the queue for their time); the frame carries a ``DeviceImage`` naming the slot.
2. On the display's thread (the GL context's own), ``GlInterop`` copies the slot device to
   device into a float texture registered with CUDA (``cudaGraphicsGLRegisterImage``, write-
   discard): R32F, one texel per value, rows as the stage stored them (NCHW: W x C*H, its
   planes stacked; NHWC: W*C x H). A fragment shader then does the host's conversion
   (``convention.to_unit`` and ``to_rgb8``: layout, value range, rounding to 8 bits) into the
   presenter's frame texture. No CUDA kernel is compiled or shipped: CUDA only copies, and GL
   does the arithmetic it does anyway. Registration and mapping happen on the GL thread,
   where the context is current and GL's own use of the texture is ordered with CUDA's.

It is used only where it can work (``frame_path``): the TensorRT rung, the GL presenter, and a
GL context that runs on the CUDA device TensorRT uses. Anywhere else frames take the host
path, which ONNX Runtime always uses, and ``FramePathLog`` says which path and why, once.

cuda-python and moderngl are imported inside functions, as in the rest of ``engine.gpu``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from installation.engine.gpu.cuda import DeviceBuffer, GpuUnavailable, _call, runtime

if TYPE_CHECKING:
    import moderngl

    from installation.display.gl_picture import TextureFill
    from installation.engine.pipeline import Pipeline

log = logging.getLogger(__name__)

#: ``GL_TEXTURE_2D``, the target a frame's staging texture is registered as.
GL_TEXTURE_2D = 0x0DE1
#: The most CUDA devices one GL context is asked about (SLI pairs at most, in practice).
MAX_GL_DEVICES = 8
FLOAT32_BYTES = 4


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
    see ``gl_devices``) and TensorRT on ``device``."""
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


def gl_devices() -> tuple[int, ...] | None:
    """The CUDA devices behind the GL context current on this thread, or None where CUDA
    cannot reach it: no cuda-python or driver, or a GL that is not NVIDIA's (Mesa)."""
    try:
        cudart = runtime()
    except GpuUnavailable:
        return None
    every = cudart.cudaGLDeviceList.cudaGLDeviceListAll
    error, count, devices = cudart.cudaGLGetDevices(MAX_GL_DEVICES, every)
    if error != cudart.cudaError_t.cudaSuccess:
        return None
    return tuple(devices[:count])


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


_CONVERT = """
#version 330
uniform sampler2D staged;
uniform bool planar;
uniform int height;
uniform vec2 value_range;
out vec4 colour;
void main() {
    ivec2 at = ivec2(gl_FragCoord.xy);
    vec3 v;
    for (int c = 0; c < 3; ++c) {
        ivec2 texel = planar ? ivec2(at.x, at.y + c * height) : ivec2(at.x * 3 + c, at.y);
        v[c] = texelFetch(staged, texel, 0).r;
    }
    vec3 unit = (v - value_range.x) / (value_range.y - value_range.x);
    // As the host's to_rgb8: the nearest of 256 levels, clipped.
    colour = vec4(floor(clamp(unit, 0.0, 1.0) * 255.0 + 0.5) / 255.0, 1.0);
}
"""


class ConvertPass:
    """The GL half: a staged R32F texture (``staging_size``) to an 8-bit RGB(A) frame texture,
    row for row, by the stage's layout and value range, rounded as the host path rounds."""

    def __init__(self, ctx: moderngl.Context) -> None:
        from installation.display.shaders import VERTEX

        self._ctx = ctx
        self._program = ctx.program(vertex_shader=VERTEX, fragment_shader=_CONVERT)
        self._pass = ctx.vertex_array(self._program, [])

    def draw(self, staged: moderngl.Texture, image: DeviceImage, texture: moderngl.Texture) -> None:
        framebuffer = self._ctx.framebuffer(color_attachments=[texture])
        try:
            framebuffer.use()
            staged.use(0)
            self._program["staged"] = 0
            self._program["planar"] = image.layout == "NCHW"
            self._program["height"] = image.size[1]
            self._program["value_range"] = image.value_range
            self._pass.render(vertices=3)
        finally:
            framebuffer.release()

    def release(self) -> None:
        self._pass.release()
        self._program.release()


class GlInterop:
    """The display thread's side: staging textures registered with CUDA, one per frame size,
    filled from a ``DeviceImage`` and converted into the presenter's frame texture. Made,
    used and closed on the thread whose GL context ``ctx`` is current."""

    def __init__(self, ctx: moderngl.Context, stream: int = 0) -> None:
        self._ctx = ctx
        self._stream = stream
        self._convert = ConvertPass(ctx)
        self._staging: dict[tuple[int, int], tuple[moderngl.Texture, Any]] = {}

    def fill_for(self, image: DeviceImage) -> TextureFill:
        """The fill (``FrameTextures.texture_for``) that draws ``image`` into a frame texture
        of ``image.size`` with 4 components (RGBA8 is colour-renderable on every GL 3.3)."""

        def fill(texture: moderngl.Texture) -> None:
            staged, resource = self._staged(staging_size(image.item, image.layout))
            self._copy(resource, image.ptr, staged.size[0] * FLOAT32_BYTES, staged.size[1])
            self._convert.draw(staged, image, texture)

        return fill

    def _copy(self, resource: Any, source: int, row_bytes: int, rows: int) -> None:
        """``rows`` rows of ``row_bytes`` from device address ``source`` into the registered
        texture ``resource``: map, copy device to device, unmap (which orders the copy before
        GL's next use of the texture)."""
        cudart = runtime()
        _call(cudart.cudaGraphicsMapResources, 1, resource, self._stream)
        try:
            array = _call(cudart.cudaGraphicsSubResourceGetMappedArray, resource, 0, 0)
            kind = cudart.cudaMemcpyKind.cudaMemcpyDeviceToDevice
            copy = cudart.cudaMemcpy2DToArrayAsync
            _call(copy, array, 0, 0, source, row_bytes, row_bytes, rows, kind, self._stream)
        finally:
            _call(cudart.cudaGraphicsUnmapResources, 1, resource, self._stream)

    def _staged(self, size: tuple[int, int]) -> tuple[moderngl.Texture, Any]:
        found = self._staging.get(size)
        if found is None:
            cudart = runtime()
            texture = staging_texture(self._ctx, size)
            flags = cudart.cudaGraphicsRegisterFlags.cudaGraphicsRegisterFlagsWriteDiscard
            register = cudart.cudaGraphicsGLRegisterImage
            resource = _call(register, texture.glo, GL_TEXTURE_2D, int(flags))
            found = self._staging[size] = (texture, resource)
        return found

    def close(self) -> None:
        """Unregister and release the staging textures; the GL context must still be current."""
        cudart = runtime()
        for texture, resource in self._staging.values():
            _call(cudart.cudaGraphicsUnregisterResource, resource)
            texture.release()
        self._staging.clear()
        self._convert.release()


@dataclass
class GlOffer:
    """What a GL presenter offers frames that stay on the GPU: the CUDA devices its context
    runs on (None: CUDA cannot reach it) and, where TensorRT's device is one of them, the
    interop that draws such frames. Opened and closed with the presenter's context."""

    devices: tuple[int, ...] | None
    interop: GlInterop | None

    @classmethod
    def open(cls, ctx: moderngl.Context, device: int = 0) -> GlOffer:
        devices = gl_devices()
        usable = devices is not None and device in devices
        return cls(devices, GlInterop(ctx) if usable else None)

    def close(self) -> None:
        if self.interop is not None:
            self.interop.close()
            self.interop = None


class GpuFrames:
    """The player's side: for each inference worker it starts (again after the ladder moves),
    the ring its frames wait in on the GPU, or None for the host path; the path is logged
    when it changes. ``offer`` is the display's (None: it takes host frames only)."""

    def __init__(self, offer: GlOffer | None, queue_capacity: int) -> None:
        self._offer = offer
        self._capacity = queue_capacity
        self._ring: DeviceRing | None = None
        self._log = FramePathLog()

    def ring(self, backend: str, pipeline: Pipeline) -> DeviceRing | None:
        offer = self._offer
        if offer is None:
            path = frame_path(backend, "sdl", None)
        else:
            path = frame_path(backend, "gl", offer.devices)
        self._log.note(path)
        if not path.interop:
            return None
        if self._ring is None:
            self._ring = ring_for(pipeline, self._capacity)
        return self._ring

    def free(self) -> None:
        """Give the ring's memory back, once no worker can write it."""
        if self._ring is not None:
            self._ring.free()
            self._ring = None


def staging_texture(ctx: moderngl.Context, size: tuple[int, int]) -> moderngl.Texture:
    """An R32F texture of ``size`` read texel by texel."""
    import moderngl

    texture = ctx.texture(size, 1, dtype="f4")
    texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
    return texture
