"""The workshop side: checkpoint import, ONNX export and verification, bundle writing.

Checkpoints are built here from freshly initialised generators (narrow, ngf=4, to stay fast)
in the same formats gan-face-generate ships, so the importer runs end to end without the
real 14 MB wheel, which is not downloaded at test time. The committed default bundle is
checked the way the runtime checks it.
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from export.cli import register
from export.dcgan import DCGANGenerator, generator_from_state_dict
from export.dcgan_import import import_dcgan
from export.onnx_export import export_onnx, verify_onnx
from installation.cli import main
from installation.engine.bundle import load_bundle, verify_files
from installation.engine.bundle_check import check_bundle
from installation.errors import UserError

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BUNDLE = REPO / "bundles" / "faces-256"
LICENSE_TEXT = "MIT License\n\nCopyright (c) 2023, a test\n"


def small_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A narrow generator with random weights and batch-norm statistics, so the export is
    checked on non-trivial normalisation too."""
    torch.manual_seed(seed)
    model = DCGANGenerator(nz=100, ngf=4, nc=3)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_()
    return model.state_dict()


def checkpoint_bytes(content: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(content, buffer)
    return buffer.getvalue()


def write_wheel(path: Path, weights: bytes) -> Path:
    """A zip laid out like gan_face_generate-1.1.1-py3-none-any.whl."""
    dist_info = "gan_face_generate-1.1.1.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("gan_face_generate/__init__.py", "")
        wheel.writestr("gan_face_generate/weights.tar", weights)
        wheel.writestr(f"{dist_info}/METADATA", "Name: gan_face_generate\nVersion: 1.1.1\n")
        wheel.writestr(f"{dist_info}/licenses/LICENSE", LICENSE_TEXT)
    return path


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="installation export")
    register(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def assert_onnx_matches_torch(onnx_path: Path, state: dict[str, torch.Tensor]) -> None:
    model = generator_from_state_dict(state)
    z = torch.randn(5, 100, 1, 1, generator=torch.Generator().manual_seed(1234))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (actual,) = session.run(None, {"z": z.numpy()})
    with torch.no_grad():
        expected = model(z).numpy()
    assert actual.shape == (5, 3, 64, 64)
    assert np.max(np.abs(actual - expected)) < 1e-4


def test_wheel_imports_into_a_valid_bundle(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    state = small_state_dict()
    wheel = write_wheel(
        tmp_path / "gan_face_generate-1.1.1-py3-none-any.whl",
        checkpoint_bytes({"netG_state_dict": state}),
    )
    out = tmp_path / "bundle"

    assert run_cli("dcgan", str(wheel), "--out", str(out), "--name", "tiny") == 0

    printed = capsys.readouterr().out
    assert "max abs error" in printed and "over 12 latents" in printed
    assert printed.strip().splitlines()[-1].endswith(str(out))
    bundle = load_bundle(out)
    verify_files(bundle)
    check_bundle(bundle)
    assert bundle.name == "tiny"
    assert (bundle.latent_size, bundle.latent_distribution) == (100, "normal")
    assert bundle.provenance["source"].startswith("gan-face-generate 1.1.1 from PyPI")
    assert "key netG_state_dict" in bundle.provenance["source"]
    assert bundle.provenance["license"] == "MIT"
    assert (out / bundle.provenance["license_file"]).read_text() == LICENSE_TEXT
    assert "DigiFace-1M" in bundle.provenance["notes"]
    assert_onnx_matches_torch(bundle.stages[0].path, state)
    assert not list(tmp_path.glob(".bundle-*")), "staging folder left behind"


def test_bare_checkpoint_imports_without_licence_file(tmp_path: Path) -> None:
    state = small_state_dict(seed=1)
    weights = tmp_path / "weights.tar"
    weights.write_bytes(checkpoint_bytes({"netG_state_dict": state}))

    bundle = import_dcgan(weights, tmp_path / "out", "bare", progress=lambda line: None)

    verify_files(load_bundle(bundle.path))
    assert bundle.provenance["source"].startswith("weights.tar, key netG_state_dict")
    assert bundle.provenance["license_file"] == ""
    assert_onnx_matches_torch(bundle.stages[0].path, state)


def wrong_shapes() -> bytes:
    state = dict(small_state_dict())
    state["main.3.weight"] = torch.zeros(32, 16, 3, 3)
    return checkpoint_bytes({"netG_state_dict": state})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda: checkpoint_bytes({"generator": small_state_dict()}), "no key 'netG_state_dict'"),
        (wrong_shapes, "main.3.weight has shape [32, 16, 3, 3]"),
        (lambda: np.random.default_rng(0).bytes(4096), "cannot load as a torch checkpoint"),
    ],
    ids=["missing key", "wrong shapes", "random bytes"],
)
def test_bad_checkpoints_are_user_errors(tmp_path: Path, content, message: str) -> None:
    weights = tmp_path / "weights.tar"
    weights.write_bytes(content())
    with pytest.raises(UserError) as caught:
        run_cli("dcgan", str(weights), "--out", str(tmp_path / "out"))
    assert str(weights) in str(caught.value) and message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_bad_wheels_are_user_errors(tmp_path: Path) -> None:
    not_zip = tmp_path / "broken.whl"
    not_zip.write_bytes(b"not a zip")
    no_weights = tmp_path / "empty.whl"
    with zipfile.ZipFile(no_weights, "w") as wheel:
        wheel.writestr("x-1.0.dist-info/METADATA", "Name: gan-face-generate\nVersion: 1.0\n")
        wheel.writestr("x-1.0.dist-info/LICENSE", LICENSE_TEXT)
    for path, message in [
        (tmp_path / "missing.whl", "file not found"),
        (not_zip, "not a zip file"),
        (no_weights, "no gan_face_generate/weights.tar"),
    ]:
        with pytest.raises(UserError, match=f"^{re.escape(str(path))}.*{message}"):
            import_dcgan(path, tmp_path / "out", "x", progress=lambda line: None)


