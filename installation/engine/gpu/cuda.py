"""A thin, checked layer over the CUDA runtime API of cuda-python.

cuda-python returns an error code with every result instead of raising, so every call site
is a chance to forget a check and carry on with a null pointer. Here every call goes through
``_call``, which raises ``CudaError`` naming the function and the error. Only what the
TensorRT backend needs is wrapped: device memory, page-locked host memory (copies from the
device are only asynchronous into it), one stream, and copies on that stream.

cuda-python is imported inside functions, so importing this module never needs it;
``require_gpu`` turns "this machine has no GPU path" into one line (``GpuUnavailable``).
"""

from __future__ import annotations

import ctypes
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from installation.errors import UserError

log = logging.getLogger(__name__)

#: How to get TensorRT: its libraries come from NVIDIA's index, and in a checkout the order of
#: the installs matters (the project brings onnxruntime back beside onnxruntime-gpu), so the
#: hint points to the page that gives them, rather than one command that would break the other.
INSTALL_HINT = (
    "on a kiosk: sudo deploy/setup.sh SHOW --gpu; in a checkout: see docs/gpu.md, "
    "Setting up an NVIDIA PC"
)

#: What the usual failures of the first CUDA call mean to someone standing at the PC.
_REASONS = {
    "cudaErrorInsufficientDriver": "no usable NVIDIA driver (none loaded, or older than this "
    "CUDA needs: 525 for CUDA 12, 580 for CUDA 13)",
    "cudaErrorNoDevice": "no NVIDIA GPU found",
    "cudaErrorDevicesUnavailable": "the NVIDIA GPU is taken (exclusive compute mode)",
    "cudaErrorSystemDriverMismatch": "the NVIDIA driver was updated but its old kernel module "
    "still runs: reboot after the NVIDIA driver update",
    "cudaErrorCompatNotSupportedOnDevice": "CUDA's forward-compatibility libraries do not "
    "support this GPU: update the NVIDIA driver instead",
    "cudaErrorInitializationError": "the NVIDIA driver did not start (see dmesg; often a "
    "driver installed but not loaded, or Secure Boot refusing its module)",
    "cudaErrorOperatingSystem": "the operating system refused CUDA (a sandbox without "
    "/dev/nvidia-uvm: load nvidia_uvm at boot, see docs/gpu.md)",
    "cudaErrorNotPermitted": "this user may not use the NVIDIA GPU (groups video and render, "
    "or the service's DeviceAllow=)",
    "cudaErrorMemoryAllocation": "the GPU's memory is full (another program holds it)",
}
#: Where the loaded NVIDIA kernel module says which release it is.
DRIVER_VERSION_FILE = Path("/proc/driver/nvidia/version")


#: Bytes of one float32 value: buffer sizes of the stages' float32 tensors.
FLOAT32_BYTES = 4


class GpuUnavailable(UserError):
    """Why this machine cannot take the GPU path, in one line.

    On a PC without an NVIDIA card this is the normal state, not a fault: callers fall back
    to another backend or tell the user what to install.
    """


class CudaError(RuntimeError):
    """A CUDA call that failed on a machine whose GPU did start: a fault, not a set-up step."""


@dataclass(frozen=True)
class GpuInfo:
    name: str
    #: "major.minor", e.g. "8.9": what TensorRT kernels are compiled for.
    compute_capability: str


def runtime() -> ModuleType:
    """cuda-python's runtime API module, or GpuUnavailable saying it is not installed."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        raise GpuUnavailable(f"cuda-python is not installed ({INSTALL_HINT})") from None
    return cudart


def _call(function: Callable[..., tuple[Any, ...]], *args: Any) -> Any:
    """Call a cuda-python function; its one result (or None), or CudaError."""
    error, *results = function(*args)
    if error != runtime().cudaError_t.cudaSuccess:
        raise CudaError(f"{function.__name__}: {error.name}")
    return results[0] if results else None


def require_gpu(device: int = 0) -> GpuInfo:
    """The GPU the NVIDIA path would use, or GpuUnavailable saying why there is none."""
    cudart = runtime()
    error, count = cudart.cudaGetDeviceCount()
    if error != cudart.cudaError_t.cudaSuccess:
        reason = _REASONS.get(error.name, "CUDA cannot start")
        raise GpuUnavailable(f"{reason}: {error.name}, driver {driver_version()}")
    if count == 0:
        raise GpuUnavailable(_REASONS["cudaErrorNoDevice"])
    if device >= count:
        raise GpuUnavailable(f"no NVIDIA GPU {device}: this machine has {count}")
    properties = _call(cudart.cudaGetDeviceProperties, device)
    name = bytes(properties.name).split(b"\0", 1)[0].decode(errors="replace")
    return GpuInfo(name, f"{properties.major}.{properties.minor}")


def driver_version() -> str:
    """The NVIDIA driver's release and the newest CUDA it runs, e.g. "580.65.06, CUDA 13.0",
    or "none loaded": what decides which CUDA builds can run here, for messages and reports."""
    try:
        text = DRIVER_VERSION_FILE.read_text(errors="replace")
    except OSError:
        return "none loaded"
    # "NVRM version: NVIDIA UNIX [Open ]Kernel Module [for x86_64]  580.65.06  Release ..."
    match = re.search(r"Kernel Module.*?\s(\d+\.\d+(?:\.\d+)*)\s", text)
    release = match.group(1) if match else "unknown release"
    try:
        cudart = runtime()
    except GpuUnavailable:
        return release
    error, version = cudart.cudaDriverGetVersion()
    if error != cudart.cudaError_t.cudaSuccess or not version:
        return release
    return f"{release}, CUDA {version // 1000}.{version % 1000 // 10}"


def select_device(device: int = 0) -> None:
    """Make ``device`` current and let threads that wait for it sleep instead of spin.

    CUDA's default spins a core while a thread waits for its stream; on a small exhibition
    PC that is the core the display loop needs (the same reason ONNX Runtime's spinning is
    off), and a sleeping wait costs only microseconds against frames of milliseconds.
    """
    cudart = runtime()
    _call(cudart.cudaSetDevice, device)
    (error,) = cudart.cudaSetDeviceFlags(cudart.cudaDeviceScheduleBlockingSync)
    if error == cudart.cudaError_t.cudaErrorSetOnActiveProcess:
        # Another library started the device first with its own flags: waits spin, which
        # costs a core but nothing else.
        log.warning("CUDA was started before the runtime could ask for sleeping waits")
    elif error != cudart.cudaError_t.cudaSuccess:
        raise CudaError(f"cudaSetDeviceFlags: {error.name}")


class DeviceBuffer:
    """``nbytes`` of GPU memory at address ``ptr`` (0 once freed)."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes
        self.ptr = int(_call(runtime().cudaMalloc, nbytes))

    def free(self) -> None:
        """Give the memory back; safe to call again."""
        if self.ptr:
            ptr, self.ptr = self.ptr, 0
            _call(runtime().cudaFree, ptr)


