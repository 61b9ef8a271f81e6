"""The running show: one object wires its parts, starts them in order, stops them in reverse.

A show is one display loop (installation.loop) among threads: the inference worker under its
supervisor fills the frame queue from the conductor's plans, the service watches both and
reports, OSC and the reloader steer the conductor. ``RunningShow`` is the one place that
builds them, so each part is handed only what it uses and ``installation run``, the tests and
``installation bench`` play the same wiring. Each stop is registered as its part starts: if a
start fails half-way, what did start is stopped, in reverse order:

  start: display, feeds (--record, NDI, the frame trace), (in a room: the conductor on the
         room's clock), OSC, web, sync peer and reloader (SIGHUP), conductor clock, worker,
         service (SIGTERM)
  stop:  service (last record), worker, web, OSC, sync peer and reloader, feeds (file
         finished), display

The web server reads the running show through plain callables built here (``web_sources``):
the health record, the monitor's verdict, the metrics' ``sample``, what is on screen.

A show in lockstep with other PCs (``[sync]``) plays on the room's show time, a
``SharedClock`` made before the sync peer starts (a follower adopts the leader's epoch as it
joins), with the loop's ticks on that clock's frame grid.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass

from installation.control.osc.server import OscServer
from installation.control.reload import Reloader
from installation.control.steering import ShowControl
from installation.control.sync.clock import SharedClock
from installation.control.web.logtail import LogTail
from installation.control.web.server import WebServer, WebSources
from installation.display import Display, DisplayLost
from installation.display.gpu_texture import GpuFrames
from installation.engine.frames import FrameQueue
from installation.engine.ladder import BackendLadder
from installation.engine.paint import mosaic_size
from installation.engine.pipeline import Pipeline
from installation.engine.quality import AdaptiveQuality, QualityPolicy
from installation.engine.supervisor import WorkerSupervisor
from installation.engine.worker import InferenceWorker
from installation.loop import LoopStats, RunResult, ScreenTap, ShowClock, run_loop
from installation.output.feed import Output, ScreenFeed
from installation.output.ndi import ndi_outputs
from installation.output.thumbnail import Thumbnails
from installation.output.trace import frame_trace
from installation.score.conductor import Conductor
from installation.score.show import Show
from installation.score.sync_settings import SyncSettings
from installation.service.health import Record
from installation.service.lifecycle import Service
from installation.service.metrics import metrics_exposition
from installation.service.signals import RunSignals

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Playing:
    """The parts ``_run`` makes for one play, kept for ``sample`` to read."""

    stats: LoopStats
    worker: WorkerSupervisor
    queue: FrameQueue


class RunningShow:
    """The parts of one show while it plays; ``play`` runs it once.

    Built bare (tests, ``installation bench``), it plays on a display the caller opened, with a
    service that talks to nobody and nothing to steer it; ``for_show`` builds the whole show of
    ``installation run``, which also opens and closes the display.
    """

    def __init__(
        self,
        display: Display,
        engine: Pipeline | BackendLadder,
        conductor: Conductor,
        fps: float,
        lead: float,
        service: Service | None = None,
        quality: AdaptiveQuality | None = None,
    ) -> None:
        self.display = display
        self.ladder = engine if isinstance(engine, BackendLadder) else BackendLadder.holding(engine)
        self.conductor = conductor
        self.fps = fps
        self.lead = lead
        self.service = service or Service()
        self.quality = quality
        self.show: Show | None = None
        self.control: ShowControl | None = None
        self.signals: RunSignals | None = None
        #: The room's show time when the show plays in lockstep; None: a ``ShowClock`` of its
        #: own, started with the loop.
        self.clock: SharedClock | None = None
        self.screen = ScreenTap()
        #: What makes each feed of the screen (``run --record``, NDI) when the show plays.
        self.outputs: list[Output] = []
        #: The whole picture's (width, height): every stage run; ``for_show`` adds a grid's cells.
        self.picture_size = self.ladder.pipeline.bundle.output_size
        self._playing: _Playing | None = None
        self._exposition: Callable[[], tuple[bytes, str]] | None = None

    @classmethod
    def for_show(
        cls,
        show: Show,
        ladder: BackendLadder,
        conductor: Conductor,
        display: Display,
        signals: RunSignals,
    ) -> RunningShow:
        """``installation run``'s show on a started ``ladder``: systemd and the health record,
        OSC and reloads, and ``signals``, installed first thing, with what came during loading."""
        running = cls(
            display,
            ladder,
            conductor,
            show.display.fps,
            show.engine.lead,
            None,
            adaptive_quality(show, ladder, conductor),
        )
        running.show = show
        running.signals = signals
        running.service = Service.for_run(show, running.describe, signals)
        if lockstep(show) is not None:
            running.clock = SharedClock()
        running.control = ShowControl(
            show,
            conductor,
            ladder.pipeline.bundle,
            running.service.reload,
            running.web_sources(),
            running.clock,
        )
        running.picture_size = mosaic_size(running.picture_size, *show.display.grid)
        running.outputs += ndi_outputs(show.ndi, running.picture_size, running.fps)
        return running

    def web_sources(self) -> WebSources:
        """What the web server reads of this show; each part is read when a request asks."""
        return WebSources(
            status=self.status_record,
            health=self.health,
            metrics=self.exposition,
            thumbnails=Thumbnails(self.screen.latest),
            log=LogTail(),
        )

    def describe(self) -> Record:
        """The show's part of the health record: only the running show knows all of it. A new
        field is added here and shown by installation.service.health.format_status."""
        record: Record = {"scene": self.conductor.status().scene, "backend": self.ladder.name}
        if self.quality is not None:
            quality = "adaptive" if self.quality.adaptive else "full"
            record["stages"] = {
                "used": self.quality.cap,
                "of": self.quality.full,
                "quality": quality,
            }
        if self.control is not None:
            record["osc"] = _listening(self.control.osc)
            record["web"] = _listening(self.control.web)
            if self.control.sync is not None:
                record["sync"] = self.control.sync.describe()
        return record

    def status_record(self) -> Record:
        """The last health record with the show's part of it as it is now (the scene may
        have changed since the record was made, up to 2 s ago)."""
        monitor = self.service.monitor
        latest = monitor.latest() if monitor is not None else None
        return {**(latest or {}), **self.describe()}

    def health(self) -> tuple[bool, str]:
        """Whether the display and the worker make progress (for /healthz), and if not why."""
        monitor = self.service.monitor
        return monitor.health() if monitor is not None else (False, "starting")

    def exposition(self) -> tuple[bytes, str]:
        """/metrics; the collectors are made at the first scrape, as most shows have none."""
        if self._exposition is None:
            self._exposition = metrics_exposition(self.sample)
        return self._exposition()

    def sample(self) -> Record:
        """The figures /metrics reports, read at scrape time: the counters straight from the
        parts that keep them, the rates from the monitor's last record."""
        monitor = self.service.monitor
        latest = (monitor.latest() if monitor is not None else None) or {}
        fps = latest.get("fps", {})
        playing = self._playing
        stages = len(self.ladder.pipeline.stages)
        osc = self.control.osc if self.control is not None else None
        return {
            "shown": playing.stats.shown if playing else 0,
            "late": playing.stats.late if playing else 0,
            "generated": playing.worker.generated if playing else 0,
            "dropped": latest.get("frames", {}).get("dropped", 0),
            "queue_depth": len(playing.queue) if playing else 0,
            "queue_capacity": playing.queue.capacity if playing else 0,
            "stages_used": self.quality.cap if self.quality else stages,
            "stages_of": self.quality.full if self.quality else stages,
            "backend": self.ladder.name,
            "worker_restarts": playing.worker.restarts if playing else 0,
            "backend_falls": self.ladder.falls,
            "osc": asdict(osc.stats) if osc is not None else None,
            "output_dropped": _dropped_by_kind(self.screen.feeds),
            "uptime": latest.get("uptime", 0.0),
            "fps_shown": fps.get("shown", 0.0),
            "fps_generated": fps.get("generated", 0.0),
        }

    def play(self, duration: float | None = None) -> RunResult:
        """Run the show until quit, ``duration`` seconds, the service finishing a stop
        (SIGTERM), the supervisor giving up on the inference worker, or the display going away
        (logged as an error while the service still records errors)."""
        with ExitStack() as started:
            if self.show is not None:
                self.display.open(self.show.title)
                started.callback(self.display.close)
                log.info("playing %s on %s", self.show.path, self.display.description)
            feeds = (
                started.enter_context(start(self.fps, self.picture_size)) for start in self.outputs
            )
            self.screen.feeds = tuple(feeds)
            self.screen.trace = frame_trace(self.conductor.scene_at, self.fps)
            if self.screen.trace is not None:
                started.callback(self.screen.trace.close)
            if self.clock is not None:
                # The room's show time runs already: the sync peer, which starts with the
                # controls, may install the leader's state before the first frame.
                self.conductor.start(self.clock)
            if self.control is not None:
                started.enter_context(self.control)
                if self.signals is not None:
                    self._reload_on_sighup(self.signals, self.control.reloader)
                    started.callback(self.signals.reloading, None)
            return self._run(duration)

    @staticmethod
    def _reload_on_sighup(signals: RunSignals, reloader: Reloader) -> None:
        """SIGHUP reloads from now on; one that came while the show loaded is passed on, as
        the file may have changed after it was read."""
        if signals.reloading(reloader.request):
            log.info("reload requested during start-up: reloading %s", reloader.show.path)
            reloader.request()

    def _run(self, duration: float | None) -> RunResult:
        clock = self.clock
        if clock is None:
            clock = ShowClock()  # fades and durations count from the first frame
            self.conductor.start(clock)
        queue = FrameQueue(max(4, int(self.lead * self.fps) + 4))
        self.conductor.on_cut(queue.invalidate)
        serials = itertools.count()
        gpu_frames = GpuFrames(self.display.gpu_offer, queue.capacity)
        worker = WorkerSupervisor(
            lambda: InferenceWorker(
                self.ladder.pipeline,
                self.conductor.plans_at,
                queue,
                clock,
                self.fps,
                self.lead,
                serials,
                self.quality,
                gpu_frames.ring(self.ladder.name, self.ladder.pipeline),
            ),
            fallback=self._fall,
        )
        stats = LoopStats(budget=1.0 / self.fps)
        self._playing = _Playing(stats, worker, queue)
        begun = time.monotonic()  # not show time: a follower's jumps to the leader's epoch
        lost: str | None = None
        with ExitStack() as started:
            started.callback(gpu_frames.free)  # last: after the worker that writes its ring
            worker.start()
            started.callback(worker.stop)
            started.callback(self.service.stop)
            self.service.start(stats, worker)
            try:
                run_loop(
                    self.display,
                    queue,
                    self.conductor,
                    worker,
                    clock,
                    stats,
                    duration,
                    self.service,
                    self.screen,
                    None if self.clock is None else self.fps,
                )
            except DisplayLost as exc:
                lost = str(exc)
                log.error("display lost: %s", lost)
        seconds = time.monotonic() - begun
        return RunResult(
            stats, seconds, worker.generated, worker.skipped, worker.error, worker.restarts, lost
        )

    def _fall(self, error: BaseException) -> bool:
        """Drop to the ladder's next backend; its stages run at another speed, so the
        quality's measurements start over."""
        moved = self.ladder.fall(error)
        if moved and self.quality is not None:
            self.quality.reset()
        return moved


