"""The show's figures in Prometheus' text format, for /metrics.

Integrators already watch their machines with Prometheus; a show that answers a scrape can
raise the same alerts as everything else (deploy/prometheus/installation-alerts.yml). The
figures are read when Prometheus asks, from the running show's ``sample`` (the counters the
display loop, the worker and OSC keep anyway): nothing is counted per frame for this, and a
show nobody scrapes pays nothing. Each exposition has a registry of its own, so two shows in
one process (tests) or a restarted web server never see each other's metrics, and no process
or platform collectors are added: the figures are the show's, not Python's.

GPU temperature, memory and load come from NVIDIA's NVML where nvidia-ml-py (the ``nvml``
extra) is installed and a driver answers; elsewhere there are none, said once in the log.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from installation.errors import first_line
from installation.ratelog import RateLimitedLog

log = logging.getLogger(__name__)

PREFIX = "installation_"
Sample = dict[str, Any]

#: (name without the prefix, what it is, key of the sample): counters, then gauges.
COUNTERS = (
    ("frames_shown", "Frames presented on screen (black ones outside opening hours too).", "shown"),
    ("late_ticks", "Display ticks that took more than twice their share of a second.", "late"),
    ("frames_generated", "Frames the inference worker finished.", "generated"),
    (
        "frames_dropped",
        "Screen refreshes the display loop missed since the first frame.",
        "dropped",
    ),
    ("worker_restarts", "Restarts of the inference worker after a failure.", "worker_restarts"),
    ("backend_falls", "Moves down the backend ladder after a backend failed.", "backend_falls"),
)
GAUGES = (
    ("display_frames_per_second", "Frames presented per second, over the last 2 s.", "fps_shown"),
    (
        "generated_frames_per_second",
        "Frames generated per second, over the last 2 s.",
        "fps_generated",
    ),
    ("queue_depth", "Frames generated ahead, waiting in the queue.", "queue_depth"),
    ("queue_capacity", "Frames the queue holds at most.", "queue_capacity"),
    ("stages_in_use", "Generator stages frames are made with now.", "stages_used"),
    ("stages_available", "Generator stages the bundle has.", "stages_of"),
    ("uptime_seconds", "Seconds since the show started.", "uptime"),
)


def metrics_exposition(
    sample: Callable[[], Sample],
    gpus: Callable[[], Sequence[GpuReading]] | None = None,
) -> Callable[[], tuple[bytes, str]]:
    """A function that returns the current exposition and its content type. ``gpus`` reads
    the GPUs; by default NVML's, where there is one."""
    registry = CollectorRegistry()
    registry.register(ShowCollector(sample))
    read = gpus or nvml_reader()
    if read is not None:
        registry.register(GpuCollector(read))
    return lambda: (generate_latest(registry), CONTENT_TYPE_LATEST)


class ShowCollector:
    """The show's counters and gauges, read from ``sample()`` at each scrape."""

    def __init__(self, sample: Callable[[], Sample]) -> None:
        self.sample = sample

    def collect(self) -> Iterator[Metric]:
        sample = self.sample()
        for name, help_text, key in COUNTERS:
            yield CounterMetricFamily(PREFIX + name, help_text, value=sample[key])
        for name, help_text, key in GAUGES:
            yield GaugeMetricFamily(PREFIX + name, help_text, value=sample[key])
        backend = GaugeMetricFamily(
            PREFIX + "backend_info", "The backend frames are generated on (1).", labels=["backend"]
        )
        backend.add_metric([sample["backend"]], 1)
        yield backend
        osc = sample.get("osc")
        if osc is not None:
            yield _by_kind(
                "osc_events",
                "OSC datagrams by what became of them (datagrams, refused, over_rate, malformed, "
                "accepted) and their messages (messages, unknown, rejected, unschedulable, "
                "failed).",
                osc,
            )
        yield _by_kind(
            "output_frames_dropped",
            "Frames a feed of the screen (record: run --record, ndi) dropped: it fell behind.",
            sample["output_dropped"],
        )


def _by_kind(name: str, help_text: str, counts: dict[str, int]) -> CounterMetricFamily:
    """A counter labelled ``kind``, one sample per entry of ``counts``."""
    family = CounterMetricFamily(PREFIX + name, help_text, labels=["kind"])
    for kind, count in counts.items():
        family.add_metric([kind], count)
    return family


@dataclass(frozen=True)
class GpuReading:
    """One GPU's figures at one moment."""

    index: int
    name: str
    temperature: float  # degrees Celsius
    memory_used: int  # bytes
    memory_total: int  # bytes
    utilisation: float  # share of the last sample period the GPU was busy, 0 to 1


class GpuCollector:
    """Gauges for each GPU ``read()`` returns, labelled with its index and name."""

    def __init__(self, read: Callable[[], Sequence[GpuReading]]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        gauges = {
            "temperature": ("gpu_temperature_celsius", "GPU temperature."),
            "memory_used": ("gpu_memory_used_bytes", "GPU memory in use (all processes)."),
            "memory_total": ("gpu_memory_total_bytes", "GPU memory in all."),
            "utilisation": ("gpu_utilisation_ratio", "Share of time the GPU was busy, 0 to 1."),
        }
        readings = self.read()
        for field, (name, help_text) in gauges.items():
            gauge = GaugeMetricFamily(PREFIX + name, help_text, labels=["gpu", "name"])
            for reading in readings:
                gauge.add_metric([str(reading.index), reading.name], getattr(reading, field))
            yield gauge


@functools.cache
def nvml_reader() -> Callable[[], list[GpuReading]] | None:
    """NVML's reading of every GPU, or None where there is no NVML to ask (said once in the
    log). NVML is started once per process and never shut down: each start counts, and the
    show may start its web server again on reload."""
    try:
        import pynvml
    except ImportError:
        log.info("no GPU figures on /metrics: nvidia-ml-py (the nvml extra) is not installed")
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        log.info("no GPU figures on /metrics: NVML does not answer: %s", first_line(exc))
        return None
    failures = RateLimitedLog(log, 3600.0)

    def read() -> list[GpuReading]:
        readings = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            try:
                device = pynvml.nvmlDeviceGetHandleByIndex(index)
                memory = pynvml.nvmlDeviceGetMemoryInfo(device)
                temperature = pynvml.nvmlDeviceGetTemperature(device, pynvml.NVML_TEMPERATURE_GPU)
                readings.append(
                    GpuReading(
                        index,
                        pynvml.nvmlDeviceGetName(device),
                        float(temperature),
                        int(memory.used),
                        int(memory.total),
                        pynvml.nvmlDeviceGetUtilizationRates(device).gpu / 100,
                    )
                )
            except pynvml.NVMLError as exc:
                failures.warning("read", f"GPU {index}: NVML cannot read it: {first_line(exc)}")
        return readings

    return read
