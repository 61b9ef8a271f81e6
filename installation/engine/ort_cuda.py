"""ONNX Runtime's CUDA provider, set up on purpose rather than left to its defaults.

The CUDA build of ONNX Runtime from PyPI (``onnxruntime-gpu``) does not bring CUDA or cuDNN:
they come as NVIDIA's own wheels (``nvidia-cudnn-cu12`` and friends, the ``cuda``/``cudnn``
extras of ``onnxruntime-gpu``). ``onnxruntime.preload_dlls`` (ONNX Runtime 1.21 and newer)
loads them from those wheels, so no ``LD_LIBRARY_PATH`` is needed; it has to run before the
first CUDA session. When the provider still cannot start, ONNX Runtime quietly runs the model
on the CPU; the backend refuses that, and ``start_failure`` words the reason in one line.

CUDA graphs record a stage's kernel launches once and replay them with one call, which saves
the launch overhead that dominates small generators at batch 1. ONNX Runtime records them
only for fixed shapes at fixed addresses (IO binding), and keeps one graph per
``gpu_graph_id`` from 1.18 on; ``plan_cuda_graphs`` makes that choice explicitly.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import re
from dataclasses import dataclass

import onnxruntime as ort

from installation.errors import first_line

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
#: The first GPU, as for TensorRT: CUDA's current device is per thread, and the worker thread
#: that runs the stages never selects one.
DEVICE_ID = 0
#: The run option that picks a CUDA graph, and the value that skips capture for one run.
GRAPH_ID = "gpu_graph_id"
NO_GRAPH = "-1"
#: The first ONNX Runtime that keeps several graphs per session (one per batch size here):
#: an older one would replay the graph of one batch size for another.
GRAPHS_SINCE = (1, 18)


def provider_options(cuda_graph: bool, device_id: int = DEVICE_ID) -> dict[str, str]:
    """The CUDA provider's options, each chosen for a show that runs for weeks:

    - ``arena_extend_strategy`` kSameAsRequested: the memory arena grows by what a run
      asks for, not to the next power of two, so a long show does not hold twice the memory
      it uses (the GPU is shared with the display and, on a fall back, with the next rung).
    - ``cudnn_conv_algo_search`` EXHAUSTIVE: cuDNN times every convolution algorithm once per
      input shape and keeps the fastest; a second or two at the first frame of each batch size,
      repaid over millions of frames. (HEURISTIC would start faster and run slower.)
    - ``do_copy_in_default_stream`` 1: copies to and from the GPU go on the stream the kernels
      run on, so a copy can never overtake the run that fills its buffer.
    - ``use_tf32`` 0: TF32 (on by default from Ampere) rounds FP32 convolutions to FP16's
      mantissa; measured on an H200 it moved the default bundle's frames by 0.005 from the
      CPU's, more than its FP16 variants did. FP32 should mean FP32 here, as for TensorRT;
      the speed is what the FP16 variants are for.
    - ``enable_cuda_graph``: see ``plan_cuda_graphs``.
    """
    return {
        "device_id": str(device_id),
        "arena_extend_strategy": "kSameAsRequested",
        "cudnn_conv_algo_search": "EXHAUSTIVE",
        "do_copy_in_default_stream": "1",
        "use_tf32": "0",
        "enable_cuda_graph": "1" if cuda_graph else "0",
    }


@functools.cache
def preload_libraries() -> str | None:
    """Load CUDA and cuDNN from NVIDIA's wheels once per process, before the first CUDA
    session; the first library that failed to load, or None.

    ONNX Runtime prints its complaints to stdout, which on a kiosk is nobody's screen: they
    are caught and the first one is kept for ``start_failure``.
    """
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:  # before 1.21: the libraries must be on the loader's path
        return None
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        try:
            preload()
        except Exception as exc:  # a broken wheel layout must not stop the CPU rung below
            return first_line(exc)
    failed = [line for line in printed.getvalue().splitlines() if line.startswith("Failed")]
    return failed[0] if failed else None


def start_failure() -> str:
    """Why the CUDA provider did not start, in one line: what failed to load, what this
    build of ONNX Runtime needs, and where it comes from."""
    cuda = (getattr(ort, "cuda_version", "") or "12").split(".")[0]
    missing = preload_libraries()
    found = f"{missing}; " if missing else ""
    return (
        f"{found}onnxruntime-gpu {ort.__version__} needs the CUDA {cuda} and cuDNN 9 libraries "
        f"(pip install 'onnxruntime-gpu[cuda,cudnn]=={ort.__version__}') and an NVIDIA driver "
        f"made for CUDA {cuda}"
    )


@dataclass(frozen=True)
class GraphPlan:
    """Whether a backend's CUDA sessions record CUDA graphs, and why (for the log)."""

    enabled: bool
    reason: str


def plan_cuda_graphs(provider: str, wanted: bool, version: str = ort.__version__) -> GraphPlan:
    """CUDA graphs for a backend on ``provider`` with ONNX Runtime ``version``: only on the
    CUDA provider, only where asked, only where ONNX Runtime keeps a graph per batch size."""
    if provider != CUDA:
        return GraphPlan(False, "CUDA graphs exist only on the CUDA provider")
    if not wanted:
        return GraphPlan(False, "CUDA graphs turned off")
    if release(version) < GRAPHS_SINCE:
        since = ".".join(map(str, GRAPHS_SINCE))
        return GraphPlan(
            False,
            f"ONNX Runtime {version} keeps one CUDA graph per session; one per batch size "
            f"needs {since} or newer",
        )
    return GraphPlan(True, "a CUDA graph per stage and batch size")


def graph_run_options(graph: int | None) -> ort.RunOptions:
    """Run options that replay (or first record) graph ``graph``, or that run without one
    (None) on a session that records graphs."""
    options = ort.RunOptions()
    options.add_run_config_entry(GRAPH_ID, NO_GRAPH if graph is None else str(graph))
    return options


def release(version: str) -> tuple[int, int]:
    """(major, minor) of a version string such as "1.31.0", "1.22.0.dev20250101" or
    "10.16.1.11" (ONNX Runtime's, TensorRT's)."""
    major, minor, *_ = [*(int(part) for part in re.findall(r"\d+", version)[:2]), 0, 0]
    return major, minor
