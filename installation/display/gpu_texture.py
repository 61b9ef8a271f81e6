"""Frames that stay in GPU memory from TensorRT to the screen: the GL presenter's side,
CUDA-OpenGL interop through cuda-python.

The inference worker leaves each frame's picture in a slot of a ring on the GPU
(``installation.engine.gpu.device_frames``). On the display's thread (the GL context's own),
``GlInterop`` copies the slot device to device into a float texture registered with CUDA
(``cudaGraphicsGLRegisterImage``, write-discard): R32F, one texel per value, rows as the
stage stored them (NCHW: W x C*H, its planes stacked; NHWC: W*C x H). A fragment shader then
does the host's conversion (``convention.to_unit`` and ``to_rgb8``: layout, value range,
rounding to 8 bits) into the presenter's frame texture. No CUDA kernel is compiled or
shipped: CUDA only copies, and GL does the arithmetic it does anyway. Registration and
mapping happen on the GL thread, where the context is current and GL's own use of the
texture is ordered with CUDA's.

cuda-python and moderngl are imported inside functions, so that a machine without them can
still import the display.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from installation.display.shaders import VERTEX
from installation.engine.gpu.cuda import GpuUnavailable, _call, runtime
from installation.engine.gpu.device_frames import (
    FLOAT32_BYTES,
    DeviceImage,
    DeviceRing,
    FramePathLog,
    frame_path,
    ring_for,
    staging_size,
)

if TYPE_CHECKING:
    import moderngl

    from installation.display.gl_picture import TextureFill
    from installation.engine.pipeline import Pipeline

#: ``GL_TEXTURE_2D``, the target a frame's staging texture is registered as.
GL_TEXTURE_2D = 0x0DE1
#: The most CUDA devices one GL context is asked about (SLI pairs at most, in practice).
MAX_GL_DEVICES = 8


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
