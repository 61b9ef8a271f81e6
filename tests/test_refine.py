"""Refinement stages (export side): architecture at both sizes, degradation, training that
learns and resumes, ONNX faithfulness, stage folders and bundle assembly."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import DEFAULT_BUNDLE
from PIL import Image

from export.assemble import assemble
from export.bundle_writer import write_manifest
from export.degrade import degrade, gaussian_blur
from export.onnx_export import export_onnx, verify_onnx
from export.refine import RefineDiscriminator, RefineGenerator, upscale
from export.stage_config import RefineConfig, TrainOptions
from export.stage_export import STAGE_MANIFEST, export_stage
from export.train_stage import load_run, train_stage
from installation.bench import bench_stages
from installation.cli import main
from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.bundle import Provenance, load_bundle
from installation.engine.pipeline import Pipeline
from installation.errors import UserError
from installation.progress import Progress

TINY = RefineConfig(scale=4, width=8, blocks=1, disc_width=4)
TINY_OPTIONS = TrainOptions(
    crop=32, batch=4, epochs=2, steps_per_epoch=8, lr=2e-3, gan_after=6, seed=3, eval_seeds=4
)


def quiet(_: str) -> None:
    """Training's progress lines, swallowed."""


def with_detail(config: RefineConfig, seed: int = 0) -> RefineGenerator:
    """A generator whose zero-initialised output layer is made random, so its residual path
    is really exercised (an untrained stage is plain bilinear upscaling)."""
    torch.manual_seed(seed)
    generator = RefineGenerator(config)
    torch.nn.init.normal_(generator.tail.weight, std=0.05)
    torch.nn.init.normal_(generator.tail.bias, std=0.05)
    return generator.eval()


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and on a busy machine torch's threads wait for
    each other: one thread keeps these tests at a few seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Four small photographs with edges, gradients and texture, made here."""
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for index in range(4):
        y, x = np.mgrid[0:72, 0:80]
        stripes = np.sin(x / (2 + index) + y / 5)[..., None] * np.array([60, 40, 80])
        blocks = ((x // (6 + index) + y // 9) % 2)[..., None] * np.array([70, 90, 30])
        noise = rng.normal(0, 6, (72, 80, 3))
        pixels = np.clip(90 + stripes + blocks + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"photo{index}.png")
    return folder


def test_generator_and_discriminator_shapes_at_both_stage_sizes() -> None:
    """The same code is the 64->256 and the 256->1024 stage; here at tiny sizes, with a
    non-square input to catch swapped axes."""
    for config in (TINY, RefineConfig(scale=4, width=4, blocks=2, disc_width=4)):
        generator = with_detail(config)
        discriminator = RefineDiscriminator(config)
        small = torch.rand(2, 3, 16, 24) * 2 - 1
        with torch.no_grad():
            large = generator(small)
            assert discriminator(large, small).shape == (2, 1, 8, 12)
        assert large.shape == (2, 3, 64, 96)
        assert float(large.min()) >= -1 and float(large.max()) <= 1


def test_untrained_stage_is_bilinear_upscaling() -> None:
    small = torch.rand(1, 3, 8, 8) * 2 - 1
    expected = upscale(small, 4)
    torch.testing.assert_close(RefineGenerator(TINY)(small), expected)


def test_degrade_is_seeded_small_and_in_range() -> None:
    large = torch.rand(3, 3, 32, 32)
    first = degrade(large, 4, torch.Generator().manual_seed(5))
    again = degrade(large, 4, torch.Generator().manual_seed(5))
    other = degrade(large, 4, torch.Generator().manual_seed(6))
    assert first.shape == (3, 3, 8, 8)
    assert float(first.min()) >= 0 and float(first.max()) <= 1
    torch.testing.assert_close(first, again)
    assert not torch.allclose(first, other)
    with pytest.raises(ValueError, match="not a multiple of 4"):
        degrade(torch.rand(1, 3, 30, 32), 4, torch.Generator())


def test_blur_keeps_flat_images_and_softens_edges() -> None:
    flat = torch.full((1, 3, 16, 16), 0.4)
    torch.testing.assert_close(gaussian_blur(flat, 1.2), flat)
    edge = torch.zeros(1, 1, 8, 8)
    edge[..., 4:] = 1
    blurred = gaussian_blur(edge, 1.0)
    assert 0 < float(blurred[0, 0, 0, 3]) < 0.5 < float(blurred[0, 0, 0, 4]) < 1


def test_refinement_stage_onnx_matches_torch(tmp_path: Path) -> None:
    generator = with_detail(RefineConfig(width=8, blocks=2))
    path = tmp_path / "refine.onnx"
    export_onnx(generator, path, (3, 32, 32), "image", "upscaled")
    result = verify_onnx(generator, path, (3, 32, 32), distribution="uniform", tolerance=1e-3)
    assert result.max_abs_error < 1e-3


def fixed_batch_error(run: Path | None, photos: Path) -> float:
    """L1 of the run's generator (an untrained one for None) on fixed degraded crops."""
    generator = RefineGenerator(TINY)
    if run is not None:
        generator.load_state_dict(load_run(run)["generator"])
    rng = torch.Generator().manual_seed(99)
    images = [np.asarray(Image.open(path)) for path in sorted(photos.iterdir())]
    large = torch.stack([torch.from_numpy(i[:32, :32].copy()).permute(2, 0, 1) for i in images])
    large = large.float() / 255
    small = degrade(large, 4, rng)
    with torch.no_grad():
        return float(torch.nn.functional.l1_loss(generator(small * 2 - 1), large * 2 - 1))