def play(
    display: Display,
    engine: Pipeline | BackendLadder,
    conductor: Conductor,
    fps: float,
    lead: float,
    duration: float | None = None,
    service: Service | None = None,
    quality: AdaptiveQuality | None = None,
) -> RunResult:
    """A bare ``RunningShow`` played once on an open display: ``engine`` is a started ladder
    or one pipeline; ``quality`` caps the stages frames run (None: all the scenes ask for)."""
    return RunningShow(display, engine, conductor, fps, lead, service, quality).play(duration)


def adaptive_quality(show: Show, ladder: BackendLadder, conductor: Conductor) -> AdaptiveQuality:
    """The show's quality setting over the stages of its bundle, named with their sizes,
    judged against how fast the ``conductor`` moves the picture. In lockstep, every stage
    plays: each PC would judge its own speed, and the same frame would differ between them."""
    labels = [f"{s.spec.name} ({s.spec.output_size[0]} px)" for s in ladder.pipeline.stages]
    engine = show.engine
    policy = QualityPolicy(min_rate=engine.min_rate, max_step=engine.max_step)
    adaptive = engine.quality == "adaptive"
    if adaptive and lockstep(show) is not None:
        log.info('sync: every stage plays on every PC of the room (quality = "full")')
        adaptive = False
    return AdaptiveQuality(labels, policy, adaptive, motion=conductor.motion)


def lockstep(show: Show) -> SyncSettings | None:
    """The show's ``[sync]`` settings when it plays in lockstep with other PCs."""
    return show.sync if show.sync is not None and show.sync.enabled else None


def _dropped_by_kind(feeds: tuple[ScreenFeed, ...]) -> dict[str, int]:
    """Frames the feeds dropped, by their kind (``record``, ``ndi``)."""
    dropped: dict[str, int] = {}
    for feed in feeds:
        dropped[feed.kind] = dropped.get(feed.kind, 0) + feed.dropped
    return dropped


def _listening(server: OscServer | WebServer | None) -> Record:
    """Whether OSC or the web server listens, for the health record: the show plays on when
    a port cannot be bound (and the server tries again), so staff need to see that it cannot
    be steered."""
    if server is None:
        return {"state": "off"}
    bound = server.address
    host, port = bound if bound is not None else (server.settings.address, server.settings.port)
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return {"state": "not listening" if bound is None else "listening", "address": where}
