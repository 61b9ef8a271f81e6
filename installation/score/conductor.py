"""The conductor: the one state machine that owns the current scene and its parameters.

Three kinds of caller meet here, each on its own thread: the inference worker asks what to
draw for show times just ahead of the screen (``plans_at``), the display asks once per tick
how bright the picture is (``tick``), and controllers (OSC, reload) change things. The state
is a single immutable ``Cue`` plus the blackout level and the freeze, swapped under a lock
that is only ever held for a few assignments, so no caller waits on another in any way that
shows.

Changes come in two kinds:

* Smooth changes (pace, truncation, intensity, beats) start at the *horizon*, the latest show
  time already handed to the worker. Frames already made stay valid, so nothing is thrown
  away and nothing jumps: the new value glides in from there.
* Cuts (scene, seed, next face, freeze) start *now*. Frames already queued for later times
  show the old state, so the cut listeners (the player) throw them away and wake the worker,
  and the change reaches the screen after one generation instead of after the whole queue.

Brightness (blackout, fades) is applied by the display at present time, so a blackout is on
screen at the next tick whatever is queued.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from installation.errors import UserError
from installation.score.breathing import FULL_INTENSITY, Modulation
from installation.score.cue import SMOOTHING, Cue, Score, begin
from installation.score.motion import pace
from installation.score.plan import Mosaic, Plan
from installation.score.ramp import Ramp
from installation.score.scenes import check_pace
from installation.score.show import Show
from installation.score.wspace import WSpace

log = logging.getLogger(__name__)

Clock = Callable[[], float]
#: Weight of the newest tick interval in the display-rate average: about a second at 60 Hz.
_RATE_WEIGHT = 1.0 / 60.0


@dataclass(frozen=True)
class Status:
    """What ``/status`` reports and the logs show: where the show is and how it runs."""

    scene: str
    number: int
    seed: int
    frames_per_second: float
    uptime: float
    blackout: bool
    frozen: bool
    #: Where the live controls are heading (they glide there): truncation, pace multiplier.
    truncation: float
    speed: float


class Conductor:
    """Owns the show's state; thread-safe; see the module docstring for the rules."""

    def __init__(
        self,
        show: Show,
        latent_size: int,
        distribution: str,
        entropy: int | None = None,
        wspace: WSpace | None = None,
    ) -> None:
        """``wspace`` is a W bundle's latent space (``installation.engine.mapping``), None
        for a Z bundle."""
        rows, self._columns = show.display.grid
        self._gutter = show.display.background
        streams = rows * self._columns
        score = Score(show.scenes, latent_size, distribution, wspace=wspace, streams=streams)
        if entropy is not None:
            score = replace(score, entropy=entropy)
        self._lock = threading.Lock()
        self._clock: Clock = lambda: 0.0
        self._cue = begin(score, 0, 0.0, 0, Modulation())
        self._master = Ramp.constant(1.0)
        self._dimmer = Ramp.constant(1.0)  # a desk's master fader, under the blackout
        self._blackout_seconds = 0.0
        self._frozen_at: float | None = None
        self._paused = 0.0
        self._horizon = 0.0
        self._interval = 0.0
        self._last_tick: float | None = None
        self._cut_listeners: tuple[Callable[[], None], ...] = ()

    # The player's side.

    def start(self, clock: Clock) -> None:
        """Follow ``clock`` (show time in seconds) from now on; the player calls this as it
        starts, so that fades and durations count from the first frame."""
        with self._lock:
            self._clock = clock
            cue = self._cue
        log.info("random seeds of this run come from entropy %d", cue.score.entropy)
        self._log_scene(cue)

    def on_cut(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (from the controller's thread) after every cut. The listeners are
        a tuple replaced whole, so a controller cutting meanwhile calls a consistent set."""
        self._cut_listeners = (*self._cut_listeners, listener)

    def plans_at(self, times: Sequence[float]) -> list[Plan]:
        """What to draw at each show time (a mosaic of every face stream's plan in a grid
        layout); for the inference worker."""
        with self._lock:
            cue, frozen_at, paused = self._cue, self._frozen_at, self._paused
            self._horizon = max(self._horizon, max(times, default=0.0))
        plans: list[Plan] = []
        for t in times:
            c = (t if frozen_at is None else min(t, frozen_at)) - paused
            playing = cue.governing(c)
            streams = playing.score.streams
            if streams == 1:
                plans.append(playing.plan_at(c))
            else:
                cells = tuple(playing.plan_at(c, k) for k in range(streams))
                plans.append(Mosaic(cells, self._columns, self._gutter))
        return plans

    def tick(self, now: float) -> float:
        """The brightness to present at show time ``now``; the display calls this once per
        frame, which also moves a playlist on to its next scene and measures the rate."""
        with self._lock:
            c = self._content(now)
            cue = self._cue.governing(c)
            if cue is not self._cue:
                self._cue = cue
                self._log_scene(cue)
            if self._last_tick is not None:
                interval = now - self._last_tick
                weight = _RATE_WEIGHT if self._interval else 1.0
                self._interval += weight * (interval - self._interval)
            self._last_tick = now
            return self._master.at(now) * self._dimmer.at(now) * cue.brightness_at(c)

    def motion(self) -> float:
        """How fast the picture moves at the present pace, in faces per second (the peak of
        ``installation.score.motion.pace``; 0 while frozen); adaptive quality asks on the
        inference worker's thread, for the frame it is about to make."""
        with self._lock:
            if self._frozen_at is not None:
                return 0.0
            c = self._content(max(self._clock(), self._horizon))
            cue = self._cue.governing(c)
        return pace(cue, c)

    def status(self) -> Status:
        with self._lock:
            now = self._clock()
            cue = self._cue.governing(self._content(now))
            return Status(
                scene=cue.scene.name,
                number=cue.index + 1,
                seed=cue.seed,
                frames_per_second=1.0 / self._interval if self._interval else 0.0,
                uptime=now,
                blackout=self._master.target < 1.0,
                frozen=self._frozen_at is not None,
                truncation=cue.truncation.target,
                speed=cue.walk.speed.target,
            )

    def face_reached(self) -> tuple[int, int] | None:
        """The face held now as (seed, index in the scene's walk), None while a morph or a
        transition is under way; outbound events ask a few times a second, so that reaching
        a face, which happens in show time and not on any caller's thread, costs the display
        nothing."""
        with self._lock:
            c = self._content(self._clock())
            cue = self._cue.governing(c)
        index, morphing = cue.walk.face_at(c)
        entering = cue.entry is not None and cue.entry.progress(c) is not None
        return None if morphing or entering else (cue.seed, index)

    # Controllers' side: cuts.

    def scene_names(self) -> list[str]:
        """The scenes of the show playing now. No lock: one read of ``_cue``, which is
        immutable and only ever replaced whole, is a consistent snapshot."""
        return [scene.name for scene in self._cue.score.scenes]

    def go_to_scene(self, target: str | int) -> None:
        """Change to the scene named ``target``, or numbered ``target`` counting from 1."""

        def change(cue: Cue, c: float) -> Cue:
            # Looked up under the lock, in the score the cut applies to: a reload may have
            # replaced the scenes since the request arrived.
            return cue.ending(c, _scene_index(cue.score, target)).governing(c)

        self._cut(change)

    def step_scene(self, step: int) -> None:
        """The next (``step`` 1) or previous (-1) scene in the show file, wrapping around."""

        def change(cue: Cue, c: float) -> Cue:
            target = (cue.index + step) % len(cue.score.scenes)
            return cue.ending(c, target).governing(c)

        self._cut(change)

    def next_face(self, seconds: float | None = None) -> None:
        self._cut(lambda cue, c: cue.next_face(c, seconds))

    def previous_face(self) -> None:
        """Back to the last face reached; refused (``UserError``) at the scene's first."""

        def change(cue: Cue, c: float) -> Cue:
            previous = cue.previous_face(c)
            if previous is None:
                raise UserError("this is the scene's first face: there is none before it")
            return previous

        self._cut(change)

    def set_seed(self, seed: int) -> None:
        self._cut(lambda cue, c: cue.reseeded(c, seed))

    def freeze(self, on: bool) -> None:
        """Stop (or restart) faces, breathing and playlists where they are."""
        with self._lock:
            now = self._clock()
            if on == (self._frozen_at is not None):
                return
            if on:
                self._frozen_at = now
            else:
                self._unfreeze(now)
            self._horizon = now
        self._notify_cut()

    # Controllers' side: smooth changes.

    def set_pace(
        self, hold: float | None = None, morph: float | None = None, speed: float | None = None
    ) -> None:
        """New hold or morph seconds, or speed multiplier, for the current scene; refused
        (``UserError``) by the same rule as a show file's, for the pace they would make."""

        def change(cue: Cue, c: float) -> Cue:
            trajectory = cue.walk.trajectory
            problem = check_pace(
                trajectory.hold if hold is None else hold,
                trajectory.morph if morph is None else morph,
                cue.walk.speed.target if speed is None else speed,
            )
            if problem:
                raise UserError(problem[1])
            return cue.with_pace(c, hold, morph, speed)

        self._smooth(change)

    def set_truncation(self, value: float) -> None:
        self._smooth(lambda cue, c: cue.with_truncation(c, value))

    def set_view(
        self, rotate: float | None = None, translate: tuple[float, float] | None = None
    ) -> None:
        """Turn (degrees) or move the picture, gliding; refused (``UserError``) where the
        bundle's synthesis takes no input transform (only StyleGAN3's does)."""
        space = self._cue.score.wspace
        if space is None or not space.transform:
            raise UserError("this bundle has no input transform (only StyleGAN3 bundles have one)")
        self._smooth(lambda cue, c: cue.with_view(c, rotate, translate))

    def set_intensity(self, value: float) -> None:
        def change(cue: Cue, c: float) -> Cue:
            ramp = cue.modulation.intensity.to(value, c, SMOOTHING["intensity"])
            return cue.with_modulation(Modulation(ramp, cue.modulation.beats))

        self._smooth(change)

    def beat(self, strength: float = 1.0) -> None:
        self._smooth(lambda cue, c: cue.with_modulation(cue.modulation.with_beat(c, strength)))

    # Controllers' side: brightness, applied by the display at present time.

    def blackout(self, on: bool, seconds: float | None = None) -> None:
        """Fade to (or back from) black over ``seconds``, by default the ``/fade`` time."""
        with self._lock:
            now = self._clock()
            fade = self._blackout_seconds if seconds is None else seconds
            self._master = self._master.to(0.0 if on else 1.0, now, fade)

    def set_blackout_fade(self, seconds: float) -> None:
        with self._lock:
            self._blackout_seconds = seconds

    def set_master(self, level: float) -> None:
        """A lighting desk's master dimmer, 0 to 1, multiplied into the blackout's level;
        it glides as quickly as intensity does, so a fader's steps do not flicker."""
        with self._lock:
            now = self._clock()
            self._dimmer = self._dimmer.to(level, now, SMOOTHING["intensity"])

    def restore(self) -> None:
        """Glide pace, truncation, intensity and the master dimmer back to the show's own
        values (the current scene's), as when a lighting desk lets go of the show."""

        def change(cue: Cue, c: float) -> Cue:
            scene = cue.scene
            cue = cue.with_pace(c, scene.hold, scene.morph, scene.speed)
            cue = cue.with_truncation(c, scene.truncation)
            ramp = cue.modulation.intensity.to(FULL_INTENSITY.target, c, SMOOTHING["intensity"])
            return cue.with_modulation(Modulation(ramp, cue.modulation.beats))

        self._smooth(change)
        self.set_master(1.0)

    # Reloading.

    def replace_show(self, show: Show) -> None:
        """Play the scenes of an edited show file, keeping the picture where it can.

        A scene with the current scene's name takes over gently (new pace and truncation
        glide in; a changed seed enters by the scene's transition); otherwise the show goes
        to its first scene as if cued.
        """
        with self._lock:
            old = self._cue.score
            score = replace(old, scenes=show.scenes)
            now = self._clock()
            c = self._content(now)
            cue = self._cue.governing(c)
            index = score.index_of(cue.scene.name)
            if index is None:
                moved = begin(score, 0, c, cue.serial + 1, cue.modulation, cue)
                self._cue = moved
            else:
                self._cue = _renewed(cue, score, index, c)
            self._horizon = now
            renewed = self._cue
        self._log_scene(renewed)
        self._notify_cut()

    # Internals.

    def _content(self, t: float) -> float:
        """Show time ``t`` without the frozen stretches: what cues count in."""
        if self._frozen_at is not None:
            t = min(t, self._frozen_at)
        return t - self._paused

    def _unfreeze(self, now: float) -> None:
        assert self._frozen_at is not None
        self._paused += now - self._frozen_at
        self._frozen_at = None

    def _cut(self, change: Callable[[Cue, float], Cue]) -> None:
        with self._lock:
            now = self._clock()
            c = self._content(now)
            before = self._cue.governing(c)
            cue = change(before, c)  # may refuse (UserError): then nothing has changed
            if self._frozen_at is not None:  # a cue for the picture ends a freeze
                self._unfreeze(now)  # content time stays c: it counts on from the frozen one
            self._cue = cue
            self._horizon = now
        if (cue.index, cue.serial, cue.seed) != (before.index, before.serial, before.seed):
            self._log_scene(cue)
        self._notify_cut()

    def _smooth(self, change: Callable[[Cue, float], Cue]) -> None:
        with self._lock:
            c = self._content(max(self._clock(), self._horizon))
            self._cue = change(self._cue, c)

    def _notify_cut(self) -> None:
        for listener in self._cut_listeners:
            listener()

    @staticmethod
    def _log_scene(cue: Cue) -> None:
        scene = cue.scene
        random = " (random)" if scene.seed is None else ""
        log.info("scene %d %r begins: seed %d%s", cue.index + 1, scene.name, cue.seed, random)


def _scene_index(score: Score, target: str | int) -> int:
    """The index of the scene named ``target``, or numbered ``target`` from 1, in ``score``."""
    if isinstance(target, str):
        index = score.index_of(target)
        if index is None:
            names = ", ".join(scene.name for scene in score.scenes)
            raise UserError(f"no scene is called {target!r}; scenes: {names}")
        return index
    if not 1 <= target <= len(score.scenes):
        raise UserError(f"no scene number {target}; scenes are 1 to {len(score.scenes)}")
    return target - 1


def _renewed(cue: Cue, score: Score, index: int, c: float) -> Cue:
    """``cue`` carried over into an edited show where its scene is scene ``index``."""
    scene = score.scenes[index]
    renewed = cue.with_pace(c, scene.hold, scene.morph, scene.speed)
    renewed = renewed.with_truncation(c, scene.truncation)
    renewed = renewed.with_view(c, scene.rotate, scene.translate)
    end = None if scene.duration is None else cue.started + scene.duration
    renewed = Cue(
        score=score,
        index=index,
        seed=renewed.seed,
        serial=renewed.serial,
        walk=renewed.walk,
        truncation=renewed.truncation,
        breathing=cue.breathing.to(scene.breathing, c, SMOOTHING["breathing"]),
        modulation=renewed.modulation,
        started=renewed.started,
        fade_in=renewed.fade_in,
        entry=renewed.entry,
        end=None if end is None else max(end, c),
        next_index=None if end is None else score.following(index),
        view=renewed.view,
    )
    seed = score.seed_for(scene, cue.serial)
    if scene.seed is not None and seed != cue.seed:
        renewed = renewed.reseeded(c, seed)
    return renewed
