"""Bundle validation on real broken files, through ``installation check`` as a user runs it."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path

import pytest
from conftest import DEFAULT_BUNDLE

from export.bundle_writer import write_manifest
from installation.cli import main
from installation.engine.bundle import (
    MANIFEST,
    Provenance,
    TensorInfo,
    check_io,
    load_bundle,
    verify_files,
)
from installation.errors import UserError


def check(show: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run ``installation check`` in-process; returns the exit code and stderr."""
    code = main(["check", str(show)])
    return code, capsys.readouterr().err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("installation: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def edit_manifest(bundle: Path, old: str, new: str) -> None:
    manifest = bundle / "bundle.toml"
    text = manifest.read_text()
    assert old in text, f"{old!r} not in manifest"
    manifest.write_text(text.replace(old, new, 1))


def set_sha(bundle: Path, model: Path) -> None:
    """Make the manifest agree with the file (the first stage's), so the ONNX check itself is
    what fails."""
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    manifest = bundle / "bundle.toml"
    manifest.write_text(
        re.sub(r'sha256 = "[0-9a-f]{64}"', f'sha256 = "{digest}"', manifest.read_text(), count=1)
    )


def test_default_show_checks_ok(show_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(show_copy)]) == 0
    assert "ok:" in capsys.readouterr().out


def test_missing_model_file(show_copy: Path, bundle_copy: Path, capsys) -> None:
    (bundle_copy / "generator.onnx").unlink()
    code, err = check(show_copy, capsys)
    assert code == 2
    assert re.search(
        r"generator\.onnx: model file of stage 'generator' not found", one_error_line(err)
    )


def test_sha256_mismatch(show_copy: Path, bundle_copy: Path, capsys) -> None:
    model = bundle_copy / "generator.onnx"
    data = bytearray(model.read_bytes())
    data[-100] ^= 0xFF
    model.write_bytes(bytes(data))
    code, err = check(show_copy, capsys)
    assert code == 2
    assert "generator.onnx: sha256 mismatch" in one_error_line(err)


def test_truncated_model(show_copy: Path, bundle_copy: Path, capsys) -> None:
    model = bundle_copy / "generator.onnx"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    code, err = check(show_copy, capsys)
    assert code == 2
    assert "generator.onnx: sha256 mismatch" in one_error_line(err)
    set_sha(bundle_copy, model)
    code, err = check(show_copy, capsys)
    assert code == 2
    assert "generator.onnx: not a loadable ONNX model" in one_error_line(err)


def test_corrupt_model(show_copy: Path, bundle_copy: Path, capsys) -> None:
    model = bundle_copy / "generator.onnx"
    model.write_bytes(bytes(range(256)) * 64)
    set_sha(bundle_copy, model)
    code, err = check(show_copy, capsys)
    assert code == 2
    assert "generator.onnx: not a loadable ONNX model" in one_error_line(err)


def test_input_name_differs(show_copy: Path, bundle_copy: Path, capsys) -> None:
    edit_manifest(bundle_copy, 'input_name = "z"', 'input_name = "latent"')
    code, err = check(show_copy, capsys)
    assert code == 2
    line = one_error_line(err)
    assert "generator.onnx: input is named 'z' in the model but 'latent' in the manifest" in line


def test_output_shape_differs(show_copy: Path, bundle_copy: Path, capsys) -> None:
    edit_manifest(bundle_copy, "output_shape = [3, 256, 256]", "output_shape = [3, 512, 512]")
    code, err = check(show_copy, capsys)
    assert code == 2
    line = one_error_line(err)
    assert "refine-256.onnx: output 'upscaled' has shape [batch, 3, 256, 256] in the model" in line
    assert "manifest says [batch, 3, 512, 512]" in line


def test_unknown_manifest_key(show_copy: Path, bundle_copy: Path, capsys) -> None:
    edit_manifest(bundle_copy, 'layout = "NCHW"', 'layout = "NCHW"\noutptu_name = "image"')
    code, err = check(show_copy, capsys)
    assert code == 2
    line = one_error_line(err)
    assert re.search(r"bundle\.toml:\d+: stages\[0\]\.outptu_name: unknown key", line), line


def test_manifest_not_toml(show_copy: Path, bundle_copy: Path, capsys) -> None:
    (bundle_copy / "bundle.toml").write_text("format = 1\n[latent\n")
    code, err = check(show_copy, capsys)
    assert code == 2
    assert "bundle.toml: invalid TOML" in one_error_line(err)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('layout = "NCHW"', 'layout = "CHW"', "stages[0].layout: expected one of NCHW, NHWC"),
        ("range = [", "range = [1.0, ", "stages[0].range: expected 2 numbers, got 3"),
        ("size = 100", "size = 99", "stages[0].input_shape: [100, 1, 1] holds 100 values but"),
        ("size = 100", 'size = "100"', "latent.size: expected an integer, got '100'"),
        ("size = 100", "size = 0", "latent.size: expected at least 1, got 0"),
        ("format = 1", "format = 2", "format: this runtime reads format 1, got 2"),
    ],
)
def test_manifest_value_errors(bundle_copy: Path, old: str, new: str, message: str) -> None:
    edit_manifest(bundle_copy, old, new)
    with pytest.raises(UserError) as caught:
        load_bundle(bundle_copy)
    assert str(caught.value).startswith(str(bundle_copy / "bundle.toml"))
    assert message in str(caught.value)


def test_committed_bundle_is_valid_and_attributed() -> None:
    bundle = load_bundle(DEFAULT_BUNDLE)
    verify_files(bundle)
    assert [stage.output_size for stage in bundle.stages] == [(64, 64), (256, 256)]
    assert bundle.latent_size == 100
    assert "gan-face-generate" in bundle.provenance["source"]
    assert bundle.provenance["license"].startswith("generator: MIT; refine-256: MIT")
    for document in ("DATA.md", "refine-256.training.md"):
        assert (DEFAULT_BUNDLE / document).is_file()
    assert (DEFAULT_BUNDLE / bundle.provenance["license_file"]).is_file()


def test_the_workshop_writes_the_committed_manifest_from_what_the_runtime_reads(
    bundle_copy: Path,
) -> None:
    """One schema: the specs ``load_bundle`` reads, written again by the workshop's writer,
    give back the committed manifest byte for byte, and a bundle that loads as the same."""
    bundle = load_bundle(bundle_copy)
    text = (bundle_copy / MANIFEST).read_text(encoding="utf-8")
    (bundle_copy / MANIFEST).unlink()
    written = write_manifest(
        bundle_copy,
        bundle.name,
        tomllib.loads(text)["description"],
        bundle.latent_size,
        bundle.latent_distribution,
        Provenance(**bundle.provenance),
        bundle.stages,
    )
    assert (bundle_copy / MANIFEST).read_text(encoding="utf-8") == text
    assert written == bundle


def test_fixed_batch_of_one_is_accepted_and_other_batches_are_not(bundle_copy: Path) -> None:
    stage = load_bundle(bundle_copy).stages[0]
    output = TensorInfo(stage.output_name, (1, *stage.output_shape), "float32")
    check_io(stage, [TensorInfo("z", (1, 100, 1, 1), "float32")], [output])
    with pytest.raises(UserError, match=r"has shape \[4, 100, 1, 1\]"):
        check_io(stage, [TensorInfo("z", (4, 100, 1, 1), "float32")], [output])
    with pytest.raises(UserError, match="is float16, expected float32"):
        check_io(stage, [TensorInfo("z", (None, 100, 1, 1), "float16")], [output])