class PinnedBuffer:
    """Page-locked host memory seen as one numpy array (``array``).

    Copies from the device into pageable memory make the host wait; into page-locked memory
    they run on the stream while the thread does other work. Views of ``array`` are only
    valid until ``free``.
    """

    def __init__(self, shape: tuple[int, ...], dtype: type[np.generic] = np.float32) -> None:
        kind = np.dtype(dtype)
        self.nbytes = int(np.prod(shape)) * kind.itemsize
        self.ptr = int(_call(runtime().cudaMallocHost, self.nbytes))
        memory = (ctypes.c_ubyte * self.nbytes).from_address(self.ptr)
        self.array: np.ndarray = np.frombuffer(memory, dtype=kind).reshape(shape)

    def free(self) -> None:
        """Give the memory back; safe to call again. ``array`` becomes empty."""
        if self.ptr:
            ptr, self.ptr = self.ptr, 0
            self.array = np.empty((0,), dtype=self.array.dtype)
            _call(runtime().cudaFreeHost, ptr)


class Stream:
    """One CUDA stream: copies and TensorRT runs queued on it run in order, off the host."""

    def __init__(self) -> None:
        cudart = runtime()
        # Non-blocking: no implicit waits on the legacy default stream other libraries use.
        self._stream = _call(cudart.cudaStreamCreateWithFlags, cudart.cudaStreamNonBlocking)
        #: The raw handle, as TensorRT's execute_async_v3 takes it (``int()`` of a handle is
        #: deprecated since cuda-bindings 12.9.1; this is the supported way on 12.9 and 13).
        self.handle: int = native_handle(self._stream)

    def to_device(self, target: DeviceBuffer, source: np.ndarray) -> None:
        """Queue a copy of a C-contiguous host array to the start of ``target``.

        From pageable memory CUDA stages the data before returning, so ``source`` may be
        released as soon as this returns.
        """
        _check_fits(source, target.nbytes)
        kind = runtime().cudaMemcpyKind.cudaMemcpyHostToDevice
        self._copy(target.ptr, source.ctypes.data, source.nbytes, kind)

    def to_host(self, target: np.ndarray, source: DeviceBuffer) -> None:
        """Queue a copy of the start of ``source`` into a C-contiguous host array (pinned,
        for the copy to be asynchronous); it is complete after ``synchronize``."""
        _check_fits(target, source.nbytes)
        kind = runtime().cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._copy(target.ctypes.data, source.ptr, target.nbytes, kind)

    def within_device(self, target: int, source: DeviceBuffer, nbytes: int) -> None:
        """Queue a copy of the first ``nbytes`` of ``source`` to device address ``target``."""
        if nbytes > source.nbytes:
            raise ValueError(f"{nbytes} bytes do not fit a buffer of {source.nbytes}")
        kind = runtime().cudaMemcpyKind.cudaMemcpyDeviceToDevice
        self._copy(target, source.ptr, nbytes, kind)

    def synchronize(self) -> None:
        """Wait (sleeping, see ``select_device``) until everything queued so far is done."""
        _call(runtime().cudaStreamSynchronize, self._stream)

    def free(self) -> None:
        """Destroy the stream; safe to call again."""
        if self.handle:
            self.handle = 0
            _call(runtime().cudaStreamDestroy, self._stream)

    def _copy(self, target: int, source: int, nbytes: int, kind: Any) -> None:
        _call(runtime().cudaMemcpyAsync, target, source, nbytes, kind, self._stream)


def native_handle(handle: Any) -> int:
    """The address a cuda-python handle (a stream, an event) wraps, for other libraries."""
    from cuda.bindings.utils import get_cuda_native_handle

    return int(get_cuda_native_handle(handle))


def _check_fits(array: np.ndarray, nbytes: int) -> None:
    if not array.flags.c_contiguous:
        raise ValueError("copies need a C-contiguous array")
    if array.nbytes > nbytes:
        raise ValueError(f"{array.nbytes} bytes do not fit a buffer of {nbytes}")
