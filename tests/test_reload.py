"""SIGHUP reloads the show file of a running ``installation run``; a broken edit is logged
with file, line and key, and the show plays on to a clean exit. A reload is refused for what
would fail the next start (its bundle goes through ``installation check``), and between
reloads the files of the bundle in use are watched for changes."""

from __future__ import annotations

import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import DEFAULT_BUNDLE

from installation.control.reload import Reloader
from installation.engine.bundle import load_bundle
from installation.engine.bundle_watch import BundleWatch
from installation.score.show import Show, load_show

SHOW = f"""
bundle = "{DEFAULT_BUNDLE}"

[osc]
port = 0

[[scenes]]
name = "a"
seed = 1
"""


def test_sighup_reloads_and_keeps_playing_through_a_broken_edit(tmp_path: Path) -> None:
    path = tmp_path / "show.toml"
    path.write_text(SHOW)
    process = subprocess.Popen(
        [sys.executable, "-m", "installation", "run", str(path), "--headless", "--duration", "4"],
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stderr is not None
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stderr], daemon=True
    ).start()
    seen: list[str] = []

    def wait_for(text: str) -> str:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} in the log:\n{''.join(seen)}")

    try:
        wait_for("osc: listening on")
        path.write_text(SHOW.replace('name = "a"', 'name = "b"'))
        process.send_signal(signal.SIGHUP)
        wait_for("scene 1 'b' begins")
        wait_for(f"reloaded {path}")
        path.write_text(SHOW.replace("seed = 1", "seed = 1\ntruncation = 7"))
        process.send_signal(signal.SIGHUP)
        failed = wait_for("reload failed")
        assert f"{path}:10: scenes[0].truncation: expected 0 to 1, got 7" in failed
        path.write_text(SHOW.replace(str(DEFAULT_BUNDLE), str(tmp_path / "gone")))
        process.send_signal(signal.SIGHUP)
        failed = wait_for("reload failed")
        assert f"{tmp_path / 'gone'}: bundle folder not found" in failed
        assert process.wait(timeout=15) == 0
    finally:
        process.kill()
    assert "Traceback" not in "".join(seen)


def reloader(show_path: Path) -> tuple[Reloader, list[Show]]:
    """A reloader over the show as it is now, handing reloaded shows to the returned list."""
    show = load_show(show_path)
    applied: list[Show] = []
    return Reloader(show, load_bundle(show.bundle), applied.append), applied


def flip_a_byte(model: Path) -> bytes:
    original = model.read_bytes()
    data = bytearray(original)
    data[-100] ^= 0xFF
    model.write_bytes(bytes(data))
    return original


def break_by_folder(show: Path, bundle: Path) -> Callable[[], None]:
    text = show.read_text()
    show.write_text(text.replace('bundle = "bundle"', 'bundle = "gone"'))
    return lambda: show.write_text(text)


def break_by_sha256(show: Path, bundle: Path) -> Callable[[], None]:
    model = bundle / "refine-256.onnx"
    original = flip_a_byte(model)
    return lambda: model.write_bytes(original)


