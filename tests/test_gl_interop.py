"""Frames from TensorRT into the presenter's texture (CUDA-OpenGL interop). Here: when the
interop path is taken and why not, said once; the staging geometry; and the GL pass that
converts a staged stage output, run on Mesa's EGL and held to the host path's conversion.
With an NVIDIA GPU, TensorRT and NVIDIA's EGL (else skipped, saying why): the texture filled
on the device equals the frame the host path makes."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import DEFAULT_BUNDLE, gl_context

from installation.display.gpu_texture import ConvertPass, gl_devices, staging_texture
from installation.engine.convention import to_rgb8, to_unit
from installation.engine.gpu.device_frames import (
    DeviceImage,
    FramePath,
    FramePathLog,
    frame_path,
    staging_size,
)

moderngl = pytest.importorskip("moderngl")


@pytest.mark.parametrize(
    ("backend", "presenter", "devices", "interop", "why"),
    [
        ("tensorrt", "gl", (0,), True, "into the presenter's texture on the GPU"),
        ("tensorrt", "gl", (0, 1), True, "into the presenter's texture"),
        ("onnxruntime-cuda", "gl", (0,), False, "the onnxruntime-cuda backend hands them"),
        ("onnxruntime-cpu", "gl", None, False, "the onnxruntime-cpu backend"),
        ("tensorrt", "sdl", (0,), False, "the sdl presenter uploads them"),
        ("tensorrt", "gl", None, False, "CUDA cannot reach the GL context"),
        ("tensorrt", "gl", (1,), False, "GL runs on CUDA device 1, TensorRT on 0"),
        ("tensorrt", "gl", (), False, "CUDA device none, TensorRT on 0"),
    ],
)
def test_interop_only_on_tensorrt_with_gl_on_the_same_gpu(
    backend: str, presenter: str, devices: tuple[int, ...] | None, interop: bool, why: str
) -> None:
    path = frame_path(backend, presenter, devices)
    assert path.interop is interop
    assert why in path.reason and "\n" not in path.reason


def test_the_frame_path_is_logged_once_per_change(caplog: pytest.LogCaptureFixture) -> None:
    log = FramePathLog()
    on_gpu = frame_path("tensorrt", "gl", (0,))
    on_host = frame_path("onnxruntime-cuda", "gl", (0,))
    with caplog.at_level(logging.INFO, logger="installation.engine.gpu.device_frames"):
        for path in (on_gpu, on_gpu, on_gpu, on_host, on_host, on_gpu):
            log.note(path)
    assert [record.getMessage() for record in caplog.records] == [
        on_gpu.reason,
        on_host.reason,
        on_gpu.reason,
    ]


def test_without_an_nvidia_driver_cuda_reaches_no_gl_context() -> None:
    cudart = pytest.importorskip("cuda.bindings.runtime")
    error, count = cudart.cudaGetDeviceCount()
    if error == cudart.cudaError_t.cudaSuccess and count:
        pytest.skip("this machine has an NVIDIA GPU")
    assert gl_devices() is None
    assert frame_path("tensorrt", "gl", gl_devices()) == FramePath(
        False, "frames cross the host: CUDA cannot reach the GL context (not NVIDIA's GL)"
    )


def test_staging_keeps_the_stored_rows() -> None:
    assert staging_size((3, 64, 48), "NCHW") == (48, 192)
    assert staging_size((64, 48, 3), "NHWC") == (144, 64)
    assert DeviceImage(0, (3, 64, 48), "NCHW", (-1.0, 1.0)).size == (48, 64)
    assert DeviceImage(0, (64, 48, 3), "NHWC", (0.0, 1.0)).size == (48, 64)


@pytest.mark.parametrize(("layout", "value_range"), [("NCHW", (-1.0, 1.0)), ("NHWC", (0.0, 1.0))])
def test_the_convert_pass_equals_the_host_conversion(
    ctx: moderngl.Context, layout: str, value_range: tuple[float, float]
) -> None:
    """A stage output staged as CUDA would stage it (here written from the host), converted
    by the GL pass: the same 8-bit frame as the host path's, out-of-range values clipped."""
    height, width = 20, 28
    rng = np.random.default_rng(4)
    low, high = value_range
    planes = rng.uniform(low - 0.1, high + 0.1, (1, 3, height, width)).astype(np.float32)
    stored = planes if layout == "NCHW" else np.ascontiguousarray(planes.transpose(0, 2, 3, 1))
    image = DeviceImage(0, stored.shape[1:], layout, value_range)
    staged = staging_texture(ctx, staging_size(image.item, layout))
    staged.write(stored.tobytes())
    frame = ctx.texture(image.size, 4)
    convert = ConvertPass(ctx)
    try:
        convert.draw(staged, image, frame)
        got = np.frombuffer(frame.read(), np.uint8).reshape(height, width, 4)
    finally:
        convert.release()
        staged.release()
        frame.release()
    expected = to_rgb8(to_unit(stored, layout, value_range))[0]
    assert (got[..., 3] == 255).all()
    assert np.abs(got[..., :3].astype(int) - expected).max() <= 1
    assert np.mean(got[..., :3] == expected) > 0.99


