"""The conductor and its cues, without a screen or a socket: what is drawn at each instant.

Frames are compared as latents (what the generator is given), sampled at the display rate,
so "the picture never jumps" becomes "no step between neighbouring frames is much larger
than the steps of an ordinary morph".
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from conftest import DEFAULT_BUNDLE

from installation.errors import UserError
from installation.score.conductor import Conductor
from installation.score.show import Show, load_show
from installation.score.trajectory import keyframe

FPS = 60
SIZE = 100  # the default bundle's latent size


class Clock:
    """Show time that a test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_show(tmp_path: Path, scenes: str, name: str = "show.toml") -> Show:
    path = tmp_path / name
    path.write_text(f'bundle = "{DEFAULT_BUNDLE}"\n\n{scenes}')
    return load_show(path)


def conductor_for(show: Show, entropy: int = 1) -> tuple[Conductor, Clock, list[int]]:
    conductor = Conductor(show, SIZE, "normal", entropy=entropy)
    clock = Clock()
    conductor.start(clock)
    cuts: list[int] = []
    conductor.on_cut(lambda at: cuts.append(1))
    return conductor, clock, cuts


def latent(conductor: Conductor, t: float) -> np.ndarray:
    (plan,) = conductor.plans_at([t])
    assert len(plan.layers) == 1
    return plan.layers[0].latent


def steps(latents: list[np.ndarray]) -> list[float]:
    return [float(np.linalg.norm(b - a)) for a, b in itertools.pairwise(latents)]


def jumps(latents: list[np.ndarray]) -> list[int]:
    """Frames whose step is far larger than both neighbouring steps: a change of pace makes
    steps grow or shrink gradually, a jump is one step that stands out."""
    s = steps(latents)
    return [i for i in range(1, len(s) - 1) if s[i] > 3 * max(s[i - 1], s[i + 1]) + 0.05]


ONE_SCENE = """
[[scenes]]
name = "a"
seed = 5
hold = 1.0
morph = 2.0
"""


def test_plans_are_a_pure_function_of_show_and_time(tmp_path: Path) -> None:
    show = make_show(tmp_path, ONE_SCENE)
    first, _, _ = conductor_for(show)
    second, _, _ = conductor_for(show)
    times = [i / FPS for i in range(400)]
    a = [latent(first, t) for t in times]
    b = [latent(second, t) for t in reversed(times)][::-1]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    np.testing.assert_array_equal(a[0], keyframe(5, 0, SIZE))
    np.testing.assert_array_equal(a[FPS * 3], keyframe(5, 1, SIZE))


def walk_through(conductor: Conductor, clock: Clock, seconds: float, start: float = 0.0):
    """Latents frame by frame as the worker would ask (a little ahead), moving the clock."""
    latents = []
    for i in range(round(start * FPS), round((start + seconds) * FPS)):
        clock.now = i / FPS
        latents.append(latent(conductor, i / FPS + 0.1))
    return latents


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c.set_pace(hold=10.0),
        lambda c: c.set_pace(morph=0.5),
        lambda c: c.set_pace(speed=4.0),
        lambda c: c.set_truncation(0.2),
        lambda c: c.set_intensity(0.0),
    ],
)
def test_smooth_changes_never_jump(tmp_path: Path, change) -> None:
    show = make_show(tmp_path, ONE_SCENE.replace("seed = 5", "seed = 5\nbreathing = 0.3"))
    conductor, clock, cuts = conductor_for(show)
    before = walk_through(conductor, clock, 1.7)  # into the first morph
    change(conductor)
    after = walk_through(conductor, clock, 3.0, start=1.7)
    assert jumps(before + after) == []
    assert max(steps(before + after)) < 1.0
    assert cuts == [], "a smooth change keeps the frames already made"


