"""Latent trajectory math: easing curves, keyframes, slerp and the hold/morph timeline."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from installation.errors import UserError
from installation.score.easing import EASINGS, get_easing
from installation.score.scenes import MIN_SECONDS
from installation.score.trajectory import TIME_LIMIT, Trajectory, keyframe, slerp

FORTY_DAYS = 40 * 24 * 3600.0
FPS = 60.0


def _max_slope(curve) -> float:
    """Steepest slope of an easing curve, measured on a fine grid."""
    x = np.linspace(0.0, 1.0, 100_001)
    return float(np.max(np.diff(curve(x))) / (x[1] - x[0]))


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    return math.acos(min(1.0, max(-1.0, cos)))


def _path_length_bound(a: np.ndarray, b: np.ndarray) -> float:
    """Upper bound on |d slerp(a, b, s) / ds|: norm changes by ||b| - |a|| while the
    direction sweeps the angle between them at radius at most max(|a|, |b|)."""
    norm_a = float(np.linalg.norm(a.astype(np.float64)))
    norm_b = float(np.linalg.norm(b.astype(np.float64)))
    return abs(norm_b - norm_a) + max(norm_a, norm_b) * _angle(a, b)


# Easing


@pytest.mark.parametrize("name", sorted(EASINGS))
def test_easing_exact_at_ends_and_monotonic(name: str) -> None:
    curve = get_easing(name)
    assert curve(0.0) == 0.0
    assert curve(1.0) == 1.0
    np.testing.assert_array_equal(curve(np.array([0.0, 1.0])), [0.0, 1.0])
    x = np.linspace(0.0, 1.0, 1_000_001)
    y = curve(x)
    assert np.all(np.diff(y) >= 0.0)
    assert y.min() == 0.0
    assert y.max() == 1.0
    near_one = np.linspace(0.999, 1.0, 100_001)
    assert np.all(np.diff(curve(near_one)) >= 0.0)


@pytest.mark.parametrize("name", sorted(EASINGS))
def test_easing_clamps_and_accepts_floats(name: str) -> None:
    curve = get_easing(name)
    assert curve(-2.0) == 0.0
    assert curve(3.0) == 1.0
    value = float(curve(0.25))
    assert 0.0 < value < 1.0
    assert value == pytest.approx(float(curve(np.array([0.25]))[0]))


def test_easing_shapes() -> None:
    assert float(get_easing("linear")(0.3)) == pytest.approx(0.3)
    assert float(get_easing("smoothstep")(0.25)) == pytest.approx(0.15625)
    assert float(get_easing("smootherstep")(0.25)) == pytest.approx(0.103515625)
    assert float(get_easing("cosine")(0.25)) == pytest.approx((1 - math.cos(math.pi / 4)) / 2)
    for name in ("smoothstep", "smootherstep", "cosine"):
        assert float(get_easing(name)(0.5)) == pytest.approx(0.5)
    assert _max_slope(get_easing("smoothstep")) == pytest.approx(1.5, rel=1e-3)
    assert _max_slope(get_easing("smootherstep")) == pytest.approx(1.875, rel=1e-3)
    assert _max_slope(get_easing("cosine")) == pytest.approx(math.pi / 2, rel=1e-3)


def test_unknown_easing_lists_valid_names() -> None:
    with pytest.raises(UserError, match="bouncy") as caught:
        get_easing("bouncy")
    for name in ("linear", "smoothstep", "smootherstep", "cosine"):
        assert name in str(caught.value)


# Keyframes


def test_keyframe_golden_values() -> None:
    expected = np.array([-1.667279, 0.06387511, 1.4946322, -1.1283952], dtype=np.float32)
    result = keyframe(seed=7, index=3, size=4)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, expected)
    expected_uniform = np.array([0.9500671, 0.76913446, -0.53605914, 0.46252486], np.float32)
    np.testing.assert_array_equal(keyframe(7, 3, 4, "uniform"), expected_uniform)


def test_keyframe_depends_only_on_seed_and_index() -> None:
    np.testing.assert_array_equal(keyframe(7, 3, 512), keyframe(7, 3, 512))
    assert not np.array_equal(keyframe(7, 3, 512), keyframe(7, 4, 512))
    assert not np.array_equal(keyframe(7, 3, 512), keyframe(8, 3, 512))
    big = keyframe(7, 5_000_000, 512)
    assert big.shape == (512,)
    np.testing.assert_array_equal(big, keyframe(7, 5_000_000, 512))


def test_keyframe_distributions() -> None:
    normal = keyframe(1, 0, 100_000)
    assert abs(normal.mean()) < 0.02
    assert normal.std() == pytest.approx(1.0, abs=0.02)
    uniform = keyframe(1, 0, 100_000, "uniform")
    assert uniform.min() >= -1.0
    assert uniform.max() <= 1.0
    assert uniform.std() == pytest.approx(1 / math.sqrt(3), abs=0.02)


def test_keyframe_errors() -> None:
    with pytest.raises(UserError, match="cauchy"):
        keyframe(1, 0, 8, "cauchy")
    with pytest.raises(UserError, match="seed"):
        keyframe(-1, 0, 8)
    with pytest.raises(UserError, match="size"):
        keyframe(1, 0, 0)


# Slerp


def _pair(norm_a: float, norm_b: float, size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(123)
    a = rng.standard_normal(size)
    b = rng.standard_normal(size)
    return a / np.linalg.norm(a) * norm_a, b / np.linalg.norm(b) * norm_b


@pytest.mark.parametrize(("norm_a", "norm_b"), [(22.6, 22.6), (20.0, 25.0), (3.0, 0.5)])
def test_slerp_norm_goes_linearly_between_norms(norm_a: float, norm_b: float) -> None:
    a, b = _pair(norm_a, norm_b)
    for t in np.linspace(0.0, 1.0, 21):
        result = slerp(a, b, float(t))
        expected = (1 - t) * norm_a + t * norm_b
        assert np.linalg.norm(result) == pytest.approx(expected, rel=1e-5)


def test_slerp_follows_the_great_circle() -> None:
    a, b = _pair(20.0, 25.0)
    total = _angle(a, b)
    for t in (0.1, 0.5, 0.8):
        result = slerp(a, b, t)
        assert _angle(a, result) == pytest.approx(t * total, rel=1e-6)
        assert _angle(result, b) == pytest.approx((1 - t) * total, rel=1e-6)


def test_slerp_endpoints_exact() -> None:
    a = keyframe(3, 0, 512)
    b = keyframe(3, 1, 512)
    for t, expected in ((0.0, a), (1.0, b), (-0.5, a), (1.5, b)):
        result = slerp(a, b, t)
        assert result.dtype == np.float32
        np.testing.assert_array_equal(result, expected)
    assert slerp(a, b, 0.0) is not a


def test_slerp_nearly_parallel_and_degenerate_inputs() -> None:
    a, _ = _pair(10.0, 1.0)
    nudge = np.random.default_rng(5).standard_normal(a.size) * 1e-9
    b = a * 1.5 + nudge
    for t in (0.25, 0.5, 0.75):
        result = slerp(a, b, t)
        assert np.all(np.isfinite(result))
        np.testing.assert_allclose(result, (1 - t) * a + t * b, rtol=1e-9, atol=1e-9)
        assert np.linalg.norm(result) == pytest.approx((1 - t) * 10.0 + t * 15.0, rel=1e-5)
    np.testing.assert_array_equal(slerp(a, a, 0.3), a)
    zero = np.zeros_like(a)
    np.testing.assert_allclose(slerp(zero, a, 0.25), 0.25 * a)


# Trajectory timeline


def _trajectory(**changes) -> Trajectory:
    params = {"seed": 11, "latent_size": 64, "hold": 2.0, "morph": 3.0}
    params.update(changes)
    return Trajectory(**params)


@pytest.mark.parametrize("start", [0.0, FORTY_DAYS])
def test_hold_is_exactly_the_keyframe(start: float) -> None:
    trajectory = _trajectory()
    first = int(start // trajectory.period)
    for index in (first, first + 1, first + 7):
        begin = index * trajectory.period
        expected = keyframe(11, index, 64)
        for t in (begin, begin + 0.5, begin + trajectory.hold - 1e-6):
            result = trajectory.latent_at(t)
            assert result.dtype == np.float32
            assert result.shape == (64,)
            np.testing.assert_array_equal(result, expected)
            assert trajectory.face_index_at(t) == index


@pytest.mark.parametrize("start", [0.0, FORTY_DAYS])
def test_morph_ends_on_next_keyframe(start: float) -> None:
    trajectory = _trajectory()
    index = int(start // trajectory.period) + 2
    end = (index + 1) * trajectory.period
    result = trajectory.latent_at(end - 1e-6)
    assert trajectory.face_index_at(end - 1e-6) == index
    np.testing.assert_allclose(result, keyframe(11, index + 1, 64), rtol=1e-6, atol=1e-6)
    middle = trajectory.latent_at(end - trajectory.morph / 2)
    assert not np.allclose(middle, keyframe(11, index, 64))
    assert not np.allclose(middle, keyframe(11, index + 1, 64))


@pytest.mark.parametrize("easing", sorted(EASINGS))
@pytest.mark.parametrize("start", [0.0, 1234.5, FORTY_DAYS])
def test_continuous_at_60_fps(easing: str, start: float) -> None:
    trajectory = _trajectory(easing=easing)
    times = start + np.arange(int(3.5 * trajectory.period * FPS)) / FPS
    latents = trajectory.latents_at(times).astype(np.float64)
    steps = np.linalg.norm(np.diff(latents, axis=0), axis=1)
    faces = [trajectory.face_index_at(t) for t in times]
    assert faces[-1] - faces[0] >= 3
    assert np.count_nonzero(steps) > trajectory.morph * FPS

    # Per frame the eased parameter moves at most slope * dt / morph, and the slerp path
    # moves at most its length bound per unit of parameter.
    slope = _max_slope(get_easing(easing))
    for i, step in enumerate(steps):
        face = faces[i]
        a = keyframe(11, face, 64)
        b = keyframe(11, face + 1, 64)
        bound = 1.01 * slope / (trajectory.morph * FPS) * _path_length_bound(a, b) + 1e-5
        assert step <= bound, f"frame {i} at t={times[i]}: step {step} > {bound}"
        assert step < 0.02 * np.linalg.norm(a.astype(np.float64) - b)


@pytest.mark.parametrize("start", [0.0, FORTY_DAYS])
def test_no_jump_at_period_boundaries(start: float) -> None:
    trajectory = _trajectory()
    first = int(start // trajectory.period) + 1
    for index in range(first, first + 3):
        distance = np.linalg.norm(
            keyframe(11, index, 64).astype(np.float64) - keyframe(11, index - 1, 64)
        )
        for boundary in (index * trajectory.period, index * trajectory.period + trajectory.hold):
            before = trajectory.latent_at(boundary - 1e-6)
            at = trajectory.latent_at(boundary)
            after = trajectory.latent_at(boundary + 1e-6)
            assert np.linalg.norm(at - before) < 1e-4 * distance
            assert np.linalg.norm(after - at) < 1e-4 * distance


def test_face_index_and_negative_time() -> None:
    trajectory = _trajectory()
    assert trajectory.face_index_at(0.0) == 0
    assert trajectory.face_index_at(4.999) == 0
    assert trajectory.face_index_at(5.0) == 1
    assert trajectory.face_index_at(FORTY_DAYS) == int(FORTY_DAYS // 5.0)
    assert trajectory.face_index_at(-3.0) == 0
    np.testing.assert_array_equal(trajectory.latent_at(-3.0), trajectory.latent_at(0.0))
    with pytest.raises(ValueError, match="finite"):
        trajectory.latent_at(math.nan)


def test_the_walk_stops_at_the_time_limit() -> None:
    """Past ``TIME_LIMIT`` (over 30,000 years) the walk stays on the face it reached rather
    than overflow; the shortest period still counts faces exactly there."""
    fastest = _trajectory(hold=0.0, morph=MIN_SECONDS)
    at_limit = fastest.latent_at(TIME_LIMIT)
    for t in (TIME_LIMIT * 2, 1e300, sys.float_info.max):
        np.testing.assert_array_equal(fastest.latent_at(t), at_limit)
    assert abs(fastest.face_index_at(TIME_LIMIT) - TIME_LIMIT * 240) <= 1


def test_hard_cuts_and_continuous_morph() -> None:
    cuts = _trajectory(hold=4.0, morph=0.0)
    np.testing.assert_array_equal(cuts.latent_at(3.999), keyframe(11, 0, 64))
    np.testing.assert_array_equal(cuts.latent_at(4.0), keyframe(11, 1, 64))
    flowing = _trajectory(hold=0.0, morph=2.0)
    np.testing.assert_array_equal(flowing.latent_at(4.0), keyframe(11, 2, 64))
    middle = flowing.latent_at(5.0)
    assert not np.allclose(middle, keyframe(11, 2, 64))


def test_deterministic_by_parameters() -> None:
    times = [0.0, 1.0, 2.5, 4.2, 77.7, FORTY_DAYS + 3.3]
    first = _trajectory().latents_at(times)
    np.testing.assert_array_equal(first, _trajectory().latents_at(times))
    other = _trajectory(seed=12).latents_at(times)
    for row_a, row_b in zip(first, other, strict=True):
        assert not np.allclose(row_a, row_b)


def test_latents_at_matches_latent_at() -> None:
    trajectory = _trajectory(easing="cosine", distribution="uniform")
    times = [0.0, 1.9, 2.0, 3.3, 5.0, 6.7, -1.0, FORTY_DAYS + 2.9]
    batch = trajectory.latents_at(times)
    assert batch.shape == (len(times), 64)
    assert batch.dtype == np.float32
    for row, t in zip(batch, times, strict=True):
        np.testing.assert_array_equal(row, trajectory.latent_at(t))
    assert trajectory.latents_at([]).shape == (0, 64)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"easing": "bouncy"}, "smoothstep"),
        ({"distribution": "cauchy"}, "normal"),
        ({"hold": -1.0}, "hold"),
        ({"morph": -1.0}, "morph"),
        ({"hold": 0.0, "morph": 0.0}, "positive"),
        ({"hold": 0.0, "morph": 5e-324}, "shorter than one frame"),
        ({"hold": 1e-3, "morph": 1.0}, "shorter than one frame"),
        ({"hold": math.nan}, "hold"),
        ({"morph": math.inf}, "morph"),
        ({"seed": -5}, "seed"),
        ({"latent_size": 0}, "size"),
    ],
)
def test_invalid_parameters_raise_user_error(changes: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        _trajectory(**changes)
