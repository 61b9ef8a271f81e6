"""A cue: one scene as it plays from a given moment, as a pure function of content time.

The conductor owns the current cue and replaces it whenever something changes (a scene
change, a new seed, a fader moving); a cue itself never changes. Everything a frame needs
follows from the cue and the frame's time alone, so frames made ahead of the screen, frames
made again after a cut and an offline render all agree, and a scene's faces are still
``Trajectory(seed, hold, morph, ...)`` evaluated at some time.

Times here are *content time*: show time with frozen stretches taken out (see the
conductor), so that a freeze stops faces, breathing and playlists together.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from functools import cached_property, partial

import numpy as np

from installation.score.breathing import Modulation, drift
from installation.score.easing import get_easing
from installation.score.plan import Deferred, FramePlan, Layer
from installation.score.ramp import Ramp
from installation.score.scenes import Scene
from installation.score.trajectory import TIME_LIMIT, Trajectory, slerp
from installation.score.wspace import UPRIGHT, Blend, View, WSpace, breath_scale

#: Seconds over which live changes glide to their new value. Truncation and speed are
#: moods, so they change slowly; intensity follows music, so it must be quick.
SMOOTHING = {"truncation": 1.0, "breathing": 1.0, "speed": 1.0, "intensity": 0.15, "view": 1.0}


@dataclass(frozen=True)
class Score:
    """What every cue of one show shares: its scenes, the bundle's latent space, and the
    entropy from which this run draws the seeds of scenes whose seed is "random".

    ``latent_size`` and ``distribution`` are the seeds' z; ``wspace`` is set for a W bundle,
    whose faces move in W (``installation.score.wspace``), None for a Z bundle. ``streams``
    is how many faces the screen shows at once (a grid layout): stream k plays the same
    cues with every seed offset by k, so each cell walks its own faces on one timeline."""

    scenes: tuple[Scene, ...]
    latent_size: int
    distribution: str
    entropy: int = field(default_factory=lambda: secrets.randbits(63))
    wspace: WSpace | None = None
    streams: int = 1

    def seed_for(self, scene: Scene, serial: int) -> int:
        """The scene's own seed, or for a random scene one drawn from (entropy, serial):
        different every time the scene begins, yet reproducible from the logged entropy."""
        if scene.seed is not None:
            return scene.seed
        return int(np.random.default_rng([self.entropy, serial]).integers(2**63 - 1))

    def index_of(self, name: str) -> int | None:
        return next((i for i, scene in enumerate(self.scenes) if scene.name == name), None)

    def following(self, index: int) -> int:
        """The scene after ``index`` in a playlist: its ``next``, else the next in the file."""
        named = self.scenes[index].next
        found = None if named is None else self.index_of(named)
        return (index + 1) % len(self.scenes) if found is None else found


@dataclass(frozen=True)
class Walk:
    """Where a scene is in its walk of faces: trajectory time = ``anchor`` at ``origin``,
    advancing by the integral of ``speed`` (a smoothed multiplier) over content time.

    Before ``origin`` the walk waits at ``anchor``: a walk that begins when a transition
    ends holds the face that the transition leads to. Content time stops at ``TIME_LIMIT``,
    as trajectory time does, so that no time makes the speed's integral overflow.
    """

    trajectory: Trajectory
    origin: float
    anchor: float
    speed: Ramp

    def time_at(self, c: float) -> float:
        c = min(c, TIME_LIMIT)
        if c <= self.origin:
            return self.anchor
        return self.anchor + self.speed.integral(self.origin, c)

    def stream(self, k: int) -> Trajectory:
        """The trajectory of face stream ``k`` (see ``Score``): this one, seed offset by k."""
        return replace(self.trajectory, seed=self.trajectory.seed + k) if k else self.trajectory

    def latent_at(self, c: float, stream: int = 0) -> np.ndarray:
        return self.stream(stream).latent_at(self.time_at(c))

    def face_at(self, c: float) -> tuple[int, bool]:
        """The face held or being left at ``c``, and whether a morph is under way."""
        index, phase = self.trajectory.position_at(self.time_at(c))
        return index, phase >= self.trajectory.hold

    def retimed(
        self,
        c: float,
        hold: float | None = None,
        morph: float | None = None,
        speed: float | None = None,
    ) -> Walk:
        """The same walk from ``c`` on with a new pace, continuing from the same picture.

        A hold keeps the seconds it has already lasted (a shorter hold may end at once); a
        morph keeps its progress, so the face does not jump. Speed glides to its new value.
        A walk that has not begun yet keeps its beginning.
        """
        old = self.trajectory
        at = max(c, self.origin)
        index, phase = old.position_at(self.time_at(at))
        new = replace(
            old,
            hold=old.hold if hold is None else hold,
            morph=old.morph if morph is None else morph,
        )
        if phase < old.hold:
            phase = min(phase, new.hold)
        else:
            phase = new.hold + (phase - old.hold) / old.morph * new.morph
        ramp = self.speed if speed is None else self.speed.to(speed, c, SMOOTHING["speed"])
        return Walk(new, at, index * new.period + phase, ramp)


@dataclass(frozen=True, eq=False)
class Entry:
    """How a scene (or a new seed, or a skipped face) replaced the picture before it:
    ``kind`` "morph" walks from the stream's source (one per stream) to the new latent,
    "crossfade" mixes pictures."""

    kind: str
    start: float
    seconds: float
    easing: str
    sources: tuple[Layer, ...]

    def progress(self, c: float) -> float | None:
        """Eased progress at ``c``, or None once the entry is over."""
        if c >= self.start + self.seconds:
            return None
        return float(get_easing(self.easing)((c - self.start) / self.seconds))


@dataclass(frozen=True, eq=False)
class Cue:
    """Scene ``index`` of ``score`` from content time ``started``.

    ``serial`` counts the scenes begun before it in this run (for random seeds). ``fade_in``
    is the fade from black at the start (0 when the scene came in by a transition). With
    ``end`` set, the scene hands over to ``next_index`` then, fading out before if the scene
    says so; ``successor`` is that next cue.
    """

    score: Score = field(repr=False, compare=False)
    index: int
    seed: int
    serial: int
    walk: Walk
    truncation: Ramp
    breathing: Ramp
    modulation: Modulation
    started: float
    fade_in: float
    entry: Entry | None = None
    end: float | None = None
    next_index: int | None = None
    view: View = UPRIGHT

    @property
    def scene(self) -> Scene:
        return self.score.scenes[self.index]

    @cached_property
    def successor(self) -> Cue | None:
        if self.end is None or self.next_index is None:
            return None
        return begin(self.score, self.next_index, self.end, self.serial + 1, self.modulation, self)

    def governing(self, c: float) -> Cue:
        """The cue playing at ``c``: this one, or a later one of its playlist."""
        cue = self
        while cue.end is not None and c >= cue.end and cue.successor is not None:
            cue = cue.successor
        return cue

    def plan_at(self, c: float, stream: int = 0) -> FramePlan:
        """What face stream ``stream`` (0 unless the screen shows a grid) draws at ``c``."""
        layer = self._layer_at(c, stream)
        progress = None if self.entry is None else self.entry.progress(c)
        if progress is None:
            return FramePlan((layer,))
        assert self.entry is not None
        source = self.entry.sources[stream]
        if self.entry.kind == "morph":
            space = self.score.wspace
            if space is None:
                latent = slerp(source.latent, layer.latent, progress)
                return FramePlan((Layer(latent, layer.stages),))
            blended = Blend(space, source, layer, progress)
            return FramePlan((Layer(blended, layer.stages),))
        return FramePlan((replace(source, weight=1.0 - progress), replace(layer, weight=progress)))

    def dominants(self, c: float) -> tuple[Layer, ...]:
        """Each stream's dominant layer at ``c``: where a transition from here starts."""
        return tuple(self.plan_at(c, k).dominant for k in range(self.score.streams))

    def _layer_at(self, c: float, stream: int) -> Layer:
        if self.score.wspace is not None:
            compute = partial(self._w_latent, self.score.wspace, c, stream)
            return Layer(Deferred(compute), self.scene.stages)
        latent = self.walk.latent_at(c, stream) * np.float32(self.truncation.at(c))
        depth = self.breathing.at(c) * self.modulation.level(c)
        if depth:
            size, distribution = self.score.latent_size, self.score.distribution
            offset = depth * drift(self.seed + stream, size, distribution, c - self.started)
            latent = (latent + offset).astype(np.float32)
        return Layer(latent, self.scene.stages)

    def _w_latent(self, space: WSpace, c: float, stream: int) -> np.ndarray:
        """The layer values of a W bundle at ``c`` (run where the frame is painted: the
        keyframes it needs may have to be mapped)."""
        scene = self.scene
        trajectory = self.walk.stream(stream)
        t = self.walk.time_at(c)
        offset = space.offset_at(trajectory, t, scene.label)
        mixed = None
        if scene.mix is not None:
            other = replace(trajectory, seed=scene.mix.seed + stream)
            mixed = (scene.mix.from_layer, space.offset_at(other, t, scene.label))
        breath: np.ndarray | float = 0.0
        depth = self.breathing.at(c) * self.modulation.level(c)
        if depth:
            wave = drift(self.seed + stream, space.w_dim, "normal", c - self.started)
            breath = depth * breath_scale(offset) * wave
        return space.ws(offset, mixed, self.truncation.at(c), breath, self.view.at(c))

    def brightness_at(self, c: float) -> float:
        """The scene's own fades: up from black after it starts, down before it ends."""
        level = 1.0
        if self.fade_in > 0:
            level = min(level, (c - self.started) / self.fade_in)
        fade_out = self.scene.fade_out
        if self.end is not None and fade_out > 0:
            level = min(level, (self.end - c) / fade_out)
        return min(max(level, 0.0), 1.0)

    def ending(self, c: float, target: int) -> Cue:
        """This cue handing over to scene ``target``: now, or after its fade-out.

        A cue that is already fading out keeps fading (only the destination changes), so a
        second scene change during a fade does not bring the picture back up.
        """
        fade_out = self.scene.fade_out
        fading = self.end is not None and self.end - fade_out <= c
        return replace(self, end=self.end if fading else c + fade_out, next_index=target)

    def next_face(self, c: float, seconds: float | None) -> Cue:
        """Morph at once to the next face not yet reached (0 seconds: cut to it)."""
        trajectory = self.walk.trajectory
        index, morphing = self.walk.face_at(c)
        seconds = trajectory.morph if seconds is None else seconds
        return self._entered(c, trajectory, index + 2 if morphing else index + 1, "morph", seconds)

    def previous_face(self, c: float) -> Cue | None:
        """Morph at once (in the scene's morph time) back to the last face reached (the one
        being left during a morph, else the one before the face held); None at the scene's
        first face."""
        index, morphing = self.walk.face_at(c)
        face = index if morphing else index - 1
        if face < 0:
            return None
        trajectory = self.walk.trajectory
        return self._entered(c, trajectory, face, "morph", trajectory.morph)

    def reseeded(self, c: float, seed: int) -> Cue:
        """The scene starting over from its first face with ``seed``, by its transition."""
        trajectory = replace(self.walk.trajectory, seed=seed)
        return self._entered(c, trajectory, 0, self.scene.transition, trajectory.morph)

    def _entered(
        self, c: float, trajectory: Trajectory, face: int, kind: str, seconds: float
    ) -> Cue:
        """This cue going to ``face`` of ``trajectory`` from the picture at ``c``: the face
        is reached when the transition ends, and its hold counts from then."""
        entry = None
        if kind != "cut" and seconds > 0:
            entry = Entry(kind, c, seconds, self.scene.easing, self.dominants(c))
        start = c if entry is None else c + seconds
        walk = Walk(trajectory, start, face * trajectory.period, self.walk.speed)
        return replace(self, walk=walk, seed=trajectory.seed, entry=entry)

    def with_truncation(self, c: float, value: float) -> Cue:
        return replace(self, truncation=self.truncation.to(value, c, SMOOTHING["truncation"]))

    def with_view(
        self, c: float, rotate: float | None = None, translate: tuple[float, float] | None = None
    ) -> Cue:
        """A new rotation (degrees) and/or translation gliding in from ``c``."""
        return replace(self, view=self.view.to(c, SMOOTHING["view"], rotate, translate))

    def with_pace(
        self,
        c: float,
        hold: float | None = None,
        morph: float | None = None,
        speed: float | None = None,
    ) -> Cue:
        return replace(self, walk=self.walk.retimed(c, hold, morph, speed))

    def with_modulation(self, modulation: Modulation) -> Cue:
        return replace(self, modulation=modulation)


