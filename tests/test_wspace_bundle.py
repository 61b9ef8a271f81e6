"""A W bundle's manifest and files, checked as ``installation check`` checks them: every
mistake is one line naming the file (and key or tensor), exit code 2."""

from __future__ import annotations

import hashlib
import logging
import tomllib
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from test_bundle import check, one_error_line
from wspace_bundle import write_show, write_w_bundle

from installation.engine.bundle import load_bundle, w_table
from installation.engine.ladder import ORT_CPU, ladder_for

SCENE = '[[scenes]]\nname = "one"\nseed = 1\n'


def edited(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def resha(bundle: Path, key: str, file: str) -> None:
    """Make ``key`` in the manifest agree with ``file`` again after the test changed it."""
    manifest = bundle / "bundle.toml"
    lines = manifest.read_text().splitlines()
    digest = hashlib.sha256((bundle / file).read_bytes()).hexdigest()
    lines = [f'{key} = "{digest}"' if line.startswith(f"{key} =") else line for line in lines]
    manifest.write_text("\n".join(lines) + "\n")


@pytest.fixture
def w_show(tmp_path: Path) -> Path:
    bundle = write_w_bundle(tmp_path / "bundle", transform=True)
    return write_show(tmp_path, bundle, SCENE)


def test_a_w_bundle_checks_ok(w_show: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = check(w_show, capsys)
    assert code == 0
    bundle = load_bundle(w_show.parent / "bundle")
    assert (bundle.space, bundle.input_size) == ("w", 4 * 6 + 3)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('space = "w"', 'space = "x"', "latent.space: expected one of z, w; got 'x'"),
        ('space = "w"\n', "", 'w: only for a W-space bundle: set space = "w" in [latent]'),
        ("num_ws = 4", "num_ws = 5", "stages[0].input_shape: [4, 6], but a W bundle's first"),
        ("c_dim = 0", "c_dim = -1", "w.c_dim: expected at least 0, got -1"),
        ('average = "w_avg.npy"', 'average = "../w_avg.npy"', "w.average: '../w_avg.npy' resolves"),
        ("mapping_sha256 = ", 'mapping_sha256 = "12"\n#', "w.mapping_sha256: expected 64 hex"),
        (
            "transform = [[1.0",
            "transform = [[0.0, 0.0, 0.0], [1.0",
            "w.transform: expected a 3x3 matrix as three rows",
        ),
        ("[0.0, 1.0, 0.0]", "[1.0, 0.0, 0.0]", "w.transform: expected a finite, invertible"),
        ("w_dim = 6", "wdim = 6", "w.w_dim: missing"),
    ],
)
def test_manifest_mistakes_are_one_line(
    w_show: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, message: str
) -> None:
    edited(w_show.parent / "bundle" / "bundle.toml", old, new)
    code, err = check(w_show, capsys)
    assert code == 2
    assert message in one_error_line(err)


def test_a_w_bundle_needs_its_w_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = write_w_bundle(tmp_path / "bundle")
    manifest = bundle / "bundle.toml"
    text = manifest.read_text()
    manifest.write_text(text[: text.index("[w]")] + text[text.index("[provenance]") :])
    code, err = check(write_show(tmp_path, bundle, SCENE), capsys)
    assert code == 2
    assert 'w: missing; expected a [w] table, since [latent] says space = "w"' in one_error_line(
        err
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("mapping", "mapping.onnx: sha256 mismatch"),
        ("average", "w_avg.npy: sha256 mismatch"),
        ("average-shape", "w_avg.npy: the average w is float32 [5], expected float32 [6]"),
        ("mapping-z", "mapping.onnx: input 'z' has shape [batch, 7] in the model, manifest says"),
        ("no-transform", "synthesis.onnx: expected 2 inputs (ws, transform), the model has 1 (ws)"),
        ("mapping-nan", "mapping.onnx: the mapping gives NaN or infinite values for the sample's"),
    ],
)
def test_file_mistakes_name_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: str, message: str
) -> None:
    bundle = write_w_bundle(tmp_path / "bundle", transform=True)
    if change == "mapping":
        (bundle / "mapping.onnx").write_bytes(b"truncated")
    elif change == "average":
        np.save(bundle / "w_avg.npy", np.zeros(6, np.float32))
    elif change == "average-shape":
        np.save(bundle / "w_avg.npy", np.zeros(5, np.float32))
        resha(bundle, "average_sha256", "w_avg.npy")
    elif change == "mapping-z":
        write_w_bundle(tmp_path / "other", z_dim=7)
        (bundle / "mapping.onnx").write_bytes((tmp_path / "other" / "mapping.onnx").read_bytes())
        resha(bundle, "mapping_sha256", "mapping.onnx")
    elif change == "mapping-nan":
        model = onnx.load(bundle / "mapping.onnx")
        weights = next(item for item in model.graph.initializer if item.name == "A")
        poisoned = numpy_helper.to_array(weights).copy()
        poisoned[0, 0] = np.nan
        weights.CopyFrom(numpy_helper.from_array(poisoned, "A"))
        onnx.save(model, bundle / "mapping.onnx")
        resha(bundle, "mapping_sha256", "mapping.onnx")
    else:
        write_w_bundle(tmp_path / "other")
        (bundle / "synthesis.onnx").write_bytes(
            (tmp_path / "other" / "synthesis.onnx").read_bytes()
        )
        resha(bundle, "sha256", "synthesis.onnx")
    code, err = check(write_show(tmp_path, bundle, SCENE), capsys)
    assert code == 2
    assert message in one_error_line(err)