def test_training_lowers_the_loss_writes_samples_and_resumes(tmp_path: Path, photos: Path) -> None:
    """Figures included: a resumed run's history matches the uninterrupted one's, but for
    the wall times."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    history = train_stage(photos, straight, TINY, TINY_OPTIONS, say=quiet)
    assert [epoch.step for epoch in history] == [8, 16]
    assert fixed_batch_error(straight, photos) < fixed_batch_error(None, photos)
    assert (straight / "samples" / "epoch-0002.png").is_file()
    assert Image.open(straight / "samples" / "epoch-0001.png").size == (3 * 32, 4 * 32)
    assert "reconstruction,adversarial" in (straight / "history.csv").read_text()

    # One epoch, stop, then again up to two: the same weights as the uninterrupted run.
    first = TrainOptions(**{**vars(TINY_OPTIONS), "epochs": 1})
    train_stage(photos, resumed, TINY, first, say=quiet)
    said: list[str] = []
    again = train_stage(photos, resumed, TINY, TINY_OPTIONS, say=said.append)
    assert any(line.startswith(f"resuming {resumed} after epoch 1") for line in said)
    assert len(again) == 2
    timeless = [replace(e, seconds=0, figures_seconds=0) for e in history]
    assert [replace(e, seconds=0, figures_seconds=0) for e in again] == timeless
    straight_state, resumed_state = load_run(straight), load_run(resumed)
    for key, value in straight_state["generator"].items():
        torch.testing.assert_close(resumed_state["generator"][key], value)
    # A fifth of four photographs, at least one, is held out and never trained on.
    run = resumed_state["data"]["run"]
    assert len(run["holdout"]) == 1 and resumed_state["data"]["images"] == run["training_images"]
    assert sorted(run["holdout"] + run["training_images"]) == [f"photo{i}.png" for i in range(4)]

    train_stage(photos, resumed, TINY, TINY_OPTIONS, say=said.append)
    assert said[-1] == f"{resumed} has 2 epochs already; raise --epochs to train on"
    with pytest.raises(UserError, match="only --epochs may change"):
        train_stage(photos, resumed, TINY, TrainOptions(**{**vars(TINY_OPTIONS), "lr": 1e-4}))


def test_bad_image_folders_are_one_line_naming_the_skipped_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a picture")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    Image.new("RGB", (16, 16)).save(folder / "tiny.jpg")
    args = ["export", "train-stage", "--images", str(folder), "--out", str(tmp_path / "run")]
    assert main(args) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line
    assert line.startswith(f"installation: error: {folder}: no usable training images")
    assert "broken.png (unreadable" in line and "notes.txt (not an image file)" in line
    assert "tiny.jpg (16x16, smaller than 128x128)" in line

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*args[:3], str(empty), *args[4:]]) == 2
    assert capsys.readouterr().err.startswith(f"installation: error: {empty}: no usable")
    assert main([*args[:3], str(tmp_path / "nowhere"), *args[4:]]) == 2
    assert "image folder not found" in capsys.readouterr().err


def first_stage_bundle(tmp_path: Path) -> Path:
    """The default bundle's 64 px generator alone, as the base a stage is stacked onto."""
    source = load_bundle(DEFAULT_BUNDLE)
    folder = tmp_path / "generator-only"
    folder.mkdir()
    first = source.stages[0]
    shutil.copyfile(first.path, folder / first.path.name)
    shutil.copyfile(DEFAULT_BUNDLE / source.provenance["license_file"], folder / "LICENSE.txt")
    write_manifest(
        folder,
        "generator-only",
        "",
        source.latent_size,
        source.latent_distribution,
        Provenance("the default bundle's first stage", "MIT", license_file="LICENSE.txt"),
        [replace(first, path=folder / first.path.name)],
    )
    return folder


@pytest.fixture
def stage_folder(tmp_path: Path, photos: Path) -> Path:
    """A tiny trained run, exported as a 64->256 stage folder through the command line."""
    run = tmp_path / "run"
    options = TrainOptions(**{**vars(TINY_OPTIONS), "epochs": 1})
    train_stage(photos, run, TINY, options, say=quiet)
    data = tmp_path / "DATA.md"
    data.write_text("made in the test\n")
    out = tmp_path / "stage"
    args = ["export", "stage", str(run), "--out", str(out), "--input-size", "64"]
    assert main([*args, "--license", "MIT", "--include", str(data)]) == 0
    return out


