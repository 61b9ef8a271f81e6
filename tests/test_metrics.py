"""/metrics as Prometheus reads it: the real exposition parsed by prometheus_client's own parser,
and the shipped alert rules checked against what we export, and run by promtool where the
Debian package ``prometheus`` provides it."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import DEFAULT_SHOW
from prometheus_client.parser import text_string_to_metric_families

from installation.display import HeadlessDisplay
from installation.engine.faults import Faults
from installation.engine.ladder import ladder_for
from installation.output.feed import ScreenFeed
from installation.player import RunningShow
from installation.service.lifecycle import Service
from installation.service.metrics import GpuReading, metrics_exposition, nvml_reader
from installation.session import load_parts

RULES = Path(__file__).parent.parent / "deploy" / "prometheus" / "installation-alerts.yml"
ALERTS = {
    "InstallationDown",
    "InstallationNoFrames",
    "InstallationBackendFell",
    "InstallationRestarting",
    "InstallationProgramRestarting",
}


def a_sample() -> dict[str, Any]:
    return {
        "shown": 5400,
        "late": 3,
        "generated": 2700,
        "dropped": 12,
        "queue_depth": 5,
        "queue_capacity": 10,
        "stages_used": 1,
        "stages_of": 2,
        "backend": "onnxruntime-cpu",
        "worker_restarts": 2,
        "backend_falls": 1,
        "osc": {"datagrams": 40, "refused": 1, "over_rate": 0, "accepted": 39, "messages": 39},
        "output_dropped": {"record": 4, "ndi": 0},
        "uptime": 90.5,
        "fps_shown": 59.9,
        "fps_generated": 30.1,
    }


def scrape(exposition: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition by (name, sorted labels), through the real parser."""
    body, content_type = exposition()
    assert content_type.startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_the_exposition_holds_the_sample_read_at_each_scrape() -> None:
    sample = a_sample()
    exposition = metrics_exposition(lambda: sample, gpus=list)
    values = scrape(exposition)
    expected = {
        "installation_frames_shown_total": 5400,
        "installation_late_ticks_total": 3,
        "installation_frames_generated_total": 2700,
        "installation_frames_dropped_total": 12,
        "installation_worker_restarts_total": 2,
        "installation_backend_falls_total": 1,
        "installation_display_frames_per_second": 59.9,
        "installation_generated_frames_per_second": 30.1,
        "installation_queue_depth": 5,
        "installation_queue_capacity": 10,
        "installation_stages_in_use": 1,
        "installation_stages_available": 2,
        "installation_uptime_seconds": 90.5,
    }
    for name, value in expected.items():
        assert values.pop((name, ())) == value, name
    assert values.pop(("installation_backend_info", (("backend", "onnxruntime-cpu"),))) == 1
    for kind, count in sample["osc"].items():
        assert values.pop(("installation_osc_events_total", (("kind", kind),))) == count
    for kind, count in sample["output_dropped"].items():
        assert values.pop(("installation_output_frames_dropped_total", (("kind", kind),))) == count
    assert values == {}, "nothing else: no process or platform collectors, no GPU here"

    sample.update(shown=5460, backend="onnxruntime-cuda", osc=None)
    values = scrape(exposition)
    assert values[("installation_frames_shown_total", ())] == 5460
    assert ("installation_backend_info", (("backend", "onnxruntime-cuda"),)) in values
    assert not any(name.startswith("installation_osc") for name, _ in values), "OSC is off"


def test_gpu_readings_are_gauges_labelled_with_the_gpu() -> None:
    reading = GpuReading(0, "NVIDIA H200", 41.0, 3 * 2**30, 141 * 2**30, 0.25)
    values = scrape(metrics_exposition(a_sample, gpus=lambda: [reading]))
    labels = (("gpu", "0"), ("name", "NVIDIA H200"))
    assert values[("installation_gpu_temperature_celsius", labels)] == 41.0
    assert values[("installation_gpu_memory_used_bytes", labels)] == 3 * 2**30
    assert values[("installation_gpu_memory_total_bytes", labels)] == 141 * 2**30
    assert values[("installation_gpu_utilisation_ratio", labels)] == 0.25


def test_nvml_gives_gpu_figures_where_it_answers_and_one_line_where_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nvml_reader.cache_clear()
    with caplog.at_level(logging.INFO, "installation.service.metrics"):
        values = scrape(metrics_exposition(a_sample))
        metrics_exposition(a_sample)  # a second server on reload asks NVML no more
    gpu = {labels for name, labels in values if name == "installation_gpu_temperature_celsius"}
    lines = [r.getMessage() for r in caplog.records if "GPU figures" in r.getMessage()]
    if nvml_reader() is None:
        assert gpu == set()
        assert len(lines) == 1 and lines[0].startswith("no GPU figures on /metrics: ")
    else:
        assert gpu and lines == []


def rules_document() -> Any:
    yaml = pytest.importorskip("yaml", reason="PyYAML (the test extra) reads the alert rules")
    return yaml.safe_load(RULES.read_text())


def rules() -> list[dict[str, Any]]:
    return [rule for group in rules_document()["groups"] for rule in group["rules"]]