def begin(
    score: Score,
    index: int,
    at: float,
    serial: int,
    modulation: Modulation,
    leaving: Cue | None = None,
) -> Cue:
    """Scene ``index`` beginning at content time ``at``, after ``leaving`` (None at the start
    of the show).

    If either side fades (the leaving scene's fade_out or this scene's fade_in), the change
    goes through black: the picture cuts while dark and this scene fades in. Otherwise this
    scene's transition replaces the leaving picture, over this scene's morph time.
    """
    scene = score.scenes[index]
    seed = score.seed_for(scene, serial)
    trajectory = Trajectory(
        seed, score.latent_size, scene.hold, scene.morph, scene.easing, score.distribution
    )
    through_black = leaving is None or leaving.scene.fade_out > 0 or scene.fade_in > 0
    entry = None
    if not through_black and scene.transition != "cut" and scene.morph > 0:
        assert leaving is not None
        sources = leaving.dominants(at)
        entry = Entry(scene.transition, at, scene.morph, scene.easing, sources)
    # The first face is reached when the transition ends; its hold counts from then.
    start = at if entry is None else at + entry.seconds
    walk = Walk(trajectory, start, 0.0, Ramp.constant(scene.speed))
    end = None if scene.duration is None else at + scene.duration
    return Cue(
        score=score,
        index=index,
        seed=seed,
        serial=serial,
        walk=walk,
        truncation=Ramp.constant(scene.truncation),
        breathing=Ramp.constant(scene.breathing),
        modulation=modulation,
        started=at,
        fade_in=scene.fade_in if through_black else 0.0,
        entry=entry,
        end=end,
        next_index=None if end is None else score.following(index),
        view=_scene_view(scene, at, None if through_black else leaving),
    )


def _scene_view(scene: Scene, at: float, leaving: Cue | None) -> View:
    """A scene's rotation and translation: set at once, or gliding in from the view of the
    scene it replaces without going through black (``leaving``)."""
    if leaving is None:
        x, y = scene.translate
        return View(Ramp.constant(scene.rotate), Ramp.constant(x), Ramp.constant(y))
    return leaving.view.to(at, SMOOTHING["view"], scene.rotate, scene.translate)
