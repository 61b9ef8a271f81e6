"""The model bundle: the one contract between the workshop (``export``) and the runtime.

A bundle is a folder with a ``bundle.toml`` manifest and one ONNX file per stage. The runtime
trusts nothing it has not checked, so this module validates the manifest strictly, checks
every file against its sha256, and compares what each ONNX model really declares with what the
manifest promises. Each stage states its own conventions (value range, layout), so a generator
exported by someone else works when its manifest says how to read it; ``convention`` does the
conversions. The schema is documented in ``docs/bundle.md``; this module both reads it and, for
the workshop, writes it (``stage_table``), so the two sides cannot drift apart.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from installation.errors import UserError, reason
from installation.score.trajectory import DISTRIBUTIONS
from installation.tomlfile import Section, read_toml

MANIFEST = "bundle.toml"
FORMAT = 1
LAYOUTS = ("NCHW", "NHWC")


@dataclass(frozen=True)
class TensorInfo:
    """A model input or output as a backend reports it. A dynamic axis is its symbolic name
    where the model gives one (``"batch"``), else None: an error about a variable image size
    can then say which axis varies as the model's author named it."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: str


@dataclass(frozen=True)
class StageSpec:
    """One stage as the manifest describes it, read by ``parse_stage`` and written by
    ``stage_table``. Shapes exclude the leading batch axis; ``path`` is the model file.

    ``input_layout`` and ``input_range`` are set for stages that take an image (every stage
    after the first) and None for the first stage, which takes a latent vector.
    """

    name: str
    path: Path
    sha256: str
    input_name: str
    input_shape: tuple[int, ...]
    output_name: str
    output_shape: tuple[int, ...]
    layout: str
    range: tuple[float, float]
    input_layout: str | None = None
    input_range: tuple[float, float] | None = None

    @property
    def output_size(self) -> tuple[int, int]:
        """Width and height of the image this stage draws."""
        return image_size(self.output_shape, self.layout)


@dataclass(frozen=True)
class Provenance:
    """A manifest's (or stage folder's) ``[provenance]``: where the weights come from and
    under which terms. ``source`` and ``license`` are required; empty fields are not written."""

    source: str
    license: str
    url: str = ""
    version: str = ""
    license_file: str = ""
    source_sha256: str = ""
    notes: str = ""


@dataclass(frozen=True)
class Bundle:
    path: Path
    name: str
    latent_size: int
    latent_distribution: str
    stages: tuple[StageSpec, ...]
    provenance: dict[str, str]

    @property
    def output_size(self) -> tuple[int, int]:
        return self.stages[-1].output_size


def image_size(shape: Sequence[int], layout: str) -> tuple[int, int]:
    """(width, height) of a per-item image shape in ``layout``."""
    return (shape[2], shape[1]) if layout == "NCHW" else (shape[1], shape[0])


def channels(shape: Sequence[int], layout: str) -> int:
    return shape[0] if layout == "NCHW" else shape[2]


def load_bundle(path: Path) -> Bundle:
    """Parse and validate a bundle's manifest (no model file is opened here).

    ``path`` is the bundle folder or its ``bundle.toml``.
    """
    folder = path.parent if path.name == MANIFEST else path
    if not folder.is_dir():
        raise UserError(f"{folder}: bundle folder not found")
    doc = read_toml(folder / MANIFEST, "bundle manifest")
    root = Section.root(doc)
    check_format(root)
    name = root.get("name", str)
    root.get("description", str, "")

    latent = root.table("latent")
    latent_size = latent.number("size", 1, kind=int)
    distribution = latent.choice("distribution", DISTRIBUTIONS)
    latent.finish()

    info = parse_provenance(root.table("provenance"), folder)
    sections = root.tables("stages")
    stages = tuple(parse_stage(section, folder, i > 0) for i, section in enumerate(sections))
    root.finish()
    bundle = Bundle(folder, name, latent_size, distribution, stages, info)
    _check_chain(bundle, sections)
    return bundle


