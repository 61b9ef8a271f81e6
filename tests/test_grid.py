"""The grid layout's face streams: stream k plays the show with every seed offset by k, all
streams go through the pipeline as one batch per frame, and the painter tiles them into one
mosaic that equals the single-stream frames side by side (real ONNX Runtime sessions)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import DEFAULT_SHOW
from wspace_bundle import write_show, write_w_bundle

from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.bundle import Bundle, load_bundle
from installation.engine.mapping import conductor_for
from installation.engine.paint import paint, single_layer, tile
from installation.engine.pipeline import Pipeline
from installation.errors import UserError
from installation.score.conductor import Conductor
from installation.score.plan import FramePlan, Layer, Mosaic
from installation.score.show import DisplaySettings, Show, load_show
from installation.session import load_parts

SEED = 31
#: Show times across a hold, a morph and the next hold of a 1 s hold, 1 s morph scene.
TIMES = (0.0, 0.5, 1.25, 1.5, 2.75)


@pytest.fixture(scope="module")
def default_parts() -> tuple[Show, Bundle, Pipeline]:
    show, bundle, _ = load_parts(DEFAULT_SHOW)
    # The generator alone (64 px): the refinement stage would only make the test slower.
    scene = replace(show.scenes[0], seed=SEED, hold=1.0, morph=1.0, stages=1, transition="morph")
    show = replace(show, scenes=(scene,))
    return show, bundle, Pipeline.load(bundle, OnnxRuntimeBackend(CPU, threads=1))


def on_grid(show: Show, rows: int, columns: int) -> Show:
    return replace(show, display=replace(show.display, grid=(rows, columns)))


def reseeded(show: Show, seed: int) -> Show:
    return replace(show, scenes=(replace(show.scenes[0], seed=seed),))


def counted(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The batch sizes of every run of the real ``pipeline`` from now on."""
    batches: list[int] = []
    run = pipeline.run

    def counting(latents: np.ndarray, stages: int | None = None) -> np.ndarray:
        batches.append(len(latents))
        return run(latents, stages)

    monkeypatch.setattr(pipeline, "run", counting)
    return batches


def assert_tiled(mosaic: np.ndarray, faces: list[np.ndarray], rows: int, columns: int) -> None:
    """``mosaic`` is ``faces`` row by row with a 2 px gutter (64 px faces) of the default
    background colour."""
    size, gutter = faces[0].shape[0], 2
    background = DisplaySettings().background
    assert mosaic.shape == (rows * (size + gutter) - gutter, columns * (size + gutter) - gutter, 3)
    for index, face in enumerate(faces):
        y, x = (step * (size + gutter) for step in divmod(index, columns))
        np.testing.assert_array_equal(mosaic[y : y + size, x : x + size], face)
    for k in range(1, rows):
        assert (mosaic[k * (size + gutter) - gutter : k * (size + gutter)] == background).all()
    for k in range(1, columns):
        assert (mosaic[:, k * (size + gutter) - gutter : k * (size + gutter)] == background).all()


