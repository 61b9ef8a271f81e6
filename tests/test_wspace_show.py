"""A show playing a W bundle, through the real conductor, pipeline and OSC handlers: the
scene keys of W (truncation toward the average, mix, rotate, translate, label), determinism
across separate instances, and the mapping kept off the display's and controllers' threads."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from wspace_bundle import write_show, write_w_bundle

from installation.control.osc.addresses import AddressSpace
from installation.control.reload import Reloader
from installation.display import HeadlessDisplay
from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.bundle import Bundle, load_bundle
from installation.engine.ladder import BackendLadder, Rung
from installation.engine.mapping import Mapping, conductor_for
from installation.engine.paint import paint
from installation.engine.pipeline import Pipeline
from installation.errors import UserError
from installation.player import play
from installation.score.conductor import Conductor
from installation.score.show import load_show
from installation.score.wspace import transform_matrix

STORED = "[[1.0, 0.0, 0.25], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]"
CLIENT = ("127.0.0.1", 9)


def scene(**keys: object) -> str:
    lines = ['[[scenes]]\nname = "one"\nseed = 5\nhold = 1.0\nmorph = 2.0']
    lines += [f"{key} = {value}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


def parts(tmp_path: Path, scenes: str, **options: object) -> tuple[Bundle, Pipeline, Conductor]:
    """A W bundle, its pipeline on ONNX Runtime's CPU provider and a conductor for ``scenes``."""
    bundle = load_bundle(write_w_bundle(tmp_path / "bundle", **options))  # type: ignore[arg-type]
    show = load_show(write_show(tmp_path, bundle.path, scenes))
    pipeline = Pipeline.load(bundle, OnnxRuntimeBackend(CPU, threads=1))
    return bundle, pipeline, conductor_for(show, bundle, entropy=1)


def frame(pipeline: Pipeline, conductor: Conductor, t: float) -> np.ndarray:
    return paint(pipeline, conductor.plans_at([t]))[0]


def test_truncation_zero_shows_the_average_face(tmp_path: Path) -> None:
    _, pipeline, conductor = parts(tmp_path, scene(truncation=0.0, breathing=0.3))
    average = pipeline.run(pipeline.neutral_latents(1))[0]
    for t in (0.5, 2.2, 7.0):
        np.testing.assert_array_equal(frame(pipeline, conductor, t), average)
    conductor.set_truncation(1.0)  # from the last time asked for, over a second
    assert not np.array_equal(frame(pipeline, conductor, 9.0), average)


def test_same_time_same_frame_in_separate_instances(tmp_path: Path) -> None:
    keys = {"mix": "{ from_layer = 2, seed = 8 }", "rotate": 30.0, "breathing": 0.2}
    first = parts(tmp_path / "a", scene(**keys), transform=True)
    second = parts(tmp_path / "b", scene(**keys), transform=True)
    times = [0.0, 1.7, 2.9, 40.3, 1e6 + 0.25]
    for t in times:
        a, b = (frame(pipeline, conductor, t) for _, pipeline, conductor in (first, second))
        np.testing.assert_array_equal(a, b)
    plan = first[2].plans_at([2.9])[0]
    assert plan.layers[0].latent.shape == (first[0].input_size,)