def test_stage_folder_and_assembled_bundle_run_the_chain(
    tmp_path: Path, stage_folder: Path
) -> None:
    manifest = (stage_folder / STAGE_MANIFEST).read_text()
    assert "input_shape = [3, 64, 64]" in manifest and "output_shape = [3, 256, 256]" in manifest
    report = (stage_folder / "refine-256.training.md").read_text()
    assert "photo0.png" in report and "| 1 | 8 |" in report

    out = tmp_path / "bundle"
    bundle = assemble(first_stage_bundle(tmp_path), [stage_folder], out, "tiny-256")
    assert [stage.output_size for stage in bundle.stages] == [(64, 64), (256, 256)]
    files = {p.name for p in out.iterdir()}
    assert {"DATA.md", "refine-256.training.md", "refine-256.onnx"} <= files
    assert "refine-256: MIT" in bundle.provenance["license"]

    pipeline = Pipeline.load(load_bundle(out), OnnxRuntimeBackend(CPU, threads=1))
    latents = np.random.default_rng(0).standard_normal((2, 100)).astype(np.float32)
    full = pipeline.run(latents)
    early = pipeline.run(latents, stages=1)
    assert full.shape == (2, 256, 256, 3) and early.shape == (2, 64, 64, 3)
    # The stage refines what the generator drew: its output, shrunk, is close to the input.
    shrunk = full.reshape(2, 64, 4, 64, 4, 3).mean(axis=(2, 4))
    assert np.abs(shrunk - early.astype(np.float64)).mean() < 20


def test_assembly_refuses_a_stage_that_does_not_fit_or_was_changed(
    tmp_path: Path, stage_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    twice = ["export", "assemble", str(first_stage_bundle(tmp_path))]
    out = ["--out", str(tmp_path / "b"), "--name", "b"]
    assert main([*twice, str(stage_folder), str(stage_folder), *out]) == 2
    assert capsys.readouterr().err.strip() == (
        f"installation: error: {stage_folder / STAGE_MANIFEST}: stage input_shape [3, 64, 64] "
        "(NCHW) does not fit the 256x256 RGB output of stage 'refine-256'"
    )
    assert not (tmp_path / "b").exists()

    model = stage_folder / "refine-256.onnx"
    model.write_bytes(model.read_bytes()[:-1])
    assert main([*twice, str(stage_folder), *out]) == 2
    assert capsys.readouterr().err.startswith(f"installation: error: {model}: sha256 mismatch")
    assert not (tmp_path / "b").exists()


def test_manifest_chain_mismatch_names_file_line_and_stage(
    tmp_path: Path, stage_folder: Path
) -> None:
    out = tmp_path / "bundle"
    assemble(first_stage_bundle(tmp_path), [stage_folder], out, "tiny-256")
    manifest = out / "bundle.toml"
    text = manifest.read_text()
    manifest.write_text(text.replace("input_shape = [3, 64, 64]", "input_shape = [3, 32, 32]"))
    line = text.splitlines().index("input_shape = [3, 64, 64]") + 1
    with pytest.raises(UserError) as error:
        load_bundle(out)
    assert str(error.value) == (
        f"{manifest}:{line}: stages[1].input_shape: [3, 32, 32] (NCHW) does not fit the "
        "64x64 RGB output of stage 'generator'"
    )


def test_bench_reports_every_stage_and_every_chain_length() -> None:
    pipeline = Pipeline.load(load_bundle(DEFAULT_BUNDLE), OnnxRuntimeBackend(CPU, threads=1))
    rows = bench_stages(pipeline, (1,), budget=0.0, progress=Progress("bench", 4))
    names = [row.stage for row in rows]
    assert names == ["generator", "refine-256", "chain to generator", "whole pipeline"]
    latency = {row.stage: row.latency_ms for row in rows}
    assert latency["chain to generator"] < latency["whole pipeline"]


def test_a_1024_stage_stacks_onto_the_256_bundle(tmp_path: Path, stage_folder: Path) -> None:
    """The same trained run exported at 256 px input is a tiny 256->1024 stage; it stacks onto
    a 256 bundle, reports and all, and the three-stage chain draws 1024 px frames."""
    run = tmp_path / "run"
    out_1024 = tmp_path / "stage-1024"
    export_stage(run, out_1024, 256, "refine-1024", "MIT", progress=quiet)
    bundle_256 = assemble(first_stage_bundle(tmp_path), [stage_folder], tmp_path / "b256", "b")
    bundle = assemble(bundle_256.path, [out_1024], tmp_path / "b1024", "b1024")
    assert bundle.output_size == (1024, 1024)
    assert bundle.provenance["license"] == "generator: MIT; refine-256: MIT; refine-1024: MIT"
    files = {p.name for p in bundle.path.iterdir()}
    assert {"refine-256.training.md", "refine-1024.training.md"} <= files
    pipeline = Pipeline.load(bundle, OnnxRuntimeBackend(CPU, threads=1))
    frames = pipeline.run(np.zeros((1, 100), dtype=np.float32))
    assert frames.shape == (1, 1024, 1024, 3)
