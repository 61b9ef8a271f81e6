"""What ``installation check`` proves about a bundle beyond its manifest, on real broken
copies of the default bundle: files outside the folder, variable image sizes, a wrong
``range`` (refused or warned), model-file problems named before any backend is tried."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import DEFAULT_BUNDLE
from onnx import TensorProto, helper
from test_bundle import check, edit_manifest, one_error_line, set_sha

from export.assemble import load_stage_folder
from installation.cli import main
from installation.engine.bundle import TensorInfo, check_io, load_bundle
from installation.engine.bundle_check import check_bundle, judge_output
from installation.engine.faults import Faults
from installation.engine.ladder import ladder_for
from installation.errors import UserError


def edit_stage(bundle: Path, index: int, pattern: str, new: str) -> None:
    """Replace ``pattern`` (a regular expression) in stage ``index`` of the manifest
    (0: generator, 1: refine-256)."""
    manifest = bundle / "bundle.toml"
    parts = manifest.read_text().split("[[stages]]")
    parts[index + 1], count = re.subn(pattern, new, parts[index + 1])
    assert count == 1, pattern
    manifest.write_text("[[stages]]".join(parts))


def stage_range(bundle: Path, index: int, value: str) -> None:
    edit_stage(bundle, index, r"\nrange = \[[^\]]*\]", f"\nrange = {value}")


@pytest.mark.parametrize(
    ("stage", "declared", "message"),
    [
        # A -1..1 generator declared as 8-bit: the all-black show of the issue.
        (0, "[0.0, 255.0]", r"stage 'generator' uses 0\.\d% of its range: .* is range right\?"),
        # A -1..1 refinement declared as 0..0.01: nearly every value far outside.
        (1, "[0.0, 0.01]", r"stage 'refine-256' draws \d+% of its values far outside its range"),
    ],
)
def test_a_wrong_range_is_refused_naming_stage_and_values(
    show_copy: Path, bundle_copy: Path, capsys, stage: int, declared: str, message: str
) -> None:
    stage_range(bundle_copy, stage, declared)
    code, err = check(show_copy, capsys)
    assert code == 2
    line = one_error_line(err)
    assert re.search(message, line), line
    assert "a sample drew" in line and "range = [" in line


def test_a_range_a_little_too_narrow_is_a_warning(
    show_copy: Path, bundle_copy: Path, capsys, caplog: pytest.LogCaptureFixture
) -> None:
    stage_range(bundle_copy, 1, "[-0.5, 0.5]")
    with caplog.at_level(logging.WARNING, "installation.engine.bundle_check"):
        assert main(["check", str(show_copy)]) == 0
    assert "1 warning(s) above" in capsys.readouterr().out
    [warning] = [
        r.getMessage() for r in caplog.records if r.name == "installation.engine.bundle_check"
    ]
    assert re.search(r"stage 'refine-256' draws \d+% of its values outside its range", warning)


def test_flat_and_non_finite_output_is_refused() -> None:
    stage = load_bundle(DEFAULT_BUNDLE).stages[0]
    with pytest.raises(UserError, match="draws one flat value everywhere"):
        judge_output(stage, np.full((2, 3, 64, 64), 0.3, dtype=np.float32))
    with pytest.raises(UserError, match="NaN or infinite"):
        judge_output(stage, np.full((2, 3, 64, 64), np.nan, dtype=np.float32))
    ramp = np.linspace(0, 1, 2 * 3 * 64 * 64, dtype=np.float32).reshape(2, 3, 64, 64)
    assert judge_output(stage, ramp) is None
    assert "dim or low-contrast" in (judge_output(stage, ramp * 0.1) or "")


def test_the_committed_bundle_passes_its_sample_without_warnings() -> None:
    assert check_bundle(load_bundle(DEFAULT_BUNDLE)) == []


@pytest.mark.parametrize(
    ("file", "damage", "message"),
    [
        ("refine-256.onnx", "truncate", "sha256 mismatch"),
        ("generator.onnx", "corrupt", "not a loadable ONNX model"),
    ],
)
def test_a_model_file_problem_is_named_before_any_backend(
    bundle_copy: Path, file: str, damage: str, message: str
) -> None:
    model = bundle_copy / file
    model.write_bytes(model.read_bytes()[:1000] if damage == "truncate" else b"not onnx")
    if damage == "corrupt":
        set_sha(bundle_copy, model)
    ladder = ladder_for(load_bundle(bundle_copy), "auto", 1, None, Faults())
    with pytest.raises(UserError) as caught:
        ladder.start()
    assert str(caught.value).startswith(f"{model}: {message}"), caught.value


@pytest.mark.parametrize(
    "file",
    ["/etc/passwd", "../bundle/generator.onnx/../../outside.onnx", "../../outside.onnx", "link"],
)
def test_a_model_file_outside_the_bundle_is_refused(bundle_copy: Path, file: str) -> None:
    outside = bundle_copy.parent / "outside.onnx"
    outside.write_bytes((bundle_copy / "generator.onnx").read_bytes())
    (bundle_copy / "link").symlink_to(outside)
    edit_manifest(bundle_copy, 'file = "generator.onnx"', f'file = "{file}"')
    with pytest.raises(UserError) as caught:
        load_bundle(bundle_copy)
    message = str(caught.value)
    assert re.match(
        rf"{re.escape(str(bundle_copy / 'bundle.toml'))}:\d+: stages\[0\]\.file: ", message
    )
    assert "bundle folder" in message


def test_a_symbolic_link_inside_the_bundle_is_accepted(bundle_copy: Path) -> None:
    (bundle_copy / "models").mkdir()
    (bundle_copy / "generator.onnx").rename(bundle_copy / "models" / "generator.onnx")
    (bundle_copy / "generator.onnx").symlink_to(bundle_copy / "models" / "generator.onnx")
    assert check_bundle(load_bundle(bundle_copy)) == []


def variable_size_model(path: Path, height: str | None, width: str | None) -> None:
    """A refinement stage whose input and output have a variable height and width."""
    shape: list[int | str | None] = ["batch", 3, height, width]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["upscaled"])],
        "variable",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("upscaled", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


@pytest.mark.parametrize(
    ("height", "width", "shown"), [("height", "width", "height, width"), (None, None, "?, ?")]
)
def test_variable_image_sizes_are_named_and_the_fix_said(
    show_copy: Path, bundle_copy: Path, capsys, height: str | None, width: str | None, shown: str
) -> None:
    model = bundle_copy / "refine-256.onnx"
    variable_size_model(model, height, width)
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    edit_stage(bundle_copy, 1, r'sha256 = "[0-9a-f]{64}"', f'sha256 = "{digest}"')
    code, err = check(show_copy, capsys)
    assert code == 2
    line = one_error_line(err)
    assert f"refine-256.onnx: input 'image' has shape [batch, 3, {shown}] in the model" in line
    assert "manifest says [batch, 3, 64, 64]" in line
    assert "only the batch axis may vary: export the model with a fixed height and width" in line


def test_a_latent_input_of_variable_size_is_not_called_an_image() -> None:
    stage = load_bundle(DEFAULT_BUNDLE).stages[0]
    output = TensorInfo(stage.output_name, (None, *stage.output_shape), "float32")
    with pytest.raises(UserError, match=r"\[batch, latent, 1, 1\] .* every other axis"):
        check_io(stage, [TensorInfo("z", ("batch", "latent", 1, 1), "float32")], [output])


@pytest.mark.parametrize(("old", "new"), [("format = 1\n", ""), ("format", "fromat")])
def test_a_manifest_without_format_says_what_to_write(
    bundle_copy: Path, old: str, new: str
) -> None:
    edit_manifest(bundle_copy, old, new)
    with pytest.raises(UserError) as caught:
        load_bundle(bundle_copy)
    message = str(caught.value)
    assert message.startswith(
        f"{bundle_copy / 'bundle.toml'}: format: missing; expected format = 1"
    )
    assert ("unknown key fromat on line 1" in message) == (new == "fromat")


def test_a_stage_folder_without_format_says_what_to_write(tmp_path: Path) -> None:
    (tmp_path / "stage.toml").write_text('[stage]\nname = "refine"\n')
    with pytest.raises(UserError, match=r"stage\.toml: format: missing; expected format = 1"):
        load_stage_folder(tmp_path)