def test_rotate_and_translate_glide_into_the_transform_input(tmp_path: Path) -> None:
    bundle, pipeline, conductor = parts(tmp_path, scene(), transform=True, stored=STORED)
    conductor.start(lambda: 10.0)
    space = AddressSpace(conductor, lambda: None, lambda *args: None)
    space.rotate(CLIENT, "/rotate", 90.0)
    space.translate(CLIENT, "/translate", 0.5, -0.25)
    halfway, there = (conductor.plans_at([t])[0].layers[0].latent for t in (10.5, 12.0))
    np.testing.assert_allclose(halfway[-3:], [45.0, 0.25, -0.125], atol=1e-6)
    np.testing.assert_allclose(there[-3:], [90.0, 0.5, -0.25], atol=1e-6)
    stored = np.array([[1.0, 0.0, 0.25], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    matrix = (stored @ transform_matrix((90.0, 0.5, -0.25))).astype(np.float32)
    extra = pipeline.first_extra(there[None, :])
    assert extra is not None
    np.testing.assert_allclose(extra["transform"][0], matrix, atol=1e-6)
    # The picture is the synthesis of those ws with that transform, run directly.
    session = ort.InferenceSession(str(bundle.stages[0].path), providers=[CPU])
    ws = there[:-3].reshape(1, 4, 6)
    (image,) = session.run(None, {"ws": ws, "transform": matrix[None]})
    expected = np.clip(np.round((image[0].transpose(1, 2, 0) + 1) * 127.5), 0, 255)
    np.testing.assert_allclose(frame(pipeline, conductor, 12.0), expected, atol=1)


def test_rotate_is_refused_without_a_transform(tmp_path: Path) -> None:
    _, _, conductor = parts(tmp_path, scene())
    space = AddressSpace(conductor, lambda: None, lambda *args: None)
    with pytest.raises(UserError, match="this bundle has no input transform"):
        space.rotate(CLIENT, "/rotate", 10.0)
    with pytest.raises(UserError, match="this bundle has no input transform"):
        space.translate(CLIENT, "/translate", 0.1, 0.1)


def test_a_label_picks_the_class(tmp_path: Path) -> None:
    bundle, _, conductor = parts(tmp_path, scene(label=2), c_dim=3)
    latent = conductor.plans_at([0.5])[0].layers[0].latent
    expected = Mapping(bundle).w(5, 0, 2)
    np.testing.assert_array_equal(latent[:6], expected)


def test_mapping_runs_only_where_frames_are_painted(tmp_path: Path) -> None:
    """Ticks (the display), cuts (controllers) and even plans_at map nothing: only the
    painter asking for a layer's latent does, on the worker's thread."""
    playlist = scene(duration=3.0, next='"one"') + '\n[[scenes]]\nname = "two"\nseed = 6\n'
    bundle = load_bundle(write_w_bundle(tmp_path / "bundle"))
    mapping = Mapping(bundle)
    show = load_show(write_show(tmp_path, bundle.path, playlist))
    conductor = Conductor(show, 8, "normal", 1, mapping.space())
    now = [0.0]
    conductor.start(lambda: now[0])
    for now[0] in (0.5, 2.0, 3.5, 4.0):  # across the playlist's hand-over
        conductor.tick(now[0])
    conductor.next_face(1.0)
    conductor.set_seed(11)
    conductor.go_to_scene("two")
    plans = conductor.plans_at([4.5, 6.0])
    assert mapping.cached == 0
    for plan in plans:
        assert plan.layers[0].latent.shape == (24,)
    assert mapping.cached > 0


def test_a_mapping_failing_in_the_show_restarts_the_worker_without_a_fall(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The mapping runs on the CPU under every backend: its failure (here its session
    closed under the running show) is restarted, never blamed on the backend."""
    bundle = load_bundle(write_w_bundle(tmp_path / "bundle"))
    assert bundle.w is not None
    show = load_show(write_show(tmp_path, bundle.path, scene()))
    mapping = Mapping(bundle)
    conductor = Conductor(show, 8, "normal", 1, mapping.space())
    mapping.close()

    def rung(name: str) -> Rung:
        return Rung(name, lambda: Pipeline.load(bundle, OnnxRuntimeBackend(CPU, threads=1)))

    ladder = BackendLadder([rung("first"), rung("onnxruntime-cpu")])
    ladder.start()
    display = HeadlessDisplay((32, 32))
    display.open("test")
    try:
        with caplog.at_level(logging.INFO):
            # The first frame fails (within milliseconds); 3 s leaves a loaded machine room.
            result = play(display, ladder, conductor, 30, 0.1, 3.0)
    finally:
        display.close()
    assert ladder.name == "first"
    assert not any("FAILED WHILE RUNNING" in r.getMessage() for r in caplog.records)
    failures = [r for r in caplog.records if r.name == "installation.engine.supervisor"]
    assert failures and all(r.exc_info is None for r in caplog.records)
    message = failures[0].getMessage()
    assert "restarting it in" in message and "\n" not in message
    assert f"MappingFailed: {bundle.w.mapping}: mapping a keyframe failed" in message
    assert result.generated == 0


def test_a_scene_that_loops_joins_itself_smoothly(tmp_path: Path) -> None:
    """A scene handing over to itself (a one-scene playlist) starts again from its first
    face by a morph: no jump where it begins again, and it arrives at rest."""
    _, _, conductor = parts(tmp_path, scene(duration=4.0, next='"one"', easing='"linear"'))

    def at(t: float) -> np.ndarray:
        return conductor.plans_at([t])[0].layers[0].latent.astype(np.float64)

    step = 1e-4
    scale = np.linalg.norm(at(2.0) - at(0.0))
    for boundary in (4.0, 6.0):  # the loop begins; its morph to the first face ends
        before = (at(boundary) - at(boundary - step)) / step
        after = (at(boundary + step) - at(boundary)) / step
        assert np.linalg.norm(at(boundary + step) - at(boundary - step)) < 1e-3 * scale
        assert np.linalg.norm(after - before) < 1e-2 * scale


def test_a_reload_keeps_playing_in_w(tmp_path: Path) -> None:
    bundle, pipeline, conductor = parts(tmp_path, scene())
    conductor.replace_show(load_show(tmp_path / "show.toml"))
    assert conductor.plans_at([1.0])[0].layers[0].latent.shape == (bundle.input_size,)
    assert frame(pipeline, conductor, 1.0).shape == (16, 16, 3)


def test_a_night_of_transitions_unpainted_is_painted_in_the_morning(tmp_path: Path) -> None:
    """Closing hours: the display moves a playlist on while the worker sleeps, and each
    scene here begins during the last one's morph, so each transition starts from the one
    before. Thousands of them, never painted, are one picture when the worker wakes, not a
    RecursionError in the worker every time it restarts."""
    playlist = scene(duration=1.0, next='"one"').replace("morph = 2.0", "morph = 5.0")
    bundle, pipeline, conductor = parts(tmp_path, playlist)
    for second in range(1, 3001):
        conductor.tick(float(second))
    (plan,) = conductor.plans_at([3000.5])
    assert plan.layers[0].latent.shape == (bundle.input_size,)
    assert np.isfinite(plan.layers[0].latent).all()
    assert frame(pipeline, conductor, 3000.6).shape == (16, 16, 3)


def test_a_reload_checks_its_scenes_against_the_bundle_that_plays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A reload naming another bundle takes effect at the next start; until then every later
    reload is checked against the bundle that plays too: a label its mapping has no class
    for would fail in the worker at every frame."""
    playing = write_w_bundle(tmp_path / "a", c_dim=3)
    later = write_w_bundle(tmp_path / "b", c_dim=10, seed=1)
    show = load_show(write_show(tmp_path, playing, scene()))
    applied: list[object] = []
    reloader = Reloader(show, load_bundle(show.bundle), applied.append)
    write_show(tmp_path, later, scene())
    reloader.reload()
    assert reloader.reloads == 1
    write_show(tmp_path, later, scene(label=7))
    reloader.reload()
    assert reloader.failures == 1 and len(applied) == 1
    assert "label: scene 'one': the bundle has classes 0 to 2, got 7" in caplog.text


@pytest.mark.parametrize("hold", [0.0, 1.0])
def test_a_new_hold_mid_morph_moves_no_face(tmp_path: Path, hold: float) -> None:
    """/hold between 0 and more while a face is morphing (the default easing): the morph
    keeps its progress and its path, so the picture does not jump where the change lands."""
    pace = scene().replace("hold = 1.0", f"hold = {hold}")
    _, _, conductor = parts(tmp_path, pace)
    now = [0.0]
    conductor.start(lambda: now[0])

    def at(t: float) -> np.ndarray:
        return conductor.plans_at([t])[0].layers[0].latent.astype(np.float64)

    now[0] = hold + 2.0 + hold + 0.6  # in the second morph
    before = at(now[0] + 0.1)  # the horizon: the change starts here
    face = np.linalg.norm(before - at(hold + 2.0))
    conductor.set_pace(hold=1.0 - hold)
    np.testing.assert_allclose(at(now[0] + 0.1), before, atol=1e-6 * face)


def test_the_keyframe_cache_changes_no_value(tmp_path: Path) -> None:
    """A conductor whose mapping keeps nothing, asked for the times backwards, gives the
    same layer values bit for bit as one whose cache is warm from painting them forwards."""
    keys = {"mix": "{ from_layer = 2, seed = 8 }", "breathing": 0.2, "hold": 0.0}
    text = scene(**keys).replace("hold = 1.0\n", "")
    bundle, _, warm = parts(tmp_path, text, c_dim=2)
    show = load_show(tmp_path / "show.toml")
    cold = Conductor(show, 8, "normal", 1, Mapping(bundle, cache_size=0).space())
    times = [0.0, 0.3, 1.9, 2.0, 2.05, 7.7, 1e5 + 0.5]
    forwards = [warm.plans_at([t])[0].layers[0].latent for t in times]
    backwards = [cold.plans_at([t])[0].layers[0].latent for t in reversed(times)]
    for a, b in zip(forwards, reversed(backwards), strict=True):
        np.testing.assert_array_equal(a, b)


def test_two_processes_render_the_same_frames(tmp_path: Path) -> None:
    keys = {"mix": "{ from_layer = 2, seed = 8 }", "rotate": 30.0, "breathing": 0.2}
    bundle = write_w_bundle(tmp_path / "bundle", transform=True)
    show = write_show(tmp_path, bundle, scene(**keys))
    command = Path(sys.executable).with_name("installation")
    for out in ("a", "b"):
        args = [command, "render", show, "--seconds", "4", "--fps", "3", "--out", tmp_path / out]
        subprocess.run(args, check=True, capture_output=True, timeout=120)
    frames = sorted(path.name for path in (tmp_path / "a").glob("frame_*.png"))
    assert len(frames) == 12
    for name in frames:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
