"""Scenes: the parts of a show, each with its own pace and character.

A show file lists them as ``[[scenes]]`` tables (the schema is in ``docs/shows.md``); they
are read here, checked value by value with ``tomlfile.Section`` so that every mistake names
file, line and key, and checked against each other (unique names, ``next`` naming a scene
that exists) because a playlist that points nowhere would only fail hours into a show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from installation.errors import UserError
from installation.score.easing import get_easing
from installation.tomlfile import Section

TRANSITIONS = ("morph", "crossfade", "cut")
RANDOM = "random"
MAX_SEED = 2**63 - 1
MAX_SECONDS = 3600.0
#: The fastest display rate a show may ask for (``display.fps``).
MAX_FPS = 240.0
#: The shortest hold or morph other than 0: one frame at ``MAX_FPS``. A shorter one cannot be
#: seen on any screen, and ever shorter ones only overflow the arithmetic of the walk. It is
#: a constant, not the show's own fps, so that a pace valid in one place (a show file, OSC, a
#: render at another rate) is valid in all of them.
MIN_SECONDS = 1.0 / MAX_FPS
#: Scenes a show may have: far more than a show needs, few enough to check and hold at once.
MAX_SCENES = 1000
MAX_FADE = 600.0
MAX_SPEED = 16.0
MAX_DURATION = 30 * 24 * 3600.0
#: Degrees a view may turn and how far it may move (StyleGAN3 input coordinates, where the
#: picture spans about one unit): beyond that the picture is empty or wound round again.
MAX_ROTATE = 360.0
MAX_TRANSLATE = 10.0
#: Scene keys that only a W bundle (a StyleGAN) understands.
W_KEYS = ("mix", "rotate", "translate", "label")


@dataclass(frozen=True)
class Mix:
    """Style mixing: synthesis layers ``from_layer`` and later take the face of ``seed``'s
    walk (the coarse features from the scene's own face, the fine ones from this one)."""

    from_layer: int
    seed: int


@dataclass(frozen=True)
class Scene:
    """One scene as the show file describes it; times are seconds at speed 1.

    ``seed`` None means "random": a fresh seed each time the scene begins. ``stages`` None
    runs every stage of the bundle. ``duration`` None lets the scene run until a cue ends it;
    with a duration the scene hands over to ``next`` (by default the following scene in the
    file, the first after the last), which makes a playlist that runs by itself.
    """

    name: str
    seed: int | None
    hold: float = 3.0
    morph: float = 5.0
    easing: str = "smoothstep"
    transition: str = "morph"
    truncation: float = 1.0
    speed: float = 1.0
    breathing: float = 0.0
    stages: int | None = None
    fade_in: float = 0.0
    fade_out: float = 0.0
    duration: float | None = None
    next: str | None = None
    mix: Mix | None = None
    rotate: float = 0.0
    translate: tuple[float, float] = (0.0, 0.0)
    label: int = 0


def parse_scenes(sections: list[Section]) -> tuple[Scene, ...]:
    """Every ``[[scenes]]`` table, checked alone and then against the others."""
    if len(sections) > MAX_SCENES:
        raise sections[MAX_SCENES].error(
            None, f"a show may have at most {MAX_SCENES} scenes, this one has {len(sections)}"
        )
    scenes = tuple(_scene(section) for section in sections)
    seen: set[str] = set()
    for scene, section in zip(scenes, sections, strict=True):
        if scene.name in seen:
            raise section.error("name", f"another scene is already called {scene.name!r}")
        seen.add(scene.name)
    for scene, section in zip(scenes, sections, strict=True):
        if scene.next is not None and scene.next not in seen:
            names = ", ".join(s.name for s in scenes)
            raise section.error("next", f"no scene is called {scene.next!r}; scenes: {names}")
    return scenes


def check_pace(hold: float, morph: float, speed: float = 1.0) -> tuple[str, str] | None:
    """Which of ``hold`` and ``morph`` cannot make a walk of faces at ``speed``, and why; None
    when they can. The one rule for show files, reloads and OSC.

    0 means something (a continuous morph, a cut); any other value must last at least one
    frame (``MIN_SECONDS``) both as written and on screen, where ``speed`` divides it. So a
    face never passes in less than a frame, and the walk's period stays far from the sizes
    at which dividing show time by it overflows. A speed of 0 stops the walk, which is fine.
    """
    if hold + morph <= 0:
        return "morph", "hold and morph are both 0: at least one must be positive"
    shortest = MIN_SECONDS * max(speed, 1.0)
    for key, value in (("hold", hold), ("morph", morph)):
        if 0 < value < shortest:
            frame = f"one frame (1/{MAX_FPS:g} s)"
            if speed <= 1:
                why = f"a {key} of {value:g} s is shorter than {frame}"
                return key, f"{why}: use 0 or at least {shortest:.3g} s"
            why = f"a {key} of {value:g} s at speed {speed:g} is shorter than {frame} on screen"
            return key, f"{why}: use 0, at least {shortest:.3g} s or a lower speed"
    return None


def _scene(section: Section) -> Scene:
    name = section.get("name", str)
    if not name.strip():
        raise section.error("name", "expected a name, got an empty string")
    scene = Scene(
        name=name,
        seed=_seed(section),
        hold=section.number("hold", 0.0, MAX_SECONDS, Scene.hold, unit="seconds"),
        morph=section.number("morph", 0.0, MAX_SECONDS, Scene.morph, unit="seconds"),
        easing=_easing(section),
        transition=section.choice("transition", TRANSITIONS, Scene.transition),
        truncation=section.number("truncation", 0.0, 1.0, Scene.truncation),
        speed=section.number("speed", 0.0, MAX_SPEED, Scene.speed, low_open=True),
        breathing=section.number("breathing", 0.0, 1.0, Scene.breathing),
        stages=_stages(section),
        fade_in=section.number("fade_in", 0.0, MAX_FADE, Scene.fade_in, unit="seconds"),
        fade_out=section.number("fade_out", 0.0, MAX_FADE, Scene.fade_out, unit="seconds"),
        duration=(
            section.number("duration", 1.0, MAX_DURATION, unit="seconds")
            if section.has("duration")
            else None
        ),
        next=section.get("next", str) if section.has("next") else None,
        mix=_mix(section.table("mix")) if section.has("mix") else None,
        rotate=section.number("rotate", -MAX_ROTATE, MAX_ROTATE, 0.0, unit="degrees"),
        translate=_translate(section),
        label=section.number("label", 0, None, 0, kind=int),
    )
    problem = check_pace(scene.hold, scene.morph, scene.speed)
    if problem:
        raise section.error(*problem)
    if scene.next is not None and scene.duration is None:
        raise section.error("next", "needs a duration: the scene only hands over when it ends")
    if scene.duration is not None and scene.duration < scene.fade_out:
        raise section.error("duration", f"shorter than the scene's fade_out ({scene.fade_out:g} s)")
    section.finish()
    return scene


def _seed(section: Section) -> int | None:
    value = section.data.get("seed")
    if value == RANDOM:
        section.get("seed", str)
        return None
    if isinstance(value, str):
        raise section.error("seed", f'expected an integer or "random", got {value!r}')
    return section.number("seed", 0, MAX_SEED, kind=int, expected="an integer from 0 to 2**63-1")


def _mix(section: Section) -> Mix:
    mix = Mix(
        from_layer=section.number("from_layer", 1, kind=int),
        seed=section.number("seed", 0, MAX_SEED, kind=int, expected="an integer from 0 to 2**63-1"),
    )
    section.finish()
    return mix


def _translate(section: Section) -> tuple[float, float]:
    if not section.has("translate"):
        return Scene.translate
    x, y = section.numbers("translate", 2)
    if not all(abs(v) <= MAX_TRANSLATE for v in (x, y)):
        raise section.error(
            "translate",
            f"expected [x, y] from -{MAX_TRANSLATE:g} to {MAX_TRANSLATE:g}, got [{x:g}, {y:g}]",
        )
    return x, y


def _easing(section: Section) -> str:
    easing = section.get("easing", str, Scene.easing)
    try:
        get_easing(easing)
    except UserError as exc:
        raise section.error("easing", str(exc)) from None
    return easing


def _stages(section: Section) -> int | None:
    if not section.has("stages"):
        return None
    return section.number("stages", 1, kind=int)


def check_stages(scenes: tuple[Scene, ...], sections: list[Section], stage_count: int) -> None:
    """Scenes may stop before the bundle's last stage, never after it; known only once the
    bundle is read, so checked then, still naming the scene's line in the show file."""
    for scene, section in zip(scenes, sections, strict=True):
        if scene.stages is not None and scene.stages > stage_count:
            raise section.error(
                "stages",
                f"expected at most {stage_count}, the bundle's number of stages; got "
                f"{scene.stages}",
            )


class WFacts(Protocol):
    """What a W bundle's ``[w]`` table says that scenes are checked against."""

    num_ws: int
    c_dim: int
    transform: object | None


def check_latent_keys(scenes: tuple[Scene, ...], sections: list[Section], w: WFacts | None) -> None:
    """The W-space keys (mix, rotate, translate, label) only where the bundle understands
    them, and within what it has: a show file is written for its bundle, so a key the bundle
    cannot honour is a mistake to name, not a wish to ignore."""
    for scene, section in zip(scenes, sections, strict=True):
        used = [key for key in W_KEYS if section.has(key)]
        if used and w is None:
            raise section.error(
                used[0],
                f"scene {scene.name!r}: only for a W-space bundle (a StyleGAN); this show's "
                "bundle is a Z-space one",
            )
        if w is None:
            continue
        for key in ("rotate", "translate"):
            if section.has(key) and w.transform is None:
                raise section.error(
                    key,
                    f"scene {scene.name!r}: only for a bundle with an input transform "
                    "(StyleGAN3); this bundle has none",
                )
        if scene.mix is not None and not 1 <= scene.mix.from_layer <= w.num_ws - 1:
            raise section.table("mix").error(
                "from_layer",
                f"scene {scene.name!r}: expected 1 to {w.num_ws - 1} (the bundle has "
                f"num_ws = {w.num_ws}), got {scene.mix.from_layer}",
            )
        if section.has("label") and not scene.label < w.c_dim:
            has = f"classes 0 to {w.c_dim - 1}" if w.c_dim else "no classes (c_dim = 0)"
            raise section.error(
                "label", f"scene {scene.name!r}: the bundle has {has}, got {scene.label}"
            )
