"""Putting a show together: show file -> bundle -> pipeline -> conductor -> display.

Each command needs a different depth of this (``bench`` loads the bundle on several
backends, ``check`` and ``render`` need one pipeline, ``run`` everything), so it comes in
three steps that build on each other; ``run`` hands the parts to installation.player's
``RunningShow``, which wires and starts the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from installation.display import EXIT_DISPLAY_LOST, make_display
from installation.engine.bundle import Bundle, load_bundle
from installation.engine.ladder import BackendLadder, ladder_for
from installation.engine.mapping import conductor_for
from installation.output.feed import Output
from installation.player import RunningShow, lockstep
from installation.score.conductor import Conductor
from installation.score.show import Show, check_show_bundle, load_show
from installation.service.signals import RunSignals

log = logging.getLogger(__name__)


def load_parts(show_path: Path | None) -> tuple[Show, Bundle, Conductor]:
    """The show, its validated bundle manifest, and a conductor for its scenes. In a show in
    lockstep (``[sync]``) every change takes effect ``delay`` seconds after it is made, so that
    the leader's announcement reaches every PC before the frame it changes."""
    show = load_show(show_path)
    bundle = load_bundle(show.bundle)
    check_show_bundle(show, len(bundle.stages), bundle.w)
    sync = lockstep(show)
    return show, bundle, conductor_for(show, bundle, delay=0.0 if sync is None else sync.delay)


def open_show(show_path: Path | None) -> tuple[Show, BackendLadder, Conductor]:
    """As ``load_parts``, with every stage loaded and checked on the best backend that
    works (the show's ``[engine] backend``)."""
    show, bundle, conductor = load_parts(show_path)
    engine = show.engine
    ladder = ladder_for(bundle, engine.backend, engine.threads or None, engine.engines)
    ladder.start()
    return show, ladder, conductor


def run_show(
    show_path: Path | None,
    mode: str | None,
    duration: float | None,
    signals: RunSignals,
    outputs: Sequence[Output] = (),
) -> int:
    """Play a show until quit or ``duration``; the exit code for the command line.
    ``signals`` were installed first thing, and hold what came while the show loaded;
    ``outputs`` make feeds of the screen (``--record``)."""
    show, ladder, conductor = open_show(show_path)
    display = make_display(
        mode or show.display.mode, _window_size(show, mode), show.display, show.outputs
    )
    running = RunningShow.for_show(show, ladder, conductor, display, signals)
    running.outputs.extend(outputs)
    result = running.play(duration)
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


def _window_size(show: Show, mode: str | None) -> tuple[int, int] | None:
    """The show's window size for windowed mode; other modes use their own defaults."""
    return show.display.window_size if (mode or show.display.mode) == "windowed" else None
