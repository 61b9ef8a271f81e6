"""The figures inside training runs: held-out photographs never trained on, the same figures
for the same run, a broken run ranked last by every figure, and export by the best epoch.

The runs are tiny (two epochs of eight steps on five generated 64 px pictures) but real: the
fixed seeds come from the default bundle's 64 px generator through ONNX Runtime, and faces are
counted by OpenCV's cascade on the stage's 256 px pictures of them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image
from wspace_bundle import write_w_bundle

import export.train_stage as train_module
from export.base_chain import draw_base
from export.figures import FIGURES, best_epoch, merit
from export.refine import RefineGenerator
from export.stage_config import RefineConfig, TrainOptions
from export.train_stage import CHECKPOINT, load_run, train_stage
from installation.cli import main
from installation.errors import UserError

TINY = RefineConfig(scale=4, width=8, blocks=1, disc_width=4)
OPTIONS = TrainOptions(
    crop=32, batch=4, epochs=2, steps_per_epoch=8, lr=2e-3, gan_after=6, seed=3, eval_seeds=4
)
BROKEN = TrainOptions(**{**vars(OPTIONS), "lr": 100.0})
PHOTOS = 5
SECONDS = ("seconds", "figures_seconds")


def quiet(_: str) -> None:
    """Training's progress lines, swallowed."""


def signature(index: int) -> int:
    """The blue value every pixel of photograph ``index`` has: any crop names its photograph."""
    return 30 + 40 * index


def make_photos(folder: Path) -> Path:
    """Pictures with waves, an edge and faint noise in red and green, and a constant blue
    that tells them apart."""
    folder.mkdir()
    y, x = np.mgrid[0:64, 0:64]
    for index in range(PHOTOS):
        rng = np.random.default_rng(index)
        wave = np.sin(x / (5 + index) + y / (7 + index))[..., None] * np.array([70, 50, 0])
        edge = ((x + 2 * y) > 60 + 10 * index)[..., None] * np.array([60, 40, 0])
        noise = np.concatenate([rng.normal(0, 2, (64, 64, 2)), np.zeros((64, 64, 1))], -1)
        pixels = np.array([60, 80, signature(index)]) + wave + edge + noise
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"p{index}.png")
    return folder


