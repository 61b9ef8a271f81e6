"""Reloading the show file while the show plays.

Reloads come from
``/show/reload`` or SIGHUP and run on their own thread: reading a file must not hold up the
display (a signal handler runs on the display's thread) nor the OSC socket, and a burst of
requests becomes one reload. An edit that does not validate changes nothing: the error is
logged, with file, line and key, and the show plays on as it was. "Validates" means what the
next start would accept: the new show's bundle goes through the whole of ``installation
check`` (files, sha256, models, a sample), or a restart weeks later would exit on it.
Between reloads the same thread watches the files of the bundle in use
(``installation.engine.bundle_watch``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from installation.engine.bundle import Bundle, load_bundle
from installation.engine.bundle_check import check_bundle
from installation.engine.bundle_watch import INTERVAL, BundleWatch
from installation.errors import UserError
from installation.score.show import Show, check_show_bundle, load_show

log = logging.getLogger(__name__)


class Reloader:
    """Re-reads ``show``'s file on request and hands a valid result to ``apply``; between
    requests, looks every ``interval`` seconds whether ``bundle`` (the show's, as checked at
    its start or its last reload) still matches its files on disk."""

    def __init__(
        self,
        show: Show,
        bundle: Bundle,
        apply: Callable[[Show], None],
        interval: float = INTERVAL,
    ) -> None:
        self.show = show
        self.bundle = bundle
        #: Stages and latent space of the bundle that runs: a reloaded show's scenes must fit
        #: it now, and the reloaded bundle from the next start.
        self.stage_count = len(bundle.stages)
        self.playing_w = bundle.w
        self.apply = apply
        self.interval = interval
        self.reloads = 0
        self.failures = 0
        self.watch: BundleWatch | None = None
        self._requested = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reload", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._requested.set()
        self._thread.join(timeout=2.0)

    def request(self) -> None:
        """Ask for a reload; safe from any thread and from a signal handler."""
        self._requested.set()

    def _run(self) -> None:
        self.watch = BundleWatch(self.bundle)
        while True:
            requested = self._requested.wait(self.interval)
            if self._stopping.is_set():
                return
            if requested:
                self._requested.clear()
                self.reload()
            else:
                self.watch.look()

    def reload(self) -> None:
        path = self.show.path
        try:
            show = load_show(path)
            bundle = load_bundle(show.bundle)
            check_show_bundle(show, min(self.stage_count, len(bundle.stages)), self.playing_w)
            check_show_bundle(show, len(bundle.stages), bundle.w)  # and at the next start
            check_bundle(bundle)
        except UserError as exc:
            log.error("reload failed, the show plays on unchanged: %s", exc)
            self.failures += 1
            return
        for what, old, new in (
            ("bundle", _identity(self.bundle), _identity(bundle)),
            ("[display]", self.show.display, show.display),
            ("[engine]", self.show.engine, show.engine),
            ("[ndi]", self.show.ndi, show.ndi),
            ("[[outputs]]", self.show.outputs, show.outputs),
        ):
            if old != new:
                log.warning("reload: the new %s takes effect when the show restarts", what)
        self.show, self.bundle = show, bundle
        self.watch = BundleWatch(bundle)
        self.apply(show)
        self.reloads += 1
        log.info("reloaded %s: %d scene(s)", path, len(show.scenes))


def _identity(bundle: Bundle) -> tuple[object, ...]:
    """What makes two bundles the same models: the folder, and every stage (and a W bundle's
    mapping and average) as declared, sha256 included, so new files under the same names count
    as a new bundle."""
    return bundle.path.resolve(), bundle.stages, bundle.w
