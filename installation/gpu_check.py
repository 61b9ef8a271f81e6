"""``installation gpu-check``: one run on a machine with a GPU, one JSON report of everything
the GPU path does there.

The first GPU the project meets may be lent for minutes, with nobody at hand to read a
traceback: so every phase (versions, ``pytest -m gpu``, ``build-engines``, the bench) runs as
a child process with a time limit, a phase that fails or hangs is recorded with its one-line
reason and the next one still runs, and the report is rewritten after each phase, so that even
a run killed from outside leaves what it had. The children are this same interpreter, so the
check runs from a checkout with nothing installed (``python3 -m installation gpu-check``).

Every rung of the ladder is measured on its own, loaded and closed in turn (a GPU rung's
memory must not be held while the next loads): loaded or why not, frames/s per stage and for
the whole chain at batch 1 and 8, the chained output against ONNX Runtime on the CPU (FP16
errors that one stage passes on and the next amplifies show here, not in a per-stage check),
and the display loop with SDL's dummy driver.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from installation.errors import UserError, first_line
from installation.files import write_atomic

#: The checkout the check runs from: its tests, and the folder the children start in.
ROOT = Path(__file__).resolve().parent.parent
#: Batch sizes measured: one frame (the show) and a batch (throughput).
BATCHES = (1, 8)
#: Seconds each phase may take at most; together with the rest, within 5 minutes.
TIMEOUTS = {"versions": 30.0, "pytest": 90.0, "build-engines": 90.0, "bench": 90.0}
PHASES = tuple(TIMEOUTS)
#: Seconds of the show loop measured on each rung.
DISPLAY_SECONDS = 3.0
SCHEMA = 1

Json = dict[str, Any]


def gpu_check(
    show_path: Path | None,
    out: Path,
    budget: float = 0.5,
    skip: Sequence[str] = (),
    say: Callable[[str], object] = print,
    display_seconds: float = DISPLAY_SECONDS,
) -> Json:
    """Run every phase not in ``skip`` and write the report to ``out`` after each; return it.

    ``budget`` is the seconds spent timing each figure (at least one timed run each), and
    ``display_seconds`` those of the show loop on each rung."""
    # Not the session's loader: that imports ONNX Runtime, and a broken one must end up in
    # the report, not stop it.
    from installation.engine.bundle import load_bundle
    from installation.score.show import load_show

    unknown = sorted(set(skip) - set(PHASES))
    if unknown:
        raise UserError(f"--skip: unknown phase {unknown[0]!r}: choose from {', '.join(PHASES)}")
    show = load_show(show_path)
    bundle = load_bundle(show.bundle)
    out = out.resolve()  # the children start in the checkout, not here
    out.parent.mkdir(parents=True, exist_ok=True)
    engines = out.parent / "engines"
    report: Json = {
        "schema": SCHEMA,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "show": str(show.path),
        "bundle": bundle.name,
        "budget_s": budget,
        "nvidia_smi": nvidia_smi(),
        "versions": {},
        "phases": {},
        "pytest": None,
        "rungs": [],
    }
    show_arg = [str(show.path)]
    children: dict[str, list[str]] = {
        "versions": ["-m", "installation.gpu_check", "versions"],
        "pytest": ["-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", *gpu_tests()],
        "build-engines": [
            "-m",
            "installation",
            "build-engines",
            *show_arg,
            "--engines",
            str(engines),
        ],
        "bench": [
            "-m",
            "installation.gpu_check",
            "bench",
            *show_arg,
            str(engines),
            str(budget),
            str(display_seconds),
        ],
    }
    for phase in PHASES:
        started = time.monotonic()
        if phase in skip:
            result: Json = {"status": "skipped", "reason": "--skip " + phase}
        elif (why := _unready(phase)) is not None:
            result = {"status": "skipped", "reason": why}
        else:
            say(f"gpu-check: {phase} (at most {TIMEOUTS[phase]:.0f} s) ...")
            result = _run_phase(phase, children[phase], out.with_name(f"{phase}.json"), report)
        result["seconds"] = round(time.monotonic() - started, 1)
        report["phases"][phase] = result
        say(f"gpu-check: {phase}: {result['status']}" + _because(result))
        write_report(out, report)
    return report


def gpu_tests() -> list[str]:
    """The test files with tests marked gpu: collecting the others would import what the GPU
    tests never need (hypothesis, torch), which a bare GPU machine may not have."""
    files = sorted((ROOT / "tests").glob("test_*.py"))
    return [str(path) for path in files if "mark.gpu" in path.read_text()]


def _because(result: Json) -> str:
    return f": {result['reason']}" if result.get("reason") else ""


def _unready(phase: str) -> str | None:
    """Why ``phase`` cannot run here, or None."""
    if phase == "pytest":
        if importlib.util.find_spec("pytest") is None:
            return "pytest is not installed for this Python"
        if not gpu_tests():
            return f"no tests marked gpu in {ROOT / 'tests'} (not a checkout?)"
    return None


def _run_phase(phase: str, arguments: list[str], result_file: Path, report: Json) -> Json:
    """Run one child with the phase's time limit; fold what it wrote into ``report``."""
    result_file.unlink(missing_ok=True)
    try:
        completed = subprocess.run(
            [sys.executable, *arguments],
            cwd=ROOT,
            env=_child_environment(result_file),
            capture_output=True,
            text=True,
            timeout=TIMEOUTS[phase],
        )
        code, output, errors = completed.returncode, completed.stdout, completed.stderr
    except subprocess.TimeoutExpired as expired:
        code, output, errors = None, _text(expired.stdout), _text(expired.stderr)
    written = _read_json(result_file)
    if phase == "versions":
        report["versions"] = written or {}
    elif phase == "bench":
        report["rungs"] = (written or {}).get("rungs", [])
    elif phase == "pytest":
        report["pytest"] = pytest_summary(output)
    result: Json = {"status": "ok"}
    if code is None:
        result = {"status": "failed", "reason": f"timed out after {TIMEOUTS[phase]:.0f} s"}
    elif phase == "pytest" and code == 5:
        result = {"status": "skipped", "reason": "no tests marked gpu were collected"}
    elif code != 0:
        # Python and our commands say why on stderr, last; pytest on stdout.
        why = last_line(output if phase == "pytest" else errors or output)
        result = {"status": "failed", "reason": f"exit {code}: {why}"}
    if phase == "build-engines" and code == 0:
        result["reason"] = last_line(output)
    return result