def test_changes_reach_the_picture(tmp_path: Path) -> None:
    show = make_show(tmp_path, ONE_SCENE)
    conductor, clock, _ = conductor_for(show)
    clock.now = 0.5
    conductor.set_truncation(0.5)
    np.testing.assert_allclose(latent(conductor, 3.0), 0.5 * keyframe(5, 1, SIZE), rtol=1e-6)
    conductor.set_pace(hold=100.0)
    assert np.array_equal(latent(conductor, 50.0), latent(conductor, 3.0)), "face 1 is held"
    with pytest.raises(UserError, match="hold and morph are both 0"):
        conductor.set_pace(hold=0.0, morph=0.0)


def test_next_face_is_a_cut_that_starts_at_once(tmp_path: Path) -> None:
    show = make_show(tmp_path, ONE_SCENE.replace("hold = 1.0", "hold = 30.0"))
    conductor, clock, cuts = conductor_for(show)
    clock.now = 2.0
    conductor.next_face(0.0)
    assert cuts == [1]
    np.testing.assert_array_equal(latent(conductor, 2.0), keyframe(5, 1, SIZE))
    clock.now = 3.0
    conductor.next_face()  # morphs over the scene's 2 s, from the face on screen
    np.testing.assert_array_equal(latent(conductor, 3.0), keyframe(5, 1, SIZE))
    middle = latent(conductor, 4.0)
    assert 0.2 < np.linalg.norm(middle - keyframe(5, 1, SIZE)) / 14 < 1.0
    np.testing.assert_array_equal(latent(conductor, 5.0), keyframe(5, 2, SIZE))


def test_seed_enters_by_the_scene_transition(tmp_path: Path) -> None:
    show = make_show(
        tmp_path, ONE_SCENE.replace('name = "a"', 'name = "a"\ntransition = "crossfade"')
    )
    conductor, clock, cuts = conductor_for(show)
    clock.now = 0.5
    conductor.set_seed(99)
    (plan,) = conductor.plans_at([1.5])
    old, new = plan.layers
    np.testing.assert_array_equal(old.latent, keyframe(5, 0, SIZE))
    np.testing.assert_array_equal(new.latent, keyframe(99, 0, SIZE))
    assert old.weight + new.weight == pytest.approx(1.0) and 0 < new.weight < 1
    np.testing.assert_array_equal(latent(conductor, 2.5), keyframe(99, 0, SIZE))
    assert conductor.status().seed == 99 and cuts == [1]


PLAYLIST = """
[[scenes]]
name = "day"
seed = 1
hold = 1.0
morph = 1.0
fade_out = 2.0
duration = 10.0

[[scenes]]
name = "night"
seed = "random"
hold = 1.0
morph = 1.0
fade_in = 4.0
duration = 5.0
next = "night"
"""


def test_playlist_runs_by_itself_with_fades(tmp_path: Path) -> None:
    show = make_show(tmp_path, PLAYLIST)
    conductor, _, _ = conductor_for(show)
    assert conductor.tick(0.0) == 1.0
    assert conductor.tick(9.0) == pytest.approx(0.5), "halfway through day's 2 s fade-out"
    assert conductor.status().scene == "day"
    assert conductor.tick(10.0) == 0.0, "night fades in from black"
    assert conductor.tick(12.0) == pytest.approx(0.5)
    assert conductor.status().scene == "night"
    first_night = conductor.status().seed
    conductor.tick(15.5)
    assert conductor.status().scene == "night", "night follows itself"
    assert conductor.status().seed != first_night, "with a fresh random seed"
    again, _, _ = conductor_for(show)
    again.tick(15.5)
    assert again.status().seed == conductor.status().seed, "reproducible from the entropy"


def test_scene_cue_fades_out_then_in(tmp_path: Path) -> None:
    show = make_show(tmp_path, PLAYLIST)
    conductor, clock, cuts = conductor_for(show)
    clock.now = 1.0
    conductor.go_to_scene("night")
    assert cuts == [1]
    assert conductor.tick(1.0) == 1.0 and conductor.tick(2.0) == pytest.approx(0.5)
    clock.now = 2.0
    conductor.go_to_scene(1)  # a second cue during the fade keeps fading, to the new target
    assert conductor.tick(2.5) == pytest.approx(0.25)
    assert conductor.tick(2.99) < 0.01
    assert conductor.tick(3.0) == 1.0 and conductor.status().scene == "day", "no fade_in"
    for bad in ("dusk", 3, 0):
        with pytest.raises(UserError):
            conductor.go_to_scene(bad)


