"""The fallback ladder on a machine without a GPU: which backend runs and why, the refusal of a
pinned backend that is not there, and a running backend that fails on purpose (through the
runtime's fault hook) dropping the show to the next one while the screen goes on."""

from __future__ import annotations

import importlib.util
import logging
import time

import numpy as np
import pytest
from conftest import DEFAULT_BUNDLE, brisk_conductor
from test_service import TimedDisplay

from installation.cli import main
from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.bundle import load_bundle
from installation.engine.faults import DeliberateFault, Faults
from installation.engine.ladder import BackendLadder, Rung, ladder_for
from installation.engine.pipeline import Pipeline
from installation.errors import UserError
from installation.player import play

no_gpu_stack = pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None,
    reason="TensorRT is installed here: the ladder may really use it",
)


def cpu_rung(name: str) -> Rung:
    bundle = load_bundle(DEFAULT_BUNDLE)
    return Rung(name, lambda: Pipeline.load(bundle, OnnxRuntimeBackend(CPU, threads=1)))


def ladder_messages(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "installation.engine.ladder"]


@no_gpu_stack
def test_auto_without_a_gpu_runs_on_the_cpu_and_says_why_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bundle = load_bundle(DEFAULT_BUNDLE)
    with caplog.at_level(logging.INFO):
        ladder = ladder_for(bundle, "auto", 1, None, Faults())
        pipeline = ladder.start()
    assert ladder.name == pipeline.backend_name == "onnxruntime-cpu"
    [record] = ladder_messages(caplog)
    # No GPU here is normal, not a fault: a warning, not an error in capitals.
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith("inference runs on onnxruntime-cpu (tensorrt: ")
    assert "TensorRT is not installed" in message
    assert "onnxruntime-cuda: this ONNX Runtime has no CUDAExecutionProvider" in message
    assert "\n" not in message


def test_a_gpu_that_fails_at_start_is_an_error_in_capitals(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bundle = load_bundle(DEFAULT_BUNDLE)
    with caplog.at_level(logging.INFO):
        pipeline = ladder_for(bundle, "auto", 1, None, Faults(gpu_start=True)).start()
    assert pipeline.backend_name == "onnxruntime-cpu"
    [record] = ladder_messages(caplog)
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    assert message.startswith("INFERENCE RUNS ON ONNXRUNTIME-CPU, NOT ON THE BEST BACKEND")
    assert "tensorrt: deliberate fault: gpu-start" in message
    assert "onnxruntime-cuda: deliberate fault: gpu-start" in message
    frames = pipeline.run(np.zeros((2, bundle.latent_size), dtype=np.float32))
    width, height = bundle.output_size
    assert frames.shape == (2, height, width, 3) and frames.dtype == np.uint8


def test_the_best_backend_is_logged_as_information(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        BackendLadder([cpu_rung("onnxruntime-cpu")]).start()
    [record] = ladder_messages(caplog)
    assert (record.levelno, record.getMessage()) == (
        logging.INFO,
        "inference runs on onnxruntime-cpu",
    )


@no_gpu_stack
@pytest.mark.parametrize(
    ("backend", "reason"),
    [
        ("tensorrt", "tensorrt: TensorRT is not installed"),
        ("onnxruntime-cuda", "onnxruntime-cuda: this ONNX Runtime has no CUDAExecutionProvider"),
    ],
)
def test_a_pinned_backend_that_is_missing_is_one_line_and_exit_2(
    show_copy, backend: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = show_copy.read_text()
    assert 'backend = "auto"\n' in text
    show_copy.write_text(text.replace('backend = "auto"\n', f'backend = "{backend}"\n'))
    assert main(["check", str(show_copy)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("installation: error: no backend can run this bundle: " + reason)
    assert "\n" not in err


def test_fall_moves_down_and_stops_at_the_last_rung(caplog: pytest.LogCaptureFixture) -> None:
    ladder = BackendLadder([cpu_rung("first"), cpu_rung("second")])
    first = ladder.start()
    with caplog.at_level(logging.ERROR):
        assert ladder.fall(RuntimeError("engine lost"))
    assert ladder.name == "second" and ladder.pipeline is not first
    messages = [r.getMessage() for r in ladder_messages(caplog)]
    assert messages[0].startswith("BACKEND FIRST FAILED WHILE RUNNING, DROPPING TO THE NEXT")
    assert messages[0].endswith("RuntimeError: engine lost")
    assert messages[1].startswith("INFERENCE RUNS ON SECOND, NOT ON THE BEST BACKEND")
    assert not ladder.fall(RuntimeError("again"))
    assert ladder.name == "second"


def test_fall_stays_put_when_no_rung_below_works() -> None:
    def broken() -> Pipeline:
        raise DeliberateFault("deliberate fault: broken rung")

    ladder = BackendLadder([cpu_rung("first"), Rung("second", broken)])
    ladder.start()
    assert not ladder.fall(RuntimeError("engine lost"))
    assert ladder.name == "first"


def test_no_rung_at_all_is_a_user_error() -> None:
    def broken() -> Pipeline:
        raise UserError("bundle.toml: broken on purpose")

    with pytest.raises(UserError, match=r"^no backend can run this bundle: only: bundle\.toml"):
        BackendLadder([Rung("only", broken)]).start()


def test_a_backend_failing_at_run_time_drops_the_show_without_freezing_the_screen(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The backend the show starts on fails for good 1 s in (the runtime's own fault hook, in
    # the real pipeline); the ladder's next rung is the real CPU backend.
    _bundle, conductor = brisk_conductor(hold=0.2, morph=0.5)
    ladder = BackendLadder(
        [cpu_rung("first"), cpu_rung("onnxruntime-cpu")], Faults(backend_crash_at=1.0)
    )
    ladder.start()
    display = TimedDisplay()
    display.open("test")
    started = time.monotonic()
    try:
        with caplog.at_level(logging.INFO):
            result = play(display, ladder, conductor, 60, 0.1, 3.0)
    finally:
        display.close()
    assert result.error is None
    assert ladder.name == "onnxruntime-cpu"
    assert result.restarts == 1
    assert any("BACKEND FIRST FAILED WHILE RUNNING" in r.getMessage() for r in caplog.records)
    # The show loop kept presenting while no frame came, and new frames came back. Measured
    # against the run itself, not the wall clock: a busy machine slows both sides alike.
    first_seen: dict[int, float] = {}
    for shown in display.shown:
        first_seen.setdefault(shown.serial, shown.at - started)
    arrivals = np.array(sorted(first_seen.values()))
    fall = int(np.argmax(np.diff(arrivals)))
    down, up = arrivals[fall], arrivals[fall + 1]
    assert down > 0.9, "the first backend ran until its fault"
    during = [s for s in display.shown if down < s.at - started < up]
    gaps = np.diff([s.at for s in display.shown])
    # However short the outage (the next rung may start within a few ticks on a quiet
    # machine), the display presented in it, and never paused as long as it lasted.
    assert during and gaps.max() < up - down, "the display never stopped presenting"
    assert len(arrivals) - fall > 5, "new frames came after the fall"
    rate_before = fall / (down - arrivals[0])
    rate_after = (len(arrivals) - fall - 2) / (arrivals[-1] - up)
    assert rate_after > 0.3 * rate_before, "frames from the second backend keep coming"