def _child_environment(result_file: Path) -> dict[str, str]:
    """The environment the children get: this one, plus the checkout on the path (nothing
    installed), SDL's dummy video driver, and where to write their results."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)
    env["SDL_VIDEODRIVER"] = "dummy"
    env["PYGAME_HIDE_SUPPORT_PROMPT"] = "1"
    env["INSTALLATION_GPU_CHECK_OUT"] = str(result_file)
    return env


def _text(data: str | bytes | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else data or ""


def _read_json(path: Path) -> Json | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def last_line(output: str) -> str:
    """The last non-empty line of a child's output: where Python and our commands say why."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def pytest_summary(output: str) -> Json:
    """pytest's counts and the tests that failed, from its output."""
    counts = {
        word: int(number)
        for number, word in re.findall(
            r"(\d+) (passed|failed|skipped|deselected|errors?|xfailed|xpassed)", output
        )
    }
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", output, re.MULTILINE)
    return {"counts": counts, "failed": failed[:20], "summary": last_line(output)}


def write_report(out: Path, report: Json) -> None:
    write_atomic(out, (json.dumps(report, indent=2) + "\n").encode())


def nvidia_smi() -> Json:
    """What ``nvidia-smi`` says about the GPUs, or why it could not (it can hang on a sick
    GPU, hence the time limit)."""
    query = "name,driver_version,compute_cap,memory.total"
    try:
        completed = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except FileNotFoundError:
        return {"error": "nvidia-smi not found"}
    except subprocess.TimeoutExpired:
        return {"error": "nvidia-smi did not answer within 20 s"}
    if completed.returncode != 0:
        return {"error": last_line(completed.stdout + completed.stderr)}
    gpus = [line.split(", ") for line in completed.stdout.strip().splitlines()]
    return {"gpus": [dict(zip(query.split(","), gpu, strict=False)) for gpu in gpus]}


# The children: each writes its result to $INSTALLATION_GPU_CHECK_OUT.


def versions() -> Json:
    """Every version that decides what runs here, and the GPU as CUDA sees it."""
    from installation.engine.gpu.cuda import GpuUnavailable, driver_version, require_gpu
    from installation.engine.gpu.tensorrt_backend import import_tensorrt

    found: Json = {"python": platform.python_version(), "numpy": np.__version__}
    try:
        import onnxruntime

        found["onnxruntime"] = onnxruntime.__version__
        found["onnxruntime_package"] = _distribution("onnxruntime-gpu", "onnxruntime")
        found["providers"] = onnxruntime.get_available_providers()
    except Exception as exc:  # an ONNX Runtime half removed raises anything
        found["onnxruntime"] = None
        found["onnxruntime_reason"] = first_line(exc)
    found["cuda_bindings"] = _distribution("cuda-bindings")
    found["driver"] = driver_version()
    try:
        found["tensorrt"] = import_tensorrt().__version__
    except GpuUnavailable as exc:
        found["tensorrt"], found["tensorrt_reason"] = None, str(exc)
    try:
        gpu = require_gpu(0)
        found["gpu"], found["compute_capability"] = gpu.name, gpu.compute_capability
    except GpuUnavailable as exc:
        found["gpu"], found["gpu_reason"] = None, str(exc)
    return found