def test_existing_out_needs_force(tmp_path: Path) -> None:
    weights = tmp_path / "weights.tar"
    weights.write_bytes(checkpoint_bytes({"netG_state_dict": small_state_dict()}))
    out = tmp_path / "out"
    out.mkdir()
    (out / "bundle.toml").write_text("old")

    with pytest.raises(UserError, match="--force") as caught:
        run_cli("dcgan", str(weights), "--out", str(out))
    assert str(out) in str(caught.value)
    assert (out / "bundle.toml").read_text() == "old"

    assert run_cli("dcgan", str(weights), "--out", str(out), "--force") == 0
    verify_files(load_bundle(out))


def test_verification_catches_an_unfaithful_export(tmp_path: Path) -> None:
    """Also shows verification is generic: an image-input stage, inputs in -1..1."""
    torch.manual_seed(0)
    stage = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Tanh()).eval()
    path = tmp_path / "refine.onnx"
    export_onnx(stage, path, (3, 16, 16), input_name="image_in", output_name="image")

    result = verify_onnx(stage, path, (3, 16, 16), distribution="uniform")
    assert result.max_abs_error < 1e-4 and result.count > 1

    with torch.no_grad():
        stage[0].bias.add_(0.01)
    with pytest.raises(
        UserError, match=f"^{re.escape(str(path))}: ONNX Runtime differs from torch"
    ):
        verify_onnx(stage, path, (3, 16, 16), distribution="uniform")


def test_committed_default_bundle_is_valid() -> None:
    bundle = load_bundle(DEFAULT_BUNDLE)
    check_bundle(bundle)
    assert bundle.name == "faces-256"
    assert bundle.output_size == (256, 256)
    assert bundle.provenance["source"].startswith("generator: gan-face-generate 1.1.1 from PyPI")
    assert bundle.provenance["version"] == "generator: 1.1.1"
    assert bundle.provenance["license"].startswith("generator: MIT;")
    licence = (DEFAULT_BUNDLE / bundle.provenance["license_file"]).read_text()
    assert "chien liu" in licence.lower() and "Permission is hereby granted" in licence


def test_the_runtime_imports_no_workshop_code(capsys: pytest.CaptureFixture[str]) -> None:
    """The exhibition PC has no torch: the runtime's command line, parser and help included,
    must not import ``export`` (nor torch); ``installation export`` loads it when chosen."""
    script = (
        "import contextlib, io, sys\n"
        "from installation.cli import build_parser, main\n"
        "build_parser().parse_args(['check', 'show.toml'])\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    assert main(['--help']) == 0\n"
        "assert 'export' in out.getvalue()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('export', 'torch')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "[]\n", "")

    assert main(["export", "--help"]) == 0
    assert "assemble" in capsys.readouterr().out