def test_the_alert_rules_use_only_metrics_we_export() -> None:
    exported = {name for name, _ in scrape(metrics_exposition(a_sample, gpus=list))}
    found = {rule["alert"] for rule in rules()}
    assert found == ALERTS
    for rule in rules():
        used = set(re.findall(r"\b(installation_\w+)", rule["expr"]))
        assert used <= exported, f"{rule['alert']} uses {used - exported}"
        assert used or rule["expr"] == 'up{job="installation"} == 0'
        assert rule["annotations"]["summary"] and rule["labels"]["severity"]


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) is missing")
def test_promtool_accepts_the_rules_and_they_fire_when_they_should(tmp_path: Path) -> None:
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # promtool's unit tests compare annotations too; the firing is what is tested here.
    document = rules_document()
    yaml = pytest.importorskip("yaml")
    for group in document["groups"]:
        for rule in group["rules"]:
            del rule["annotations"]
    bare = tmp_path / "rules.yml"
    bare.write_text(yaml.safe_dump(document))
    target = 'job="installation",instance="kiosk:8080"'
    unit = {
        "rule_files": [str(bare)],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                # 1 minute playing at 60 frames/s, then a stuck display for 5 minutes; the
                # backend falls at 2 min; 4 worker restarts in the first 30 min; the program
                # starts over 4 times from 10 min on; the target goes away after 8 min.
                "input_series": [
                    {"series": f"up{{{target}}}", "values": "1x32 0x20"},
                    {
                        "series": f"installation_frames_shown_total{{{target}}}",
                        "values": "0+900x4 3600x20",
                    },
                    {
                        "series": f"installation_backend_falls_total{{{target}}}",
                        "values": "0x8 1x40",
                    },
                    {
                        "series": f"installation_worker_restarts_total{{{target}}}",
                        "values": "0 1 1 2 2 3 3 4x40",
                    },
                    {
                        "series": 'installation_frames_shown_total{job="installation",'
                        'instance="other:8080"}',
                        "values": "0+900x40 0+900x3 0+900x3 0+900x3 0+900x3 0+900x40",
                    },
                ],
                "alert_rule_test": [
                    *fired("InstallationNoFrames", "0m30s", "kiosk", []),
                    *fired("InstallationNoFrames", "3m", "kiosk", ["critical"]),
                    *fired("InstallationBackendFell", "1m", "kiosk", []),
                    *fired("InstallationBackendFell", "3m", "kiosk", ["warning"]),
                    *fired("InstallationRestarting", "1m", "kiosk", []),
                    *fired("InstallationRestarting", "3m", "kiosk", ["warning"]),
                    *fired("InstallationDown", "9m", "kiosk", []),
                    *fired("InstallationDown", "11m", "kiosk", ["critical"]),
                    *fired("InstallationProgramRestarting", "12m", "other", []),
                    *fired("InstallationProgramRestarting", "14m", "other", ["warning"]),
                ],
            }
        ],
    }
    tests = tmp_path / "tests.yml"
    tests.write_text(yaml.safe_dump(unit))
    done = subprocess.run(
        [PROMTOOL, "test", "rules", str(tests)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def fired(alert: str, at: str, host: str, severities: list[str]) -> list[dict[str, Any]]:
    """A promtool check that ``alert`` fires at ``at`` for ``host`` (or not, for none)."""
    labels = {"job": "installation", "instance": f"{host}:8080"}
    expected = [{"exp_labels": {**labels, "severity": s}} for s in severities]
    return [{"eval_time": at, "alertname": alert, "exp_alerts": expected}]


def test_a_playing_show_is_scraped_while_it_plays() -> None:
    # The real wiring: RunningShow.sample read by the exposition from another thread while
    # the display loop and the worker run; a recording whose sink is held up drops frames.
    show, bundle, conductor = load_parts(DEFAULT_SHOW)
    ladder = ladder_for(bundle, "onnxruntime-cpu", None, None, Faults()).start()
    display = HeadlessDisplay((64, 36))
    display.open("test")
    service = Service()
    running = RunningShow(display, ladder, conductor, show.display.fps, 0.1, service)
    held = threading.Event()
    running.outputs.append(
        lambda *_: ScreenFeed("record", "recording held.mp4", lambda *_: held.wait())
    )
    recorded = ("installation_output_frames_dropped_total", (("kind", "record"),))
    seen: list[tuple[dict[Any, float], tuple[bool, str]]] = []

    def scrape_until_playing() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            values = scrape(running.exposition)
            health = running.health()
            generated = values[("installation_frames_generated_total", ())]
            if generated > 0 and health[0] and values.get(recorded, 0) > 0:
                seen.append((values, health))
                break
            time.sleep(0.05)
        held.set()
        service.request_stop()

    scraper = threading.Thread(target=scrape_until_playing)
    scraper.start()
    try:
        running.play(30.0)
    finally:
        scraper.join()
        display.close()
    [(values, health)] = seen
    assert health == (True, "ok")
    assert values[("installation_frames_shown_total", ())] > 0
    assert values[("installation_backend_info", (("backend", "onnxruntime-cpu"),))] == 1
    assert values[("installation_queue_capacity", ())] > 0
    assert values[("installation_stages_available", ())] >= 1