def _distribution(*names: str) -> str | None:
    """ "name version" of the first of ``names`` that is installed."""
    for name in names:
        try:
            return f"{name} {importlib.metadata.version(name)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def bench(show_path: Path, engines: Path, budget: float, display_seconds: float, out: Path) -> Json:
    """Every rung of the ladder in turn; the result is rewritten after each rung."""
    from installation.engine.ladder import Absent, ladder_for
    from installation.engine.parity import reference_samples
    from installation.session import load_parts

    show, bundle, _conductor = load_parts(show_path)
    samples = reference_samples(bundle, seed=0)
    ladder = ladder_for(bundle, "auto", show.engine.threads or None, engines)
    # Every rung listed from the start, so that a bench cut short still names those it missed.
    result: Json = {
        "rungs": [
            {"name": rung.name, "loaded": None, "reason": "not reached: the bench phase ended"}
            for rung in ladder.rungs
        ]
    }
    write_report(out, result)
    for index, rung in enumerate(ladder.rungs):
        started = time.monotonic()
        try:
            pipeline = rung.load()
        except Exception as exc:  # the reason is the result: this rung cannot run here
            result["rungs"][index] = {
                "name": rung.name,
                "loaded": False,
                # Not installed here, or installed and failing: a fault to fix.
                "installed": not isinstance(exc, Absent),
                "reason": first_line(exc),
            }
            write_report(out, result)
            continue
        entry: Json = {
            "name": rung.name,
            "loaded": True,
            "load_seconds": round(time.monotonic() - started, 2),
        }
        result["rungs"][index] = entry
        try:
            measure_rung(pipeline, show, samples, budget, display_seconds, entry)
        except Exception as exc:  # a rung that loads and then fails is a finding too
            entry["error"] = f"{type(exc).__name__}: {first_line(exc)}"
        finally:
            pipeline.close()
        write_report(out, result)
    return result


def measure_rung(
    pipeline: Any,
    show: Any,
    samples: list[Any],
    budget: float,
    display_seconds: float,
    entry: Json,
) -> None:
    """Fill ``entry`` with one loaded rung's figures, the cheapest and most telling first."""
    from installation.bench import bench_display, median_seconds, time_stages
    from installation.engine.parity import end_to_end_error

    entry["chained_stages"] = pipeline.chained
    entry["max_abs_error_vs_cpu"] = end_to_end_error(pipeline, samples)
    rng = np.random.default_rng(0)
    measure = functools.partial(median_seconds, budget=budget, minimum=1, warmup=1)
    timed = time_stages(pipeline, BATCHES, rng, measure)
    entry["stages"] = [_figure(name, batch, seconds) for name, batch, seconds in timed]
    chain = []
    for batch in BATCHES:
        batch_latents = rng.standard_normal((batch, pipeline.bundle.input_size), np.float32)
        seconds = median_seconds(lambda b=batch_latents: pipeline.run(b), budget, 1, 1)
        chain.append(_figure("whole pipeline", batch, seconds))
    entry["chain"] = chain
    entry["display"] = asdict(bench_display(pipeline, show, show.display.fps, display_seconds))
    # What the figures were measured with: a stage's proven FP16 variant or FP32, and whether
    # CUDA graphs were still being replayed at the end (a failed recording turns them off).
    entry["precision"] = {
        stage.spec.name: getattr(stage.model, "precision", None) for stage in pipeline.stages
    }
    entry["cuda_graphs"] = bool(getattr(pipeline.chain, "graphs", False))


def _figure(name: str, batch: int, seconds: float) -> Json:
    return {
        "stage": name,
        "batch": batch,
        "latency_ms": round(seconds * 1e3, 4),
        "frames_per_s": round(batch / seconds, 2),
    }


def _child(argv: list[str]) -> int:
    """``python -m installation.gpu_check versions|bench SHOW ENGINES BUDGET SECONDS``."""
    out = Path(os.environ["INSTALLATION_GPU_CHECK_OUT"])
    try:
        if argv[0] == "versions":
            write_report(out, versions())
        else:
            show, engines, budget, seconds = argv[1:]
            bench(Path(show), Path(engines), float(budget), float(seconds), out)
    except UserError as exc:
        print(f"installation: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