@dataclass(frozen=True)
class Runs:
    photos: Path
    sane: Path
    broken: Path
    drawn: set[int]
    """The blue signatures of every crop ``_batch`` cut in the sane run."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """A sane and a broken (learning rate 100) run of the same data, on one thread (tiny
    models gain nothing from threads); the sane run records every crop it trains on."""
    root = tmp_path_factory.mktemp("runs")
    photos = make_photos(root / "photos")
    drawn: set[int] = set()
    real_batch = train_module._batch

    def recording(*args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        small, large = real_batch(*args, **kwargs)
        blue = torch.round((large[:, 2] + 1) * 127.5)
        drawn.update(int(value) for value in blue.flatten().unique())
        return small, large

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module, "_batch", recording)
        train_stage(photos, root / "sane", TINY, OPTIONS, say=quiet)
    train_stage(photos, root / "broken", TINY, BROKEN, say=quiet)
    yield Runs(photos, root / "sane", root / "broken", drawn)
    torch.set_num_threads(threads)


def history(run: Path) -> dict:
    return json.loads((run / "history.json").read_text(encoding="utf-8"))


def test_held_out_photographs_never_enter_training(runs: Runs) -> None:
    run = history(runs.sane)["run"]
    names = [f"p{index}.png" for index in range(PHOTOS)]
    assert run["holdout_source"] == "share 0.2" and len(run["holdout"]) == 1
    assert sorted(run["holdout"] + run["training_images"]) == names
    held = names.index(run["holdout"][0])
    # Every training photograph gave crops, the held-out one none (blue is never mirrored).
    assert runs.drawn == {signature(i) for i in range(PHOTOS) if i != held}
    assert load_run(runs.sane)["data"]["images"] == run["training_images"]


def test_run_folder_holds_history_sheets_strip_and_best_weights(runs: Runs) -> None:
    document = history(runs.sane)
    assert document["version"] == 1
    assert document["run"]["base"] == {
        "bundle": str((Path(__file__).parent.parent / "bundles" / "faces-256").resolve()),
        "name": "faces-256",
        "stages": 1,
        "size": 64,
    }
    assert document["run"]["eval_seeds"] == [0, 1, 2, 3] and document["run"]["tile"] == 32
    bars = document["baselines"]
    assert bars["bicubic"]["psnr"] > bars["bilinear"]["psnr"] > 10
    # The chain with the stage replaced by bilinear upscaling, as the untrained stage is.
    assert bars["bilinear"]["faces_of"] == 4 and 0 < bars["bilinear"]["sharpness"] < 1
    epochs = document["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2] and epochs[-1]["step"] == 16
    assert all(e["faces_of"] == 4 and e["faces"] == e["faces_found"] / 4 for e in epochs)
    header = (runs.sane / "history.csv").read_text().splitlines()[0].split(",")
    assert header == list(epochs[0])
    with Image.open(runs.sane / "sheets" / "epoch-0002.png") as sheet:
        assert sheet.size == (2 + 2 * 258, 2 + 2 * 258)  # four 256 px pictures, 2 px apart
    with Image.open(runs.sane / "sheets" / "strip.gif") as strip:
        assert strip.n_frames == 2 and strip.width == 384
    for figure in FIGURES:
        kept = torch.load(runs.sane / "best" / f"{figure}.pt", weights_only=True)
        assert kept["epoch"] == best_epoch(epochs, figure)["epoch"]
        assert kept["value"] == best_epoch(epochs, figure)[figure]


def test_the_same_run_again_gives_the_same_figures(runs: Runs, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    train_stage(runs.photos, tmp_path / "again", TINY, OPTIONS, say=quiet)

    def figures(run: Path) -> list[dict]:
        return [{k: v for k, v in e.items() if k not in SECONDS} for e in history(run)["epochs"]]

    assert figures(tmp_path / "again") == figures(runs.sane)
    assert history(tmp_path / "again")["baselines"] == history(runs.sane)["baselines"]
    sheet = "sheets/epoch-0002.png"
    assert (tmp_path / "again" / sheet).read_bytes() == (runs.sane / sheet).read_bytes()


def test_a_broken_run_is_ranked_last_by_every_figure(runs: Runs) -> None:
    sane, broken = history(runs.sane)["epochs"], history(runs.broken)["epochs"]
    assert best_epoch(sane, "faces")["faces"] > 0  # the untrained stage is bilinear: faces
    # Sharpness too, though the broken run does not reach NaN: its saturated output is pixel
    # noise, over ten times the photographs' fine detail, where the sane run's is about half.
    for figure in FIGURES:
        good = merit(figure, best_epoch(sane, figure)[figure])
        bad = merit(figure, best_epoch(broken, figure)[figure])
        assert bad < good, figure


def onnx_output(path: Path, image: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: image})[0]


def test_export_by_the_best_epoch_exports_that_epoch(runs: Runs, tmp_path: Path) -> None:
    """``--best-by`` exports the epoch ``best_epoch`` picks: the weights of a run stopped at
    that epoch (a run is the same whether it stops there or goes on). With these pictures
    PSNR picks the last epoch and sharpness the first."""
    torch.set_num_threads(1)
    stopped = tmp_path / "stopped"
    options = TrainOptions(**{**vars(OPTIONS), "epochs": 1})
    train_stage(runs.photos, stopped, TINY, options, say=quiet)
    image = np.random.default_rng(0).uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32)
    epochs = history(runs.sane)["epochs"]
    for figure in ("psnr", "sharpness"):
        chosen = best_epoch(epochs, figure)["epoch"]
        expected = RefineGenerator(TINY).eval()
        expected.load_state_dict(load_run(stopped if chosen == 1 else runs.sane)["generator"])
        out = tmp_path / figure
        args = ["export", "stage", str(runs.sane), "--out", str(out), "--input-size", "16"]
        assert main([*args, "--license", "MIT", "--best-by", figure]) == 0
        with torch.no_grad():
            reference = expected(torch.from_numpy(image)).numpy()
        exported = onnx_output(out / "refine-64.onnx", image)
        np.testing.assert_allclose(exported, reference, atol=1e-4)
        report = (out / "refine-64.training.md").read_text(encoding="utf-8")
        assert f"- Exported: epoch {chosen}, the best by {figure} ({figure} " in report

    report = (out / "refine-64.training.md").read_text(encoding="utf-8")
    held = history(runs.sane)["run"]["holdout"][0]
    assert f"- Held out (share 0.2), never trained on (1): {held}" in report
    assert "| bicubic |" in report and "| psnr | " in report and "| faces | " in report
    assert "| 2 | 16 |" in report


def test_a_holdout_folder_and_no_base_from_the_command_line(runs: Runs, tmp_path: Path) -> None:
    """--holdout DIR trains on all of --images; --base none judges the held-out inputs, with
    no faces figure and no kept faces weights."""
    one = tmp_path / "one"
    one.mkdir()
    with Image.open(runs.photos / "p0.png") as photo:
        photo.transpose(Image.Transpose.ROTATE_90).save(one / "turned.png")
    run = tmp_path / "run"
    sizes = ["--crop", "32", "--width", "8", "--blocks", "1", "--disc-width", "4"]
    short = ["--epochs", "1", "--steps-per-epoch", "2", "--eval-seeds", "2", "--threads", "1"]
    args = ["export", "train-stage", "--images", str(runs.photos), "--out", str(run)]
    assert main([*args, "--holdout", str(one), "--base", "none", *sizes, *short]) == 0
    document = history(run)
    assert document["run"]["holdout_source"] == str(one.resolve())
    assert document["run"]["holdout"] == ["turned.png"]
    assert len(document["run"]["training_images"]) == PHOTOS
    assert document["run"]["base"] is None and document["epochs"][0]["faces"] is None
    assert not (run / "best" / "faces.pt").exists() and (run / "best" / "psnr.pt").is_file()
    with Image.open(run / "sheets" / "epoch-0001.png") as sheet:
        assert sheet.size == (2 + 2 * 34, 2 + 34)  # two held-out inputs refined to 32 px


def test_bad_holdout_and_old_runs_are_one_line(
    runs: Runs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UserError, match=r"holding out 5 of its 5 usable images .* leaves none"):
        train_stage(runs.photos, tmp_path / "r", TINY, TrainOptions(holdout_share=0.95, crop=32))
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "again.png").write_bytes((runs.photos / "p3.png").read_bytes())
    with pytest.raises(UserError) as error:
        train_stage(runs.photos, tmp_path / "r", TINY, TrainOptions(crop=32, holdout=str(copy)))
    assert str(error.value) == (
        f"{copy}: again.png also in {runs.photos}; held-out photographs must never be trained on"
    )

    # A checkpoint from before the figures: its options lack the new ones.
    old = tmp_path / "old"
    old.mkdir()
    state = load_run(runs.sane)
    for name in ("holdout", "holdout_share", "base", "base_stages", "eval_seeds"):
        del state["options"][name]
    torch.save(state, old / CHECKPOINT)
    with pytest.raises(UserError) as error:
        train_stage(runs.photos, old, TINY, OPTIONS, say=quiet)
    assert str(error.value).startswith(f"{old / CHECKPOINT}: this run was started before")
    assert "lack holdout, holdout_share, base, base_stages, eval_seeds" in str(error.value)
    args = ["export", "stage", str(old), "--out", str(tmp_path / "s"), "--input-size", "8"]
    assert main([*args, "--license", "MIT", "--best-by", "psnr"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"installation: error: {old / 'best' / 'psnr.pt'}: no weights kept for --best-by psnr "
        "(a run from before held-out figures keeps none, and a run without a base bundle has "
        "no faces figure)"
    )
    args = ["export", "train-stage", "--images", str(runs.photos), "--out", str(tmp_path / "x")]
    assert main([*args, "--holdout-share", "1"]) == 2
    assert "--holdout-share must be between 0 and 1, got 1.0" in capsys.readouterr().err


def test_a_w_bundle_base_draws_its_seeds_through_the_mapping(tmp_path: Path) -> None:
    """A StyleGAN bundle as the base: each seed's z mapped to w, in every layer, upright."""
    bundle = write_w_bundle(tmp_path / "w", transform=True)
    chain = draw_base(bundle, 1, 3)
    assert chain.images.shape == (3, 3, 16, 16) and chain.size == 16
    assert not np.allclose(chain.images[0], chain.images[1])
    np.testing.assert_array_equal(draw_base(bundle, 1, 2).images, chain.images[:2])
    with pytest.raises(UserError, match="--base-stages 2, but the bundle has 1 stages"):
        draw_base(bundle, 2, 3)
