"""Property-based tests (hypothesis) of the show parser and the walk of faces.

Whatever a hand or a fuzzer writes into a show file either loads or is refused with one
line (a ``UserError``), never another exception; and whatever loads plays: any scene the
parser accepts, after any live change the conductor accepts, gives finite latents of
the right shape at any finite show time, from far before the start to near the float limit.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import toml_text
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from installation.errors import UserError
from installation.score.breathing import Modulation
from installation.score.cue import Score, begin
from installation.score.easing import EASINGS
from installation.score.scenes import (
    MAX_SECONDS,
    MAX_SPEED,
    MIN_SECONDS,
    Scene,
    check_pace,
    parse_scenes,
)
from installation.score.show import load_show
from installation.score.trajectory import DISTRIBUTIONS, Trajectory
from installation.tomlfile import Section, TomlDocument

SIZE = 8
#: Bounded runs whose verdict never depends on the machine's speed (no deadline, no check of
#: how slow generation is) nor on how many drawn values ``assume`` throws away.
RELAXED = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]
EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=RELAXED)

# Values: the edges that matter (0, a frame, just below it, the smallest float) and the rest.
EDGES = (0.0, 5e-324, 1e-300, MIN_SECONDS / 2, MIN_SECONDS, 16 * MIN_SECONDS, MAX_SECONDS)
SECONDS = st.one_of(st.sampled_from(EDGES), st.floats(0.0, MAX_SECONDS))
SPEEDS = st.one_of(st.sampled_from((5e-324, 1e-300, 1.0, MAX_SPEED)), st.floats(0.0, MAX_SPEED))
TIMES = st.one_of(
    st.sampled_from((0.0, -0.0, 1e12, 1e15, 1.7e308, -1.7e308, 5e-324)),
    st.floats(allow_nan=False, allow_infinity=False),
)
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)
SCALARS = st.one_of(
    st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(), TEXT, st.sampled_from(EDGES)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=6,
)


def table_of(
    keys: dict[str, st.SearchStrategy[Any]], required: tuple[str, ...] = ()
) -> st.SearchStrategy[dict[str, Any]]:
    """Tables of some of ``keys`` (always the ``required`` ones) with likely values."""
    return st.fixed_dictionaries(
        {key: keys[key] for key in required},
        optional={key: strategy for key, strategy in keys.items() if key not in required},
    )


# Likely values: mostly valid, with the edges of the ranges; the slips come on top.
SCENE_KEYS = {
    "name": st.text("abcdef", min_size=1, max_size=3),
    "seed": st.one_of(st.just("random"), st.integers(0, 2**63 - 1)),
    "hold": SECONDS,
    "morph": SECONDS,
    "easing": st.sampled_from(sorted(EASINGS)),
    "transition": st.sampled_from(("morph", "crossfade", "cut")),
    "truncation": st.floats(0.0, 1.0),
    "speed": SPEEDS,
    "breathing": st.floats(0.0, 1.0),
    "stages": st.integers(1, 3),
    "fade_in": st.floats(0.0, 600.0),
    "fade_out": st.floats(0.0, 600.0),
    "duration": st.floats(1.0, 1e6),
    "next": st.text("abcdef", min_size=1, max_size=3),
}
TABLES = {
    "display": {
        "mode": st.sampled_from(("fullscreen", "windowed", "headless")),
        "fps": st.floats(1.0, 240.0),
        "window_size": st.lists(st.integers(1, 4000), min_size=2, max_size=2),
    },
    "engine": {
        "threads": st.integers(0, 64),
        "lead": st.floats(0.01, 2.0),
        "backend": st.sampled_from(("auto", "onnxruntime-cpu")),
        "engines": TEXT,
        "quality": st.sampled_from(("adaptive", "full")),
        "min_rate": st.floats(1.0, 240.0),
    },
    "osc": {
        "enabled": st.booleans(),
        "address": st.sampled_from(("127.0.0.1", "::1")),
        "port": st.integers(0, 65535),
        "allow": st.lists(st.sampled_from(("10.0.0.0/8", "::1/128")), min_size=1, max_size=2),
        "max_rate": st.floats(1.0, 1e5),
    },
    "hours": {
        "daily": st.lists(st.sampled_from(("10:00-18:00", "20:00-02:00")), max_size=2),
        "sunday": st.lists(st.sampled_from(("00:00-24:00", "9:30-17:00")), max_size=1),
        "dates": st.dictionaries(
            st.sampled_from(("2026-12-24", "2027-01-01")),
            st.lists(st.just("12:00-14:00"), max_size=1),
            max_size=1,
        ),
        "fade": st.floats(0.0, 600.0),
    },
}


@st.composite
def show_documents(draw: st.DrawFn) -> str:
    """A show file as an artist might write it, with up to two slips: a value of any type
    or size, a key of any name, a key left out."""
    tables = {"": draw(table_of({"title": TEXT, "bundle": st.just("bundle")}, ("bundle",)))}
    for name, keys in TABLES.items():
        if draw(st.booleans()):
            tables[f"[{name}]"] = draw(table_of(keys))
    scenes = draw(st.lists(table_of(SCENE_KEYS, ("name", "seed")), min_size=1, max_size=3))
    for _ in range(draw(st.integers(0, 2))):
        table = draw(st.sampled_from([*tables.values(), *scenes]))
        key = draw(st.one_of(st.sampled_from(sorted(table)), TEXT) if table else TEXT)
        if key in table and draw(st.booleans()):
            del table[key]
        else:
            table[key] = draw(VALUES)
    text = "".join(toml_text.table(header, table) for header, table in tables.items())
    return text + "".join(toml_text.table("[[scenes]]", scene) for scene in scenes)


@given(show_documents())
@settings(max_examples=400, deadline=None, suppress_health_check=RELAXED)
def test_any_show_document_loads_or_is_one_line(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    tomllib.loads(text)  # the generator writes valid TOML; the parser is under test
    path = tmp_path_factory.mktemp("show") / "show.toml"
    path.write_text(text, encoding="utf-8")
    try:
        show = load_show(path)
    except UserError as exc:
        message = str(exc)
        assert message.startswith(str(path)) and "\n" not in message, message
        event("refused")
        return
    event("loaded")
    assert show.scenes and all(check_pace(s.hold, s.morph, s.speed) is None for s in show.scenes)


def parsed_scene(values: dict[str, Any]) -> Scene | None:
    """The scene a show file with these values would play, or None when it is refused."""
    text = toml_text.table("[[scenes]]", values)
    doc = TomlDocument(Path("show.toml"), text, tomllib.loads(text))
    try:
        (scene,) = parse_scenes(Section.root(doc).tables("scenes"))
    except UserError:
        return None
    return scene


SCENES = st.fixed_dictionaries(
    {"name": st.just("a"), "seed": st.integers(0, 2**63 - 1)},
    optional={
        key: SCENE_KEYS[key]
        for key in ("hold", "morph", "easing", "truncation", "speed", "breathing")
    },
)
PACES = st.tuples(SECONDS, SECONDS, SPEEDS)


@given(
    values=SCENES,
    distribution=st.sampled_from(DISTRIBUTIONS),
    at=st.floats(0.0, 1.7e308),
    pace=st.one_of(st.none(), PACES),
    beat=st.booleans(),
    face=st.one_of(st.none(), SECONDS),
    times=st.lists(TIMES, min_size=1, max_size=4),
)
@EXAMPLES
def test_any_accepted_scene_gives_finite_latents_at_any_time(
    values: dict[str, Any],
    distribution: str,
    at: float,
    pace: tuple[float, float, float] | None,
    beat: bool,
    face: float | None,
    times: list[float],
) -> None:
    scene = parsed_scene(values)
    assume(scene is not None)
    assert scene is not None
    cue = begin(Score((scene,), SIZE, distribution, entropy=1), 0, 0.0, 0, Modulation())
    if pace is not None and check_pace(*pace) is None:  # the conductor refuses the others
        cue = cue.with_pace(at, *pace)
    if beat:
        cue = cue.with_modulation(cue.modulation.with_beat(at, 1.0))
    if face is not None:  # /face/next over any seconds it accepts
        cue = cue.next_face(at, face)
    for t in times:
        (layer,) = cue.plan_at(t).layers
        assert layer.latent.shape == (SIZE,) and layer.latent.dtype == np.float32
        assert np.all(np.isfinite(layer.latent)), (scene, pace, t)


@given(
    hold=SECONDS,
    morph=SECONDS,
    easing=st.sampled_from(sorted(EASINGS)),
    distribution=st.sampled_from(DISTRIBUTIONS),
    times=st.lists(TIMES, min_size=1, max_size=4),
)
@EXAMPLES
def test_any_valid_trajectory_is_finite_at_any_time(
    hold: float, morph: float, easing: str, distribution: str, times: list[float]
) -> None:
    assume(check_pace(hold, morph) is None)
    trajectory = Trajectory(3, SIZE, hold, morph, easing, distribution)
    latents = trajectory.latents_at(times)
    assert latents.shape == (len(times), SIZE) and np.all(np.isfinite(latents))
    assert all(0 <= trajectory.face_index_at(t) < 2**53 for t in times)