@pytest.mark.parametrize(
    ("scene", "bundle_options", "message"),
    [
        ("mix = { from_layer = 4, seed = 2 }", {}, "mix.from_layer: scene 'one': expected 1 to 3"),
        ("mix = { from_layer = 0, seed = 2 }", {}, "mix.from_layer: expected at least 1, got 0"),
        ("rotate = 10", {}, "rotate: scene 'one': only for a bundle with an input transform"),
        ("translate = [0.1, 0.2]", {}, "translate: scene 'one': only for a bundle with an input"),
        ("label = 1", {}, "label: scene 'one': the bundle has no classes (c_dim = 0), got 1"),
        ("label = 3", {"c_dim": 3}, "label: scene 'one': the bundle has classes 0 to 2, got 3"),
        ("translate = [20, 0]", {"transform": True}, "translate: expected [x, y] from -10 to 10"),
    ],
)
def test_scene_keys_must_fit_the_bundle(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    scene: str,
    bundle_options: dict[str, object],
    message: str,
) -> None:
    bundle = write_w_bundle(tmp_path / "bundle", **bundle_options)  # type: ignore[arg-type]
    code, err = check(write_show(tmp_path, bundle, SCENE + scene + "\n"), capsys)
    assert code == 2
    line = one_error_line(err)
    assert "show.toml:" in line and message in line


def test_w_keys_are_refused_for_a_z_bundle(
    show_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = show_copy.read_text()
    show_copy.write_text(
        text.replace("[[scenes]]\n", "[[scenes]]\nmix = { from_layer = 2, seed = 1 }\n", 1)
    )
    code, err = check(show_copy, capsys)
    assert code == 2
    assert "mix: scene" in one_error_line(err)
    assert "only for a W-space bundle (a StyleGAN); this show's bundle is a Z-space one" in err


def test_the_w_table_is_written_as_it_is_read(tmp_path: Path) -> None:
    folder = write_w_bundle(tmp_path / "bundle", transform=True, c_dim=2)
    bundle = load_bundle(folder)
    assert bundle.w is not None
    written = tomllib.loads((folder / "bundle.toml").read_text())["w"]
    assert w_table(bundle.w, folder) == written


def test_tensorrt_passes_over_a_stylegan3_bundle_as_not_its_kind(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The TensorRT path feeds one input per stage, and a StyleGAN3 synthesis takes its input
    transform too: the ladder passes over TensorRT with that reason, as a warning like
    TensorRT not installed, never the error in capitals of a backend that failed."""
    bundle = load_bundle(write_w_bundle(tmp_path / "bundle", transform=True))
    ladder = ladder_for(bundle, "auto", 1, tmp_path / "engines")
    with caplog.at_level(logging.INFO):
        ladder.start().close()
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert ladder.name == ORT_CPU
    assert "tensorrt: its engines take one input per stage; this bundle's synthesis also " in (
        caplog.text
    )
