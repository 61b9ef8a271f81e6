"""Putting a show together: show file -> bundle -> pipeline -> conductor -> display.

Each command needs a different depth of this (``bench`` loads the bundle on several
backends, ``check`` and ``render`` need one pipeline, ``run`` everything), so it comes in
three steps that build on each other.
"""

from __future__ import annotations

import logging
from pathlib import Path

from installation.control.osc.server import OscServer
from installation.control.steering import ShowControl
from installation.display import EXIT_DISPLAY_LOST, make_display
from installation.engine.bundle import Bundle, load_bundle
from installation.engine.ladder import BackendLadder, ladder_for
from installation.engine.quality import AdaptiveQuality, QualityPolicy
from installation.player import play
from installation.score.conductor import Conductor
from installation.score.show import Show, check_show_bundle, load_show
from installation.service.health import Record
from installation.service.lifecycle import Service
from installation.service.signals import RunSignals

log = logging.getLogger(__name__)


def load_parts(show_path: Path | None) -> tuple[Show, Bundle, Conductor]:
    """The show, its validated bundle manifest, and a conductor for its scenes."""
    show = load_show(show_path)
    bundle = load_bundle(show.bundle)
    check_show_bundle(show, len(bundle.stages))
    return show, bundle, Conductor(show, bundle.latent_size, bundle.latent_distribution)


def open_show(show_path: Path | None) -> tuple[Show, BackendLadder, Conductor]:
    """As ``load_parts``, with every stage loaded and checked on the best backend that
    works (the show's ``[engine] backend``)."""
    show, bundle, conductor = load_parts(show_path)
    engine = show.engine
    ladder = ladder_for(bundle, engine.backend, engine.threads or None, engine.engines)
    ladder.start()
    return show, ladder, conductor


def run_show(
    show_path: Path | None, mode: str | None, duration: float | None, signals: RunSignals
) -> int:
    """Play a show until quit or ``duration``; the exit code for the command line.
    ``signals`` were installed first thing, and hold what came while the show loaded."""
    show, ladder, conductor = open_show(show_path)
    quality = _quality(show, ladder)
    display = make_display(mode or show.display.mode, _window_size(show, mode))
    display.open(show.title)
    log.info("playing %s on %s", show.path, display.description)

    def details() -> Record:
        stages = {"used": quality.cap, "of": quality.full, "quality": show.engine.quality}
        return {"backend": ladder.name, "stages": stages, "osc": _osc_state(control.osc)}

    service = Service.for_run(show, details, lambda: conductor.status().scene, signals)
    control = ShowControl(show, conductor, ladder.pipeline.bundle, service.reload)
    try:
        with control:
            if signals.take_reload():
                # The file may have changed after it was read at start-up: read it again.
                log.info("reload requested during start-up: reloading %s", show.path)
                control.reloader.request()
            result = play(
                display,
                ladder,
                conductor,
                show.display.fps,
                show.engine.lead,
                duration,
                service,
                quality,
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
    if result.display_lost is not None:
        return EXIT_DISPLAY_LOST
    if result.error is not None:
        log.error("stopped because the inference worker failed: %s", result.error)
        return 1
    return 0


def _osc_state(server: OscServer | None) -> Record:
    """Whether OSC listens, for the health record: the show plays on when its port cannot be
    bound (and the server tries again), so staff need to see that it cannot be steered."""
    if server is None:
        return {"state": "off"}
    bound = server.address
    host, port = bound if bound is not None else (server.settings.address, server.settings.port)
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return {"state": "not listening" if bound is None else "listening", "address": where}


def _quality(show: Show, ladder: BackendLadder) -> AdaptiveQuality:
    """The show's quality setting over the stages of its bundle, named with their sizes."""
    labels = [f"{s.spec.name} ({s.spec.output_size[0]} px)" for s in ladder.pipeline.stages]
    policy = QualityPolicy(min_rate=show.engine.min_rate)
    return AdaptiveQuality(labels, policy, adaptive=show.engine.quality == "adaptive")


def _window_size(show: Show, mode: str | None) -> tuple[int, int] | None:
    """The show's window size for windowed mode; other modes use their own defaults."""
    return show.display.window_size if (mode or show.display.mode) == "windowed" else None
