"""``installation gpu-check`` run for real on this machine: no GPU here, so the GPU rungs must
say why they did not load, the CPU rung must be measured like any other, and the report must
be whole even when a phase fails or hangs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import DEFAULT_SHOW

from installation import gpu_check
from installation.cli import main
from installation.engine.ladder import LADDER, ORT_CPU
from installation.gpu_check import BATCHES, PHASES, pytest_summary


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("gpu-check") / "gpu-check.json"
    returned = gpu_check.gpu_check(
        DEFAULT_SHOW, out, budget=0.01, say=lambda line: None, display_seconds=1.0
    )
    return returned, out


def test_the_report_on_disk_is_the_one_returned(report: tuple[dict[str, Any], Path]) -> None:
    returned, out = report
    assert json.loads(out.read_text()) == returned
    assert returned["schema"] == gpu_check.SCHEMA
    assert list(returned["phases"]) == list(PHASES)
    for phase in returned["phases"].values():
        assert phase["status"] in ("ok", "failed", "skipped")
        assert phase["status"] == "ok" or phase["reason"]


def test_every_rung_is_listed_and_the_absent_ones_say_why(
    report: tuple[dict[str, Any], Path],
) -> None:
    returned, _ = report
    rungs = {rung["name"]: rung for rung in returned["rungs"]}
    assert list(rungs) == list(LADDER)
    assert returned["phases"]["bench"]["status"] == "ok"
    for name, rung in rungs.items():
        if name != ORT_CPU and not rung["loaded"]:
            assert rung["reason"] and "\n" not in rung["reason"]
            assert isinstance(rung["installed"], bool)
    versions = returned["versions"]
    if versions["tensorrt"] is None:
        assert "TensorRT" in versions["tensorrt_reason"]
        assert rungs["tensorrt"]["reason"].startswith("TensorRT is not installed")
    if versions["gpu"] is None:
        assert versions["gpu_reason"]


def test_build_engines_ran_into_the_folder_beside_the_report(
    report: tuple[dict[str, Any], Path],
) -> None:
    """Without TensorRT it still makes the FP16 variants, which the CUDA rung would run."""
    returned, out = report
    phase = returned["phases"]["build-engines"]
    assert phase["status"] == "ok", phase
    # build-engines' last line: what each rung got.
    assert phase["reason"].startswith("faces-256 in ")
    assert "FP16 variants for ONNX Runtime CUDA: 2 of 2 stages (max abs error" in phase["reason"]
    assert list((out.parent / "engines").glob("*.onnx"))


def test_the_cpu_rung_is_measured_at_both_batches(report: tuple[dict[str, Any], Path]) -> None:
    returned, _ = report
    [cpu] = [rung for rung in returned["rungs"] if rung["name"] == ORT_CPU]
    assert cpu["loaded"] and "error" not in cpu
    stages = {(row["stage"], row["batch"]) for row in cpu["stages"]}
    assert stages == {(name, batch) for name in ("generator", "refine-256") for batch in BATCHES}
    assert [row["batch"] for row in cpu["chain"]] == list(BATCHES)
    for row in cpu["stages"] + cpu["chain"]:
        assert row["frames_per_s"] > 0 and row["latency_ms"] > 0
    # The reference is ONNX Runtime on the CPU itself: the same output, exactly.
    assert cpu["max_abs_error_vs_cpu"] == 0.0
    assert cpu["display"]["backend"] == ORT_CPU and cpu["display"]["ticks"] > 0
    assert cpu["precision"] == {"generator": "fp32", "refine-256": "fp32"}
    assert cpu["cuda_graphs"] is False


def test_the_versions_name_what_decides_the_gpu_path(report: tuple[dict[str, Any], Path]) -> None:
    versions = report[0]["versions"]
    for key in ("python", "numpy", "onnxruntime", "providers", "cuda_bindings", "driver"):
        assert key in versions
    assert "CPUExecutionProvider" in versions["providers"]
    assert "error" in report[0]["nvidia_smi"] or report[0]["nvidia_smi"]["gpus"]


def test_the_gpu_tests_ran_in_their_own_pytest(report: tuple[dict[str, Any], Path]) -> None:
    returned, _ = report
    assert returned["phases"]["pytest"]["status"] == "ok"
    counts = returned["pytest"]["counts"]
    assert counts.get("passed", 0) + counts.get("skipped", 0) > 0
    assert returned["pytest"]["failed"] == []


def test_a_phase_that_hangs_is_cut_off_and_the_report_still_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(gpu_check.TIMEOUTS, "versions", 0.001)
    out = tmp_path / "report.json"
    gpu_check.gpu_check(
        DEFAULT_SHOW, out, skip=["pytest", "build-engines", "bench"], say=lambda line: None
    )
    written = json.loads(out.read_text())
    assert written["phases"]["versions"]["status"] == "failed"
    assert written["phases"]["versions"]["reason"].startswith("timed out after")
    assert written["phases"]["bench"]["reason"] == "--skip bench"


def test_an_unknown_phase_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.json"
    assert main(["gpu-check", str(DEFAULT_SHOW), "--out", str(out), "--skip", "tests"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown phase 'tests'" in err
    assert not out.exists()


def test_pytest_summary_reads_counts_and_failures() -> None:
    output = (
        "FAILED tests/test_gpu.py::test_chain[1] - AssertionError\n"
        "ERROR tests/test_gpu.py::test_build - RuntimeError\n"
        "1 failed, 3 passed, 2 skipped, 1 error in 4.20s\n"
    )
    summary = pytest_summary(output)
    assert summary["counts"] == {"failed": 1, "passed": 3, "skipped": 2, "error": 1}
    assert summary["failed"] == [
        "tests/test_gpu.py::test_chain[1]",
        "tests/test_gpu.py::test_build",
    ]
    assert summary["summary"].startswith("1 failed")
