"""Putting a show together: show file -> bundle -> pipeline -> trajectory -> display.

Each command needs a different depth of this (``bench`` loads the bundle on several
backends, ``check`` and ``render`` need one pipeline, ``run`` everything), so it comes in
three steps that build on each other.
"""

from __future__ import annotations

import logging
from pathlib import Path

from installation.backend import CPU, OnnxRuntimeBackend
from installation.bundle import Bundle, load_bundle
from installation.display import make_display
from installation.pipeline import Pipeline
from installation.player import play
from installation.show import Show, load_show
from installation.trajectory import Trajectory

log = logging.getLogger(__name__)


def load_parts(show_path: Path | None) -> tuple[Show, Bundle, Trajectory]:
    """The show, its validated bundle manifest, and the trajectory of its scene."""
    show = load_show(show_path)
    bundle = load_bundle(show.bundle)
    scene = show.scene
    trajectory = Trajectory(
        seed=scene.seed,
        latent_size=bundle.latent_size,
        hold=scene.hold,
        morph=scene.morph,
        easing=scene.easing,
        distribution=bundle.latent_distribution,
    )
    return show, bundle, trajectory


def open_show(show_path: Path | None) -> tuple[Show, Pipeline, Trajectory]:
    """As ``load_parts``, with every stage loaded and checked on the CPU backend."""
    show, bundle, trajectory = load_parts(show_path)
    backend = OnnxRuntimeBackend(CPU, show.engine.threads or None)
    return show, Pipeline.load(bundle, backend), trajectory


def run_show(show_path: Path | None, mode: str | None, duration: float | None) -> int:
    """Play a show until quit or ``duration``; the exit code for the command line."""
    show, pipeline, trajectory = open_show(show_path)
    display = make_display(mode or show.display.mode, _window_size(show, mode))
    display.open(show.title)
    log.info("playing %s on %s", show.path, display.description)
    try:
        result = play(display, pipeline, trajectory, show.display.fps, show.engine.lead, duration)
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