def test_a_2x2_mosaic_is_four_seeds_tiled_in_one_batch(
    default_parts: tuple[Show, Bundle, Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    show, bundle, pipeline = default_parts
    singles = [
        Conductor(reseeded(show, SEED + k), bundle.latent_size, bundle.latent_distribution)
        for k in range(4)
    ]
    grid = Conductor(on_grid(show, 2, 2), bundle.latent_size, bundle.latent_distribution)
    faces = {t: [paint(pipeline, single.plans_at([t]))[0] for single in singles] for t in TIMES}
    batches = counted(pipeline, monkeypatch)
    for t in TIMES:
        (mosaic,) = paint(pipeline, grid.plans_at([t]))
        assert_tiled(mosaic, faces[t], 2, 2)
    assert batches == [4] * len(TIMES), "one batch of every stream per frame"
    assert all(len({face.tobytes() for face in faces[t]}) == 4 for t in TIMES)


def test_transitions_start_from_each_streams_own_picture(
    default_parts: tuple[Show, Bundle, Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new seed mid-morph, by crossfade and by morph: each cell leaves its own face for
    its own new one, and a crossfade's two pictures per cell still make one batch."""
    show, bundle, pipeline = default_parts
    for transition in ("crossfade", "morph"):
        scene = replace(show.scenes[0], transition=transition)
        base = replace(show, scenes=(scene,))
        rows, columns = 1, 3
        singles = [
            Conductor(reseeded(base, SEED + k), bundle.latent_size, bundle.latent_distribution)
            for k in range(3)
        ]
        grid = Conductor(
            on_grid(base, rows, columns), bundle.latent_size, bundle.latent_distribution
        )
        for conductor in (*singles, grid):
            conductor.start(lambda: 1.5)
        for k, single in enumerate(singles):
            single.set_seed(700 + k)
        grid.set_seed(700)
        t = 2.0  # half way through the new seed's transition
        faces = [paint(pipeline, single.plans_at([t]))[0] for single in singles]
        batches = counted(pipeline, monkeypatch)
        (plan,) = grid.plans_at([t])
        (mosaic,) = paint(pipeline, [plan])
        assert_tiled(mosaic, faces, rows, columns)
        layers = 2 if transition == "crossfade" else 1
        assert batches == [layers * rows * columns]
        assert (single_layer(plan) is None) == (transition == "crossfade")
        monkeypatch.undo()


def test_a_w_bundle_grid_gives_each_stream_its_own_seed(tmp_path: Path) -> None:
    scene = '[[scenes]]\nname = "one"\nseed = 5\nhold = 1.0\nmorph = 2.0\nbreathing = 0.2\n'
    scene += "mix = { from_layer = 2, seed = 8 }\n"
    bundle = load_bundle(write_w_bundle(tmp_path / "bundle"))
    show = load_show(write_show(tmp_path, bundle.path, scene))
    pipeline = Pipeline.load(bundle, OnnxRuntimeBackend(CPU, threads=1))
    grid = conductor_for(on_grid(show, 2, 1), bundle, entropy=1)
    first = conductor_for(show, bundle, entropy=1)
    with_mix = replace(show.scenes[0].mix, seed=9)
    second = conductor_for(
        replace(show, scenes=(replace(show.scenes[0], seed=6, mix=with_mix),)), bundle, entropy=1
    )
    for t in (0.3, 2.1):
        (mosaic,) = paint(pipeline, grid.plans_at([t]))
        top, bottom = (paint(pipeline, single.plans_at([t]))[0] for single in (first, second))
        assert not np.array_equal(top, bottom)
        gutter = 1  # 16 px cells
        np.testing.assert_array_equal(mosaic[:16], top)
        np.testing.assert_array_equal(mosaic[16 + gutter :], bottom)


def test_tiles_keep_the_mosaic_shape_when_cells_shrink() -> None:
    """Adaptive quality halves the cells: the gutters shrink with them, so the display's fit
    of the mosaic does not jump."""
    layer = Layer(np.zeros(4, np.float32), None)
    mosaic = Mosaic((FramePlan((layer,)),) * 6, columns=3, background=(10, 20, 30))
    shapes = []
    for size in (256, 128, 64):
        face = np.full((size, size, 3), 200, np.uint8)
        picture = tile(mosaic, [face] * 6)
        shapes.append(picture.shape[1] / picture.shape[0])
        gutter = size // 32
        assert (picture[size : size + gutter] == (10, 20, 30)).all()
        assert (picture[:size, :size] == 200).all()
    assert shapes[0] == shapes[1] == shapes[2]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ('layout = "grid"\ngrid = [3, 5]', "expected [rows, columns] of 1 to 4 each"),
        ('layout = "grid"\ngrid = [1, 1]', "more than one face; got [1, 1]"),
        ('layout = "grid"\ngrid = [0, 2]', "every size must be positive"),
        ('layout = "grid"\ngrid = [2]', "expected 2 integers"),
        ("grid = [2, 2]", 'only read with layout = "grid" (layout is "fill")'),
    ],
)
def test_grid_mistakes_are_one_line_naming_the_key(
    tmp_path: Path, lines: str, expected: str
) -> None:
    path = tmp_path / "show.toml"
    path.write_text(f'bundle = "b"\n[display]\n{lines}\n[[scenes]]\nname = "a"\nseed = 1\n')
    with pytest.raises(UserError) as info:
        load_show(path)
    message = str(info.value)
    assert message.startswith(f"{path}:") and "display.grid" in message and expected in message
    assert "\n" not in message


def test_a_grid_layout_reads_its_rows_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "show.toml"
    scene = '[[scenes]]\nname = "a"\nseed = 1\n'
    path.write_text(f'bundle = "b"\n[display]\nlayout = "grid"\ngrid = [1, 4]\n{scene}')
    assert load_show(path).display.grid == (1, 4)
    path.write_text(f'bundle = "b"\n[display]\nlayout = "grid"\n{scene}')
    assert load_show(path).display.grid == (2, 2)
    path.write_text(f'bundle = "b"\n{scene}')
    assert load_show(path).display.grid == (1, 1)
