"""``installation export stylegan``: a training pickle in, a checked W-space bundle out.

Each test writes a small synthetic snapshot (32 px, narrow) in the real persistence structure
with ``tests/stylegan_fixtures.py``, from the generators' own ``synthetic`` trees, then runs the
command line on it as a user would.
"""

from __future__ import annotations

import contextlib
import io
import tomllib
from collections.abc import Callable
from dataclasses import astuple, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
from stylegan_fixtures import write_snapshot

from export import stylegan2, stylegan3_design
from export.assemble import assemble
from export.stylegan_export import NVIDIA_WARNING, build_generator
from export.stylegan_pickle import PickledModule, load_network
from installation.cli import main
from installation.engine.bundle import load_bundle

REPO = Path(__file__).resolve().parent.parent
REFINE_STAGE = REPO / "bundles" / "faces-256" / "refine-256.onnx"
TOLERANCE = 1e-4


def stylegan2_config(c_dim: int = 0) -> dict[str, Any]:
    """A 32 px StyleGAN2-ADA generator, 16 channels wide."""
    return {
        "z_dim": 16,
        "c_dim": c_dim,
        "w_dim": 16,
        "img_resolution": 32,
        "img_channels": 3,
        "mapping_kwargs": {"num_layers": 2},
        "synthesis_kwargs": {"channel_base": 256, "channel_max": 16, "conv_clamp": 256},
    }


MODELS = {
    "stylegan2": lambda: stylegan2.synthetic(stylegan2_config(), seed=1),
    "stylegan2-conditional": lambda: stylegan2.synthetic(stylegan2_config(c_dim=3), seed=2),
    "stylegan3-t": lambda: stylegan3_design.synthetic(stylegan3_design.small_config("T"), seed=3),
    "stylegan3-r": lambda: stylegan3_design.synthetic(stylegan3_design.small_config("R"), seed=4),
}


def export(tmp_path: Path, tree: PickledModule, *extra: str) -> tuple[int, Path, Path]:
    pickle_path = write_snapshot(tmp_path / "network-snapshot.pkl", tree)
    out = tmp_path / "bundle"
    code = main(["export", "stylegan", str(pickle_path), "--out", str(out), *extra])
    return code, pickle_path, out


@dataclass(frozen=True)
class Exported:
    pickle: Path
    bundle: Path
    printed: str


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Exported]:
    """Each model exported once through the command line, shared by the tests that read it."""
    done: dict[str, Exported] = {}

    def get(model: str) -> Exported:
        if model not in done:
            folder = tmp_path_factory.mktemp(model)
            pickle_path = write_snapshot(folder / "network-snapshot.pkl", MODELS[model]())
            args = ["export", "stylegan", str(pickle_path), "--out", str(folder / "bundle")]
            output = io.StringIO()
            with contextlib.redirect_stdout(output):
                code = main([*args, "--license", "CC BY 4.0"])
            assert code == 0, output.getvalue()
            done[model] = Exported(pickle_path, folder / "bundle", output.getvalue())
        return done[model]

    return get


@pytest.mark.parametrize("model", MODELS)
def test_a_pickle_becomes_a_checked_w_bundle(
    exported: Callable[[str], Exported], model: str
) -> None:
    pickle_path, out, printed = astuple(exported(model))
    assert NVIDIA_WARNING in printed and "max abs error" in printed

    bundle = load_bundle(out)  # the command checked it as the runtime does; read it back
    generator = build_generator(load_network(pickle_path), pickle_path)[1]
    manifest = tomllib.loads((out / "bundle.toml").read_text())
    assert manifest["latent"] == {"size": generator.z_dim, "distribution": "normal", "space": "w"}
    assert bundle.w is not None
    assert (bundle.w.w_dim, bundle.w.num_ws, bundle.w.c_dim) == (
        generator.w_dim,
        generator.num_ws,
        generator.c_dim,
    )
    assert (bundle.w.transform is None) == model.startswith("stylegan2")
    assert np.array_equal(np.load(bundle.w.average), generator.w_avg.numpy())
    (stage,) = bundle.stages
    assert stage.input_shape == (generator.num_ws, generator.w_dim)
    assert stage.output_shape == (3, 32, 32)
    provenance = bundle.provenance
    assert provenance["source"] == pickle_path.name and provenance["license"] == "CC BY 4.0"
    for name, sha in load_network(pickle_path).sources().items():
        assert f"{name}={sha}" in provenance["notes"]
    assert "import" not in provenance["notes"]

    # ONNX Runtime against our torch generator, on inputs the export did not verify on.
    draw = torch.Generator().manual_seed(99)
    z = torch.randn(2, generator.z_dim, generator=draw)
    mapping_feed = {"z": z}
    if generator.c_dim:
        mapping_feed["c"] = torch.eye(generator.c_dim)[:2]
    with torch.no_grad():
        w = generator.map(z, mapping_feed.get("c"))
        ws = torch.stack([w[0].expand(generator.num_ws, -1), w[1].expand(generator.num_ws, -1)])
        transform = None
        if generator.transform is not None:
            transform = generator.transform.expand(2, 3, 3).clone()
            transform[1, :2, 2] = torch.tensor([0.1, -0.2])
        image = generator.synthesize(ws, transform)
    mapping = ort.InferenceSession(str(bundle.w.mapping), providers=["CPUExecutionProvider"])
    (onnx_w,) = mapping.run(None, {k: v.numpy() for k, v in mapping_feed.items()})
    assert np.abs(onnx_w - w.numpy()).max() < TOLERANCE
    feed = {"ws": ws.numpy()}
    if transform is not None:
        feed["transform"] = transform.numpy()
    synthesis = ort.InferenceSession(str(stage.path), providers=["CPUExecutionProvider"])
    (onnx_image,) = synthesis.run(None, feed)
    assert onnx_image.shape == (2, 3, 32, 32)
    assert np.abs(onnx_image - image.numpy()).max() < TOLERANCE


