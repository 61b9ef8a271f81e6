"""The conductor: the one state machine that owns the current scene and its parameters.

Three kinds of caller meet here, each on its own thread: the inference worker asks what to
draw for show times just ahead of the screen (``plans_at``), the display asks once per tick
how bright the picture is (``tick``), and controllers (OSC, reload, a sync leader) change
things. The state is one immutable ``Snapshot`` (``installation.score.snapshot``): the
``State`` in force and the changes scheduled for later show times, swapped under a lock that
is only ever held for a few assignments, so no caller waits on another in any way that shows.

A change takes effect ``delay`` seconds after it is asked for (0 on a single screen): every
screen of a room then receives the leader's state before the frame it changes, and all switch
on the same frame. Changes come in two kinds:

* Smooth changes (pace, truncation, intensity, beats) start at that time or at the
  *horizon*, the latest show time already handed to the worker, whichever is later. Frames
  already made stay valid, so nothing is thrown away and nothing jumps: the new value glides
  in from there.
* Cuts (scene, seed, next face, freeze) start at that time. Frames already queued for later
  times show the old state, so the cut listeners (the player) throw those away and wake the
  worker, and the change reaches the screen after one generation instead of after the whole
  queue; frames for earlier times are kept.

Brightness (blackout, fades) is applied by the display at present time, so a blackout is on
screen at the first tick at or after its time whatever is queued.
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
from installation.score.scenes import check_pace
from installation.score.show import Show
from installation.score.snapshot import Snapshot, State, check_near
from installation.score.wspace import WSpace

log = logging.getLogger(__name__)

Clock = Callable[[], float]
#: Called with the show time from which queued frames no longer hold (-inf: all of them).
CutListener = Callable[[float], None]
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
        *,
        delay: float = 0.0,
    ) -> None:
        """``wspace`` is a W bundle's latent space (``installation.engine.mapping``), None
        for a Z bundle; ``delay`` is the seconds between a change and its show time."""
        rows, self._columns = show.display.grid
        self._gutter = show.display.background
        streams = rows * self._columns
        score = Score(show.scenes, latent_size, distribution, wspace=wspace, streams=streams)
        if entropy is not None:
            score = replace(score, entropy=entropy)
        self._delay = delay
        self._lock = threading.Lock()
        self._clock: Clock = lambda: 0.0
        self._timeline = Snapshot(State(begin(score, 0, 0.0, 0, Modulation())))
        self._horizon = 0.0
        self._interval = 0.0
        self._last_tick: float | None = None
        self._leader: str | None = None
        self._cut_listeners: tuple[CutListener, ...] = ()
        self._change_listeners: tuple[Callable[[], None], ...] = ()

    # The player's side.

    def start(self, clock: Clock) -> None:
        """Follow ``clock`` (show time in seconds) from now on; the player calls this as it
        starts, so that fades and durations count from the first frame."""
        with self._lock:
            self._clock = clock
            cue = self._timeline.current.cue
        log.info("random seeds of this run come from entropy %d", cue.score.entropy)
        self._log_scene(cue)

    def on_cut(self, listener: CutListener) -> None:
        """Call ``listener`` after every cut (on the thread that made it: a controller's, or
        the sync peer's installing a leader's state) with the show time from which queued
        frames are no longer valid (-inf: all of them). The listeners are a tuple replaced
        whole, so a controller cutting meanwhile calls a consistent set."""
        self._cut_listeners = (*self._cut_listeners, listener)

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (from the controller's thread, the lock released) after every
        change a controller made: a sync leader sends its state from there. Not after
        ``install``, nor when a playlist moves on by itself (that follows from the state)."""
        self._change_listeners = (*self._change_listeners, listener)

    def plans_at(self, times: Sequence[float]) -> list[Plan]:
        """What to draw at each show time (a mosaic of every face stream's plan in a grid
        layout); for the inference worker."""
        with self._lock:
            timeline = self._timeline
            self._horizon = max(self._horizon, max(times, default=0.0))
        plans: list[Plan] = []
        for t in times:
            state = timeline.at(t)
            c = state.content(t)
            playing = state.cue.governing(c)
            streams = playing.score.streams
            if streams == 1:
                plans.append(playing.plan_at(c))
            else:
                cells = tuple(playing.plan_at(c, k) for k in range(streams))
                plans.append(Mosaic(cells, self._columns, self._gutter))
        return plans

    def tick(self, now: float) -> float:
        """The brightness to present at show time ``now``; the display calls this once per
        frame, which also makes the changes due current, moves a playlist on to its next
        scene (``State.settled``) and measures the rate."""
        with self._lock:
            timeline = self._timeline.promoted(now)
            state = timeline.current.settled(now)
            if state is not timeline.current:
                if _begins(timeline.current.cue, state.cue):
                    self._log_scene(state.cue)
                timeline = replace(timeline, current=state)
            self._timeline = timeline
            if self._last_tick is not None:
                interval = now - self._last_tick
                weight = _RATE_WEIGHT if self._interval else 1.0
                self._interval += weight * (interval - self._interval)
            self._last_tick = now
            return state.brightness(now)

    def scene_at(self, t: float) -> tuple[int, int, float]:
        """(scene number from 1, seed, brightness) at show time ``t``: what ``tick`` would
        show then, without moving anything on or measuring; for a frame trace."""
        with self._lock:
            state = self._timeline.at(t)
        cue = state.governing(t)
        return cue.index + 1, cue.seed, state.brightness(t)

    def motion(self) -> float:
        """How fast the picture moves at the present pace, in faces per second (the peak of
        ``installation.score.motion.pace``; 0 while frozen); adaptive quality asks on the
        inference worker's thread, for the frame it is about to make."""
        with self._lock:
            t = max(self._clock(), self._horizon)
            state = self._timeline.at(t)
        if state.frozen_at is not None:
            return 0.0
        return pace(state.governing(t), state.content(t))

    def status(self) -> Status:
        with self._lock:
            now = self._clock()
            state = self._timeline.at(now)
            cue = state.governing(now)
            return Status(
                scene=cue.scene.name,
                number=cue.index + 1,
                seed=cue.seed,
                frames_per_second=1.0 / self._interval if self._interval else 0.0,
                uptime=now,
                blackout=state.master.target < 1.0,
                frozen=state.frozen_at is not None,
                truncation=cue.truncation.target,
                speed=cue.walk.speed.target,
            )

    def face_reached(self) -> tuple[int, int] | None:
        """The face held now as (seed, index in the scene's walk), None while a morph or a
        transition is under way; outbound events ask a few times a second, so that reaching
        a face, which happens in show time and not on any caller's thread, costs the display
        nothing."""
        with self._lock:
            now = self._clock()
            state = self._timeline.at(now)
        c = state.content(now)
        cue = state.cue.governing(c)
        index, morphing = cue.walk.face_at(c)
        entering = cue.entry is not None and cue.entry.progress(c) is not None
        return None if morphing or entering else (cue.seed, index)

    # A room of screens: the state as one value, and who steers it.

    @property
    def score(self) -> Score:
        """The score of the latest state: what a snapshot from another PC is read against."""
        return self._timeline.latest.cue.score

    def snapshot(self) -> Snapshot:
        """The whole state, now and scheduled (immutable: no copy needed)."""
        with self._lock:
            return self._timeline

    def install(self, snapshot: Snapshot, force: bool = False) -> bool:
        """Play ``snapshot`` (a sync leader's state) from now on; returns whether it shows
        anything other than what this conductor had. Queued frames from the first show time
        where the two differ are dropped; all of them with ``force`` (the show clock
        jumped, so every queued frame's time is wrong). ``SnapshotError``, nothing changed:
        a state too far from this PC's present (``check_near``)."""
        with self._lock:
            now = self._clock()
            old = self._timeline.promoted(now)
        check_near(snapshot, now)
        new = snapshot.promoted(now)
        # Compared outside the lock: a W bundle's pictures may need keyframes mapped, and
        # the display must not wait for that. Meanwhile only ticks (which move nothing that
        # shows) and reloads can change the timeline; the next snapshot covers a reload.
        differs = _first_difference(old, new, now)
        with self._lock:
            self._timeline = new
            if force:
                self._horizon = now
                # The rate is measured afresh: an interval across the jump (hours, either
                # way) would make it negative or near 0 for many seconds.
                self._interval, self._last_tick = 0.0, None
            elif differs is not None:
                self._rewind(now, differs)
        # Where each is heading, as a cut logs the scene it schedules.
        last = max((now, *old.times(), *new.times()))
        before, after = old.latest.governing(last), new.latest.governing(last)
        if _begins(before, after):
            self._log_scene(after)
        if force:
            self._notify_cut(float("-inf"))
        elif differs is not None:
            self._notify_cut(differs)
        return differs is not None

    def follow(self, leader: str | None) -> None:
        """Refuse every control that changes the picture while ``leader`` (a description,
        e.g. "rank 0 at 10.0.0.5") steers this screen; None: controls act again."""
        with self._lock:
            self._leader = leader

    @property
    def following(self) -> str | None:
        """Who steers this screen (``follow``), None when its own controls do."""
        return self._leader

    # Controllers' side: cuts.

    def scene_names(self) -> list[str]:
        """The scenes of the show playing (or scheduled to). No lock: one read of the
        timeline, which is immutable and only ever replaced whole, is consistent."""
        return [scene.name for scene in self.score.scenes]

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

        def change(state: State, at: float) -> State:
            if on == (state.frozen_at is not None):
                return state
            return replace(state, frozen_at=at) if on else state.unfrozen(at)

        self._apply(change, cut=True)

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
        space = self.score.wspace
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

        def change(state: State, at: float) -> State:
            fade = state.blackout_seconds if seconds is None else seconds
            return replace(state, master=state.master.to(0.0 if on else 1.0, at, fade))

        self._apply(change)

    def set_blackout_fade(self, seconds: float) -> None:
        self._apply(lambda state, at: replace(state, blackout_seconds=seconds))

    def set_master(self, level: float) -> None:
        """A lighting desk's master dimmer, 0 to 1, multiplied into the blackout's level;
        it glides as quickly as intensity does, so a fader's steps do not flicker."""
        self._apply(lambda state, at: _dimmed(state, at, level))

    def restore(self) -> None:
        """Glide pace, truncation, intensity and the master dimmer back to the show's own
        values (the current scene's), as when a lighting desk lets go of the show."""

        def change(cue: Cue, c: float) -> Cue:
            scene = cue.scene
            cue = cue.with_pace(c, scene.hold, scene.morph, scene.speed)
            cue = cue.with_truncation(c, scene.truncation)
            ramp = cue.modulation.intensity.to(FULL_INTENSITY.target, c, SMOOTHING["intensity"])
            return cue.with_modulation(Modulation(ramp, cue.modulation.beats))

        self._apply(lambda state, at: _dimmed(self._smoothed(state, at, change), at, 1.0))

    # Reloading.

    def replace_show(self, show: Show) -> None:
        """Play the scenes of an edited show file, keeping the picture where it can.

        A scene with the current scene's name takes over gently (new pace and truncation
        glide in; a changed seed enters by the scene's transition); otherwise the show goes
        to its first scene as if cued. A reload is this PC's own file, so a screen that
        follows a sync leader takes it too.
        """

        def change(state: State, at: float) -> State:
            score = replace(state.cue.score, scenes=show.scenes)
            c = state.content(at)
            cue = state.cue.governing(c)
            index = score.index_of(cue.scene.name)
            if index is None:
                return replace(state, cue=begin(score, 0, c, cue.serial + 1, cue.modulation, cue))
            return replace(state, cue=_renewed(cue, score, index, c))

        self._apply(change, cut=True, steered=False, log_always=True)

    # Internals.

    def _cut(self, change: Callable[[Cue, float], Cue]) -> None:
        """A change of the cue playing at its time; a cue for the picture ends a freeze
        (content time counts on from the frozen one)."""

        def cut(state: State, at: float) -> State:
            c = state.content(at)
            cue = change(state.cue.governing(c), c)  # may refuse (UserError)
            unfrozen = state if state.frozen_at is None else state.unfrozen(at)
            return replace(unfrozen, cue=cue)

        self._apply(cut, cut=True)

    def _smooth(self, change: Callable[[Cue, float], Cue]) -> None:
        self._apply(lambda state, at: self._smoothed(state, at, change))

    def _smoothed(self, state: State, at: float, change: Callable[[Cue, float], Cue]) -> State:
        """``change`` gliding in from ``at`` or the horizon, whichever is later (called
        under the lock): frames already made keep their values."""
        return replace(state, cue=change(state.cue, state.content(max(at, self._horizon))))

    def _apply(
        self,
        change: Callable[[State, float], State],
        cut: bool = False,
        steered: bool = True,
        log_always: bool = False,
    ) -> None:
        """Schedule ``change`` (the latest state to the new one, at its show time) at the
        next moment it may take effect; ``change`` may refuse (``UserError``), and then
        nothing has changed. ``steered``: refused while a sync leader steers this screen."""
        with self._lock:
            if steered and self._leader is not None:
                raise UserError(
                    f"this screen follows {self._leader}: steer that PC, the sync leader"
                )
            now = self._clock()
            timeline = self._timeline.promoted(now)
            at = timeline.next_time(now + self._delay)
            state = timeline.latest
            changed = change(state, at)
            if changed is state:
                return
            self._timeline = timeline.then(at, changed).promoted(now)
            if cut:
                self._rewind(now, at)
            before, after = state.governing(at), changed.governing(at)
        if log_always or _begins(before, after):
            self._log_scene(after)
        if cut:
            self._notify_cut(at)
        for listener in self._change_listeners:
            listener()

    def _rewind(self, now: float, at: float) -> None:
        """Frames from ``at`` on are made again: the horizon goes back there (not into the
        past, where no frame is made any more)."""
        self._horizon = max(now, min(self._horizon, at))

    def _notify_cut(self, at: float) -> None:
        for listener in self._cut_listeners:
            listener(at)

    @staticmethod
    def _log_scene(cue: Cue) -> None:
        scene = cue.scene
        random = " (random)" if scene.seed is None else ""
        log.info("scene %d %r begins: seed %d%s", cue.index + 1, scene.name, cue.seed, random)


def _begins(before: Cue, after: Cue) -> bool:
    """Whether ``after`` is another scene, or the scene begun again, or another seed."""
    return (after.index, after.serial, after.seed) != (before.index, before.serial, before.seed)


def _dimmed(state: State, at: float, level: float) -> State:
    return replace(state, dimmer=state.dimmer.to(level, at, SMOOTHING["intensity"]))


def _first_difference(old: Snapshot, new: Snapshot, now: float) -> float | None:
    """The first show time from ``now`` at which ``new`` shows something ``old`` does not
    (compared as encoded states, since a state from elsewhere shares no objects with ours),
    or None when both show the same at every time."""
    for t in sorted({now, *old.times(), *new.times()}):
        if old.at(t).picture(t) != new.at(t).picture(t):
            return t
    return None


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