@pytest.mark.gpu
def test_the_texture_filled_on_the_gpu_equals_the_host_frame(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from installation.display.gpu_texture import GlInterop
    from installation.engine.backend import CPU, OnnxRuntimeBackend
    from installation.engine.bundle import load_bundle
    from installation.engine.gpu.build import build_engines
    from installation.engine.gpu.cuda import GpuUnavailable, require_gpu
    from installation.engine.gpu.device_frames import paint_on_device, ring_for
    from installation.engine.gpu.engine_cache import EngineCache
    from installation.engine.gpu.tensorrt_backend import TensorRTBackend, import_tensorrt
    from installation.engine.pipeline import Pipeline
    from installation.score.trajectory import keyframe

    try:
        import_tensorrt()
        require_gpu()
    except GpuUnavailable as exc:
        pytest.skip(f"no GPU path: {exc}")
    context = gl_context()
    path = frame_path("tensorrt", "gl", gl_devices())
    if not path.interop:
        context.release()
        pytest.skip(f"{path.reason} ({context.info['GL_RENDERER']})")
    bundle = load_bundle(DEFAULT_BUNDLE)
    cache = EngineCache(tmp_path_factory.mktemp("engines"))
    build_engines(bundle, cache, say=lambda line: None)
    backend = TensorRTBackend(bundle, cache)
    pipeline = Pipeline.load(bundle, backend)
    host = Pipeline.load(bundle, OnnxRuntimeBackend(CPU))
    ring = ring_for(pipeline, 2)
    interop = GlInterop(context)
    try:
        latent = keyframe(3, 0, bundle.latent_size)
        for stages in (1, None):
            image = paint_on_device(pipeline, latent, stages, ring)
            assert image is not None
            frame = context.texture(image.size, 4)
            interop.fill_for(image)(frame)
            width, height = image.size
            got = np.frombuffer(frame.read(), np.uint8).reshape(height, width, 4)[..., :3]
            frame.release()
            on_host = pipeline.run(latent[None], stages)[0]
            assert np.abs(got.astype(int) - on_host).max() <= 1
            assert np.mean(got == on_host) > 0.99
            reference = host.run(latent[None], stages)[0]
            assert np.abs(got.astype(int) - reference).max() <= 3
    finally:
        interop.close()
        ring.free()
        backend.close()
        context.release()


def test_frames_of_onnx_runtime_take_the_host_path() -> None:
    from installation.engine.backend import CPU, OnnxRuntimeBackend
    from installation.engine.bundle import load_bundle
    from installation.engine.gpu.device_frames import DeviceRing, paint_on_device
    from installation.engine.pipeline import Pipeline
    from installation.score.trajectory import keyframe

    bundle = load_bundle(DEFAULT_BUNDLE)
    pipeline = Pipeline.load(bundle, OnnxRuntimeBackend(CPU, threads=1))
    ring = DeviceRing(2, 1)  # never allocates: no frame goes into it
    assert paint_on_device(pipeline, keyframe(1, 0, bundle.latent_size), None, ring) is None


def test_each_worker_gets_a_ring_only_on_the_interop_path(
    ctx: moderngl.Context, caplog: pytest.LogCaptureFixture
) -> None:
    """What the player asks each time it starts an inference worker (again after the ladder
    moves): the path follows the backend, the display's offer and its GL's devices."""
    from installation.display.gpu_texture import GlOffer, GpuFrames
    from installation.engine.backend import CPU, OnnxRuntimeBackend
    from installation.engine.bundle import load_bundle
    from installation.engine.pipeline import Pipeline

    pipeline = Pipeline.load(load_bundle(DEFAULT_BUNDLE), OnnxRuntimeBackend(CPU, threads=1))
    mesa = GlOffer.open(ctx)  # Mesa's GL: CUDA cannot reach it
    assert mesa == GlOffer(None, None)
    with caplog.at_level(logging.INFO, logger="installation.engine.gpu.device_frames"):
        assert GpuFrames(None, 8).ring("tensorrt", pipeline) is None
        assert GpuFrames(mesa, 8).ring("tensorrt", pipeline) is None
        nvidia = GpuFrames(GlOffer((0,), None), 8)
        assert nvidia.ring("onnxruntime-cuda", pipeline) is None
        ring = nvidia.ring("tensorrt", pipeline)
        assert ring is not None and nvidia.ring("tensorrt", pipeline) is ring
        assert (ring.slots, ring.nbytes) == (10, 3 * 256 * 256 * 4)  # not allocated until used
        nvidia.free()
    assert [record.getMessage().split(": ", 1)[-1] for record in caplog.records] == [
        "the sdl presenter uploads them from there",
        "CUDA cannot reach the GL context (not NVIDIA's GL)",
        "the onnxruntime-cuda backend hands them back there",
        "frames go from TensorRT into the presenter's texture on the GPU",
    ]