def test_scene_cue_without_fades_morphs(tmp_path: Path) -> None:
    show = make_show(tmp_path, ONE_SCENE + ONE_SCENE.replace('"a"', '"b"').replace("5", "6"))
    conductor, clock, _ = conductor_for(show)
    clock.now = 0.5
    conductor.step_scene(1)
    assert conductor.status().scene == "b" and conductor.tick(0.5) == 1.0
    np.testing.assert_array_equal(latent(conductor, 0.5), keyframe(5, 0, SIZE))
    np.testing.assert_array_equal(latent(conductor, 2.5), keyframe(6, 0, SIZE))
    conductor.step_scene(-1)
    conductor.step_scene(-1)
    assert conductor.status().scene == "b", "wraps around"


def test_freeze_holds_everything_and_resumes_where_it_was(tmp_path: Path) -> None:
    show = make_show(tmp_path, ONE_SCENE.replace("seed = 5", "seed = 5\nbreathing = 0.3"))
    conductor, clock, cuts = conductor_for(show)
    clock.now = 1.5
    held = latent(conductor, 1.5)
    conductor.freeze(True)
    assert conductor.status().frozen and cuts == [1]
    assert all(np.array_equal(latent(conductor, t), held) for t in (1.6, 5.0, 100.0))
    clock.now = 100.0
    conductor.freeze(False)
    np.testing.assert_array_equal(latent(conductor, 100.0), held)
    np.testing.assert_array_equal(latent(conductor, 101.0), latent_of_fresh(show, 2.5))


def latent_of_fresh(show: Show, t: float) -> np.ndarray:
    conductor, _, _ = conductor_for(show)
    return latent(conductor, t)


def test_blackout_is_immediate_or_faded(tmp_path: Path) -> None:
    conductor, clock, cuts = conductor_for(make_show(tmp_path, ONE_SCENE))
    clock.now = 1.0
    conductor.blackout(True)
    assert conductor.tick(1.0) == 0.0 and conductor.status().blackout
    conductor.set_blackout_fade(2.0)
    conductor.blackout(False)
    assert conductor.tick(2.0) == pytest.approx(0.5)
    assert conductor.tick(3.0) == 1.0
    assert cuts == [], "brightness needs no new frames"


def test_beats_swell_smoothly(tmp_path: Path) -> None:
    show = make_show(tmp_path, ONE_SCENE.replace("seed = 5", "seed = 5\nbreathing = 0.2"))
    conductor, clock, _ = conductor_for(show)
    conductor.set_intensity(0.0)
    quiet = walk_through(conductor, clock, 0.5)[20:]
    conductor.beat(1.0)
    swell = walk_through(conductor, clock, 0.5, start=0.5)
    assert max(steps(quiet)) < 1e-6, "a held face without intensity is still"
    assert 0.01 < max(steps(quiet + swell)) < 1.0
    assert jumps(quiet + swell) == []


def test_reload_keeps_the_scene_it_can(tmp_path: Path) -> None:
    show = make_show(tmp_path, PLAYLIST)
    conductor, clock, _ = conductor_for(show)
    clock.now = 3.0
    before = latent(conductor, 3.0)
    edited = make_show(tmp_path, PLAYLIST.replace("hold = 1.0", "hold = 2.0", 1), "edited.toml")
    conductor.replace_show(edited)
    assert conductor.status().scene == "day"
    assert np.linalg.norm(latent(conductor, 3.0) - before) < 1.0
    renamed = make_show(tmp_path, PLAYLIST.replace('"day"', '"morning"'), "renamed.toml")
    conductor.replace_show(renamed)
    assert conductor.status().scene == "morning"
