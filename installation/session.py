"""Putting a show together: show file -> bundle -> pipeline -> conductor -> display.

Each command needs a different depth of this (``bench`` loads the bundle on several
backends, ``check`` and ``render`` need one pipeline, ``run`` everything), so it comes in
three steps that build on each other.
"""

from __future__ import annotations

import logging
from pathlib import Path

from installation.bundle import Bundle, load_bundle
from installation.conductor import Conductor
from installation.control import ShowControl
from installation.display import make_display
from installation.engine import start_pipeline
from installation.pipeline import Pipeline
from installation.player import play
from installation.service.lifecycle import Service
from installation.show import Show, check_show_bundle, load_show

log = logging.getLogger(__name__)


def load_parts(show_path: Path | None) -> tuple[Show, Bundle, Conductor]:
    """The show, its validated bundle manifest, and a conductor for its scenes."""
    show = load_show(show_path)
    bundle = load_bundle(show.bundle)
    check_show_bundle(show, len(bundle.stages))
    return show, bundle, Conductor(show, bundle.latent_size, bundle.latent_distribution)


def open_show(show_path: Path | None) -> tuple[Show, Pipeline, Conductor]:
    """As ``load_parts``, with every stage loaded and checked on the GPU, or the CPU."""
    show, bundle, conductor = load_parts(show_path)
    return show, start_pipeline(bundle, show.engine.threads or None), conductor


def run_show(show_path: Path | None, mode: str | None, duration: float | None) -> int:
    """Play a show until quit or ``duration``; the exit code for the command line."""
    show, pipeline, conductor = open_show(show_path)
    display = make_display(mode or show.display.mode, _window_size(show, mode))
    display.open(show.title)
    log.info("playing %s on %s", show.path, display.description)
    service = Service.for_run(show, pipeline.backend_name, lambda: conductor.status().scene)
    try:
        with ShowControl(show, conductor, len(pipeline.stages), service.reload):
            result = play(
                display,
                pipeline,
                conductor,
                show.display.fps,
                show.engine.lead,
                duration,
                service,
            )
    finally:
        display.close()
    stats = result.stats
    log.info(
        "played %.1f s: %d frames shown (%d blended, %d held), %d generated, %d skipped, "
        "%d ticks over twice their budget, longest %.1f ms",
        result.seconds,
        stats.shown,
        stats.blended,
        stats.held,
        result.generated,
        result.skipped,
        stats.late,
        stats.max_interval * 1e3,
    )
    if result.error is not None:
        log.error("stopped because the inference worker failed: %s", result.error)
        return 1
    return 0


def _window_size(show: Show, mode: str | None) -> tuple[int, int] | None:
    """The show's window size for windowed mode; other modes use their own defaults."""
    return show.display.window_size if (mode or show.display.mode) == "windowed" else None
