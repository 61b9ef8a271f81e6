"""Motion in W on a real (tiny) mapping: the spline passes through the keyframes, is C1 at
them with and without holds, and mixes, truncates and caches as the docs say."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from wspace_bundle import write_w_bundle

from installation.engine.bundle import load_bundle
from installation.engine.mapping import Mapping
from installation.score.trajectory import Trajectory, keyframe
from installation.score.wspace import UPRIGHT, WSpace, transform_matrix

SEED = 3
#: Seconds either side of a keyframe for the finite differences.
STEP = 1e-4


@pytest.fixture(scope="module")
def mapping(tmp_path_factory: pytest.TempPathFactory) -> Mapping:
    return Mapping(load_bundle(write_w_bundle(tmp_path_factory.mktemp("w") / "bundle")))


@pytest.fixture(scope="module")
def space(mapping: Mapping) -> WSpace:
    return mapping.space()


def path(space: WSpace, trajectory: Trajectory) -> Callable[[float], np.ndarray]:
    return lambda t: space.offset_at(trajectory, t, 0)


def velocities(at: Callable[[float], np.ndarray], t: float) -> tuple[np.ndarray, np.ndarray]:
    """The velocity just before and just after ``t``, by one-sided finite differences."""
    return (at(t) - at(t - STEP)) / STEP, (at(t + STEP) - at(t)) / STEP


def test_keyframes_are_mapped_once_each_and_exactly(mapping: Mapping) -> None:
    w = mapping.w(SEED, 5)
    assert w.dtype == np.float32 and w.shape == (6,)
    assert mapping.w(SEED, 5) is w, "the second call comes from the cache"
    np.testing.assert_array_equal(w, mapping.map(keyframe(SEED, 5, 8)))


@pytest.mark.parametrize(("hold", "morph"), [(1.0, 2.0), (0.0, 2.0), (2.0, 0.0)])
def test_the_path_passes_through_every_keyframe_exactly(
    space: WSpace, mapping: Mapping, hold: float, morph: float
) -> None:
    trajectory = Trajectory(SEED, 8, hold, morph, "linear")
    for index in range(4):
        t = index * trajectory.period
        ws = space.ws(space.offset_at(trajectory, t, 0), None, 1.0, 0.0, UPRIGHT.at(0.0))
        expected = np.tile(mapping.w(SEED, index), space.num_ws)
        np.testing.assert_array_equal(ws, expected)  # exact, not close
    if hold:  # and a held face is its keyframe all through the hold
        held = space.offset_at(trajectory, trajectory.period + 0.9 * hold, 0)
        np.testing.assert_array_equal(held, space.offset(SEED, 1, 0))


@pytest.mark.parametrize("easing", ["linear", "smoothstep", "cosine"])
@pytest.mark.parametrize("hold", [0.0, 1.5])
def test_the_velocity_is_continuous_at_keyframes(space: WSpace, hold: float, easing: str) -> None:
    trajectory = Trajectory(SEED, 8, hold, 2.0, easing)
    at = path(space, trajectory)
    speed = np.linalg.norm(space.offset(SEED, 2, 0) - space.offset(SEED, 1, 0)) / 2.0
    for index in (1, 2, 3):
        for t in (index * trajectory.period, index * trajectory.period + hold):
            before, after = velocities(at, t)
            assert np.linalg.norm(after - before) < 1e-2 * speed, (index, t)
    # Linear easing without holds flows through the faces: the velocity there is not 0.
    if hold == 0 and easing == "linear":
        assert np.linalg.norm(velocities(at, 2 * trajectory.period)[0]) > 0.1 * speed


def test_the_check_sees_a_kink_where_there_is_one(space: WSpace) -> None:
    """The finite differences above can fail: a straight line from face to face at constant
    speed (what a lerp with linear easing and no hold would be) turns a corner at a face."""
    period = 2.0

    def lerp(t: float) -> np.ndarray:
        index, phase = divmod(t, period)
        a, b = space.offset(SEED, int(index), 0), space.offset(SEED, int(index) + 1, 0)
        return a + phase / period * (b - a)

    before, after = velocities(lerp, 2 * period)
    speed = np.linalg.norm(space.offset(SEED, 2, 0) - space.offset(SEED, 1, 0)) / period
    assert np.linalg.norm(after - before) > 0.1 * speed


def test_the_walk_starts_from_rest(space: WSpace) -> None:
    """Face 0 has a zero tangent even without holds: the walk joins the transition that
    brought the scene in (which ends at rest) without a kink, each time the scene begins."""
    at = path(space, Trajectory(SEED, 8, 0.0, 2.0, "linear"))
    assert np.linalg.norm(velocities(at, STEP)[0]) < 1e-2


def test_truncation_pulls_toward_the_average(space: WSpace) -> None:
    offset = space.offset(SEED, 0, 0)
    average = np.tile(space.average, space.num_ws)
    np.testing.assert_array_equal(space.ws(offset, None, 0.0, 0.0, (0.0, 0.0, 0.0)), average)
    half = space.ws(offset, None, 0.5, 0.0, (0.0, 0.0, 0.0))
    full = space.ws(offset, None, 1.0, 0.0, (0.0, 0.0, 0.0))
    np.testing.assert_allclose(half, (average + full) / 2, atol=1e-6)


def test_mixing_takes_the_fine_layers_from_the_other_face(space: WSpace) -> None:
    trajectory = Trajectory(SEED, 8, 1.0, 2.0)
    other = Trajectory(99, 8, 1.0, 2.0)
    t = 4.2  # during a morph: both faces are moving
    mine, theirs = space.offset_at(trajectory, t, 0), space.offset_at(other, t, 0)
    ws = space.ws(mine, (2, theirs), 1.0, 0.0, (0.0, 0.0, 0.0)).reshape(space.num_ws, -1)
    expected_mine = (space.average + mine).astype(np.float32)
    expected_theirs = (space.average + theirs).astype(np.float32)
    for layer in range(space.num_ws):
        expected = expected_mine if layer < 2 else expected_theirs
        np.testing.assert_array_equal(ws[layer], expected)


def test_the_cache_stays_bounded(tmp_path: Path) -> None:
    mapping = Mapping(load_bundle(write_w_bundle(tmp_path / "bundle")), cache_size=8)
    first = mapping.w(SEED, 0).copy()
    trajectory = Trajectory(SEED, 8, 0.0, 0.5)
    space = mapping.space()
    for step in range(200):  # 50 faces with four keyframes each in reach
        space.offset_at(trajectory, step * 0.13, 0)
    assert mapping.cached == 8
    np.testing.assert_array_equal(mapping.w(SEED, 0), first)  # mapped again, the same


def test_a_label_is_a_one_hot_class(tmp_path: Path) -> None:
    mapping = Mapping(load_bundle(write_w_bundle(tmp_path / "bundle", c_dim=3)))
    z = keyframe(SEED, 0, 8)
    assert not np.array_equal(mapping.w(SEED, 0, 0), mapping.w(SEED, 0, 2))
    np.testing.assert_array_equal(mapping.w(SEED, 0, 2), mapping.map(z, 2))


def test_the_view_matrix_is_the_inverse_of_the_turn() -> None:
    """Rotating by 90 degrees then moving by (0.5, 0) maps (1, 0) to (0.5, -1); the input
    transform maps it back."""
    back = transform_matrix((90.0, 0.5, 0.0))
    np.testing.assert_allclose(back @ [0.5, -1.0, 1.0], [1.0, 0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(transform_matrix((0.0, 0.0, 0.0)), np.eye(3))