def parse_provenance(section: Section, folder: Path) -> dict[str, str]:
    """A ``[provenance]`` table of a manifest in ``folder``, every field of ``Provenance``
    (empty when absent)."""
    info = {field.name: section.get(field.name, str, "") for field in fields(Provenance)}
    for key in ("source", "license"):
        if not info[key]:
            raise section.error(key, "missing; say where the weights come from and their licence")
    if info["license_file"]:
        license_file = inside(section, "license_file", folder)
        if not license_file.is_file():
            raise section.error(
                "license_file", f"{info['license_file']!r} not found in the bundle folder"
            )
    section.finish()
    return info


def check_format(root: Section) -> None:
    """``format = 1`` heads every bundle manifest and stage folder's ``stage.toml``: a later
    format may mean something else by the same keys, so a file without it is not guessed at."""
    if not root.has("format"):
        raise root.missing("format", int, f"format = {FORMAT} at the top (see docs/bundle.md)")
    fmt = root.get("format", int)
    if fmt != FORMAT:
        raise root.error("format", f"this runtime reads format {FORMAT}, got {fmt}")


def inside(section: Section, key: str, folder: Path) -> Path:
    """The file that ``key`` names, relative to ``folder`` and inside it once every ``..`` and
    symbolic link is resolved: a bundle is copied and checked as one folder, so a file outside
    it (an absolute path, ``../..``) would escape both the copy and its sha256 list."""
    name = section.get(key, str)
    if Path(name).is_absolute():
        raise section.error(key, f"expected a path relative to the bundle folder, got {name!r}")
    path = folder / name
    try:
        resolved, root = path.resolve(), folder.resolve()
    except (OSError, ValueError) as exc:
        raise section.error(key, f"cannot resolve {name!r}: {exc}") from None
    if not resolved.is_relative_to(root) or resolved == root:
        raise section.error(
            key, f"{name!r} resolves to {resolved}, which is not a file inside the bundle folder"
        )
    return path


def parse_stage(section: Section, folder: Path, takes_image: bool) -> StageSpec:
    """One ``[[stages]]`` table (or an exported stage's ``[stage]``) of files in ``folder``."""
    path = inside(section, "file", folder)
    sha = section.get("sha256", str).lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise section.error("sha256", "expected 64 hexadecimal digits")
    spec = StageSpec(
        name=section.get("name", str),
        path=path,
        sha256=sha,
        input_name=section.get("input_name", str),
        input_shape=section.integers("input_shape"),
        output_name=section.get("output_name", str),
        output_shape=section.integers("output_shape"),
        layout=section.choice("layout", LAYOUTS),
        range=_value_range(section, "range"),
        input_layout=section.choice("input_layout", LAYOUTS) if takes_image else None,
        input_range=_value_range(section, "input_range") if takes_image else None,
    )
    if len(spec.output_shape) != 3 or channels(spec.output_shape, spec.layout) != 3:
        raise section.error(
            "output_shape",
            f"expected an RGB image of 3 channels in {spec.layout}, got {list(spec.output_shape)}",
        )
    section.finish()
    return spec


def stage_table(stage: StageSpec, folder: Path) -> dict[str, Any]:
    """``stage`` as the ``[[stages]]`` table of a manifest in ``folder`` (or a stage folder's
    ``[stage]``) that ``parse_stage`` reads back as ``stage``; optional keys only when set."""
    table: dict[str, Any] = {
        "name": stage.name,
        "file": stage.path.relative_to(folder).as_posix(),
        "sha256": stage.sha256,
        "input_name": stage.input_name,
        "input_shape": list(stage.input_shape),
        "output_name": stage.output_name,
        "output_shape": list(stage.output_shape),
        "layout": stage.layout,
        "range": [float(value) for value in stage.range],
    }
    if stage.input_layout is not None:
        table["input_layout"] = stage.input_layout
    if stage.input_range is not None:
        table["input_range"] = [float(value) for value in stage.input_range]
    return table


def _value_range(section: Section, key: str) -> tuple[float, float]:
    low, high = section.numbers(key, 2)
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise section.error(key, f"expected [low, high] with low < high, got [{low}, {high}]")
    return low, high