def break_by_range(show: Path, bundle: Path) -> Callable[[], None]:
    manifest = bundle / "bundle.toml"
    text = manifest.read_text()
    manifest.write_text(text.replace("range = [-1.0, 1.0]", "range = [0.0, 255.0]", 1))
    return lambda: manifest.write_text(text)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (break_by_folder, "gone: bundle folder not found"),
        (break_by_sha256, "refine-256.onnx: sha256 mismatch"),
        (break_by_range, "generator.onnx: stage 'generator' uses 0."),
    ],
)
def test_a_reload_refuses_what_the_next_start_would_refuse(
    show_copy: Path,
    bundle_copy: Path,
    caplog: pytest.LogCaptureFixture,
    damage: Callable[[Path, Path], Callable[[], None]],
    message: str,
) -> None:
    reload, applied = reloader(show_copy)
    repair = damage(show_copy, bundle_copy)
    with caplog.at_level(logging.INFO, "installation.control.reload"):
        reload.reload()
        assert (applied, reload.failures) == ([], 1)
        [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert error.getMessage().startswith("reload failed, the show plays on unchanged: ")
        assert message in error.getMessage()
        assert "\n" not in error.getMessage()
        repair()
        reload.reload()
    assert len(applied) == 1 and reload.reloads == 1
    assert "takes effect when the show restarts" not in caplog.text


def test_a_reload_onto_other_model_files_says_they_take_effect_at_the_restart(
    show_copy: Path, bundle_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reload, applied = reloader(show_copy)
    shutil.copytree(bundle_copy, bundle_copy.parent / "other")
    show_copy.write_text(show_copy.read_text().replace('bundle = "bundle"', 'bundle = "other"'))
    with caplog.at_level(logging.INFO, "installation.control.reload"):
        reload.reload()
    assert len(applied) == 1
    assert "reload: the new bundle takes effect when the show restarts" in caplog.text


def test_the_reload_thread_does_the_checking(
    show_copy: Path, bundle_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reload, _ = reloader(show_copy)
    break_by_sha256(show_copy, bundle_copy)
    with caplog.at_level(logging.INFO, "installation.control.reload"):
        reload.start()
        try:
            reload.request()
            deadline = time.monotonic() + 10
            while reload.failures == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            reload.stop()
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error.threadName == "reload" != threading.current_thread().name


def settled(watch: BundleWatch) -> list[str]:
    """The news of the look after the one that saw files move (a change is judged once it
    stood still for a look)."""
    assert watch.look() == []
    return watch.look()


def test_the_watch_reports_each_change_to_the_loaded_files_once(
    bundle_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = bundle_copy / "refine-256.onnx"
    watch = BundleWatch(load_bundle(bundle_copy))
    assert watch.look() == []
    os.utime(model)  # touched, same bytes: hashed again, nothing to say
    assert settled(watch) == []
    original = flip_a_byte(model)
    [news] = settled(watch)
    assert news.startswith(f"{model}: changed (sha256 now ")
    assert "since the show loaded bundle faces-256" in news
    assert watch.look() == []  # once per change
    with caplog.at_level(logging.INFO, "installation.engine.bundle_watch"):
        model.write_bytes(original)
        assert settled(watch) == []
    assert f"{model} is back as the show loaded it" in caplog.text
    model.unlink()
    assert [news.split(";")[0] for news in settled(watch)] == [
        f"{model}: removed since the show loaded bundle faces-256"
    ]
    manifest = bundle_copy / "bundle.toml"
    manifest.write_text(manifest.read_text() + "# edited\n")
    [news] = settled(watch)
    assert news.startswith(f"{manifest}: changed")


def test_the_watch_hashes_only_files_whose_size_or_time_changed(bundle_copy: Path) -> None:
    """The price of a cheap look: a same-size rewrite that keeps the modification time (which
    copying tools do only when asked to) is not seen until the time changes."""
    model = bundle_copy / "refine-256.onnx"
    watch = BundleWatch(load_bundle(bundle_copy))
    assert watch.look() == []
    before = model.stat()
    flip_a_byte(model)
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert settled(watch) == []
    os.utime(model)
    assert len(settled(watch)) == 1


def test_a_running_reloader_reports_a_changed_model_once_as_an_error(
    show_copy: Path, bundle_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    show = load_show(show_copy)
    reload = Reloader(show, load_bundle(show.bundle), lambda show: None, interval=0.02)
    with caplog.at_level(logging.INFO, "installation.engine.bundle_watch"):
        reload.start()
        try:
            model = bundle_copy / "generator.onnx"
            changed = bundle_copy / "generator.onnx.new"
            changed.write_bytes(model.read_bytes()[:-1])
            os.replace(changed, model)
            deadline = time.monotonic() + 10
            while not caplog.records and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.2)  # about ten more looks, on a machine that keeps up
        finally:
            reload.stop()
    [record] = caplog.records
    # An error reaches the health record's last_error (installation.service.lifecycle).
    assert record.levelno == logging.ERROR and record.threadName == "reload"
    assert "generator.onnx: changed" in record.getMessage()


def test_a_change_between_the_load_and_the_watch_is_seen(bundle_copy: Path) -> None:
    bundle = load_bundle(bundle_copy)
    flip_a_byte(bundle_copy / "generator.onnx")
    [news] = BundleWatch(bundle).look()
    assert "generator.onnx: changed" in news