def without(tree: PickledModule, dotted: str) -> PickledModule:
    """``tree`` without the parameter or buffer ``dotted``."""
    head, _, rest = dotted.partition(".")
    if not rest:
        return replace(
            tree,
            parameters={k: v for k, v in tree.parameters.items() if k != head},
            buffers={k: v for k, v in tree.buffers.items() if k != head},
        )
    return replace(tree, children={**tree.children, head: without(tree.children[head], rest)})


def reshaped(tree: PickledModule, dotted: str) -> PickledModule:
    """``tree`` with the parameter ``dotted`` one row short."""
    head, _, rest = dotted.partition(".")
    if not rest:
        tensor = tree.parameters[head]
        return replace(tree, parameters={**tree.parameters, head: tensor[:-1]})
    return replace(tree, children={**tree.children, head: reshaped(tree.children[head], rest)})


@pytest.mark.parametrize(
    ("model", "change", "tensor"),
    [
        ("stylegan2", without, "synthesis.b8.conv0.weight"),
        ("stylegan2", reshaped, "mapping.fc0.weight"),
        ("stylegan3-t", without, "synthesis.L1_52_16.affine.weight"),
        ("stylegan3-t", reshaped, "mapping.fc1.weight"),
    ],
)
def test_a_foreign_layout_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], model: str, change: Any, tensor: str
) -> None:
    code, pickle_path, out = export(tmp_path, change(MODELS[model](), tensor), "--license", "x")
    error = capsys.readouterr().err.strip()
    assert code == 2
    assert len(error.splitlines()) == 1 and str(pickle_path) in error and tensor in error
    assert not out.exists()


def test_an_unsupported_generator_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = MODELS["stylegan2"]()
    mapping_only = replace(tree, children={"mapping": tree.children["mapping"]})
    code, pickle_path, _ = export(tmp_path, mapping_only, "--license", "x")
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1
    assert str(pickle_path) in error and "not a StyleGAN2, StyleGAN2-ADA or StyleGAN3" in error


def test_a_refinement_stage_stacks_on_a_stylegan_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exported: Callable[[str], Exported]
) -> None:
    """The default bundle's 64->256 stage, re-exported from its ONNX weights for 32 px
    input (keeping its name, so its training report can come along), stacked after a 32 px
    StyleGAN2: the W table and its files come along."""
    stage = tmp_path / "stage"
    report = REFINE_STAGE.with_name("refine-256.training.md")
    args = ["export", "stage", str(REFINE_STAGE), "--out", str(stage), "--input-size", "32"]
    assert main([*args, "--name", "refine-256", "--include", str(report), "--license", "MIT"]) == 0
    assert "from refine-256.onnx" in capsys.readouterr().out
    assert (stage / report.name).read_bytes() == report.read_bytes()

    bundle = assemble(exported("stylegan2").bundle, [stage], tmp_path / "stacked", "stacked")
    assert [s.output_size for s in bundle.stages] == [(32, 32), (128, 128)]
    assert bundle.w is not None and bundle.w.mapping.parent == tmp_path / "stacked"
    assert bundle.w == load_bundle(tmp_path / "stacked").w
    assert "refine-256: MIT" in bundle.provenance["license"]


def test_an_onnx_file_that_is_not_a_refinement_stage_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generator = REPO / "bundles" / "faces-256" / "generator.onnx"
    args = ["export", "stage", str(generator), "--out", str(tmp_path / "s"), "--input-size", "64"]
    assert main([*args, "--license", "MIT"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert f"{generator}: not a refinement stage of this project" in error