def _check_chain(bundle: Bundle, sections: Sequence[Section]) -> None:
    """Each stage must accept what the one before it produces; the first takes the latent."""
    first = bundle.stages[0]
    elements = 1
    for size in first.input_shape:
        elements *= size
    if elements != bundle.latent_size:
        raise sections[0].error(
            "input_shape",
            f"{list(first.input_shape)} holds {elements} values but latent.size is "
            f"{bundle.latent_size}",
        )
    for before, after, section in zip(bundle.stages, bundle.stages[1:], sections[1:], strict=False):
        mismatch = chain_mismatch(before, after)
        if mismatch:
            raise section.error("input_shape", mismatch)


def chain_mismatch(before: StageSpec, after: StageSpec) -> str | None:
    """Why ``after`` cannot take the image ``before`` draws, or None when it can."""
    assert after.input_layout is not None
    wanted = (before.output_size, 3)
    if len(after.input_shape) == 3:
        got = (
            image_size(after.input_shape, after.input_layout),
            channels(after.input_shape, after.input_layout),
        )
        if got == wanted:
            return None
    return (
        f"{list(after.input_shape)} ({after.input_layout}) does not fit the "
        f"{before.output_size[0]}x{before.output_size[1]} RGB output of stage {before.name!r}"
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_files(bundle: Bundle) -> None:
    """Every stage file exists and matches its sha256: catches truncated copies and
    half-finished rsyncs before a model is handed to a backend."""
    for stage in bundle.stages:
        verify_file(stage)


def verify_file(stage: StageSpec) -> None:
    """One stage's file exists and matches its sha256."""
    if not stage.path.is_file():
        raise UserError(f"{stage.path}: model file of stage {stage.name!r} not found")
    try:
        actual = sha256_of(stage.path)
    except OSError as exc:
        raise UserError(f"{stage.path}: cannot read model file: {reason(exc)}") from None
    if actual != stage.sha256:
        raise UserError(
            f"{stage.path}: sha256 mismatch: manifest says {stage.sha256[:12]}..., "
            f"file has {actual[:12]}... (truncated or replaced file?)"
        )


def check_io(stage: StageSpec, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo]) -> None:
    """Compare what a loaded model declares with what the manifest promised.

    The batch axis must be dynamic or 1; the other axes must equal the manifest's shapes.
    """
    _match(stage, "input", inputs, stage.input_name, stage.input_shape)
    _match(stage, "output", outputs, stage.output_name, stage.output_shape)


def _match(
    stage: StageSpec,
    kind: str,
    infos: Sequence[TensorInfo],
    name: str,
    shape: tuple[int, ...],
) -> None:
    if len(infos) != 1:
        names = ", ".join(info.name for info in infos)
        raise UserError(f"{stage.path}: expected one {kind}, the model has {len(infos)} ({names})")
    info = infos[0]
    if info.name != name:
        raise UserError(
            f"{stage.path}: {kind} is named {info.name!r} in the model but {name!r} in the manifest"
        )
    if info.dtype != "float32":
        raise UserError(f"{stage.path}: {kind} {name!r} is {info.dtype}, expected float32")
    batch = info.shape[0] if info.shape else 0
    if (batch == 1 or not isinstance(batch, int)) and tuple(info.shape[1:]) == shape:
        return
    fix = ""
    if any(not isinstance(size, int) for size in info.shape[1:]):
        image = kind == "output" or stage.input_layout is not None
        fix = "; only the batch axis may vary: export the model with a fixed " + (
            "height and width" if image else "size on every other axis"
        )
    raise UserError(
        f"{stage.path}: {kind} {name!r} has shape {_describe(info.shape)} in the model, "
        f"manifest says [batch, {', '.join(map(str, shape))}]{fix}"
    )


def _describe(shape: Sequence[int | str | None]) -> str:
    """A model's shape as its author named the axes: ``[batch, 3, height, width]``, with ``?``
    for a variable axis that has no name."""
    return "[" + ", ".join("?" if size is None else str(size) for size in shape) + "]"
