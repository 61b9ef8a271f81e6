"""The model bundle: the one contract between the workshop (``export``) and the runtime.

A bundle is a folder with a ``bundle.toml`` manifest and one ONNX file per stage. The runtime
trusts nothing it has not checked, so this module validates the manifest strictly, checks
every file against its sha256, and compares what each ONNX model really declares with what the
manifest promises. Each stage states its own conventions (value range, layout), so a generator
exported by someone else works when its manifest says how to read it; ``convention`` does the
conversions. The schema is documented in ``docs/bundle.md``; this module both reads it and, for
the workshop, writes it (``stage_table``, ``w_table``), so the two sides cannot drift apart.

A bundle's latent space is Z (the default: the first stage takes the seeds' vectors) or W (a
StyleGAN: ``mapping.onnx`` turns each seed's z into a w, and the first stage, the synthesis,
takes ``num_ws`` of them); the ``[w]`` table of a W bundle names the mapping and the average w
the runtime truncates toward, both files checked against their sha256 like the stages.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from installation.errors import UserError, reason
from installation.score.trajectory import DISTRIBUTIONS
from installation.tomlfile import Section, read_toml

MANIFEST = "bundle.toml"
FORMAT = 1
LAYOUTS = ("NCHW", "NHWC")
#: Latent spaces: "z", the first stage takes the seeds' vectors; "w", a mapping comes first.
SPACES = ("z", "w")
#: The name of the synthesis's second input where a W bundle has an input transform.
TRANSFORM = "transform"
#: Values a W bundle's layer carries after its ws when it has an input transform: the view
#: (rotation in degrees, translation x and y) the pipeline turns into the transform matrix.
VIEW_SIZE = 3


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
class WSpec:
    """A W bundle's ``[w]`` table. The mapping takes ``z`` [N, latent.size] (and ``c`` [N,
    c_dim] when ``c_dim`` > 0) and gives ``w`` [N, w_dim]; ``average`` is a numpy file of the
    float32 [w_dim] average w; ``transform`` is the StyleGAN3 input transform the synthesis
    was stored with, None for a synthesis without one."""

    mapping: Path
    mapping_sha256: str
    w_dim: int
    num_ws: int
    c_dim: int
    average: Path
    average_sha256: str
    transform: tuple[tuple[float, float, float], ...] | None = None


@dataclass(frozen=True)
class Bundle:
    path: Path
    name: str
    latent_size: int
    latent_distribution: str
    stages: tuple[StageSpec, ...]
    provenance: dict[str, str]
    w: WSpec | None = None

    @property
    def output_size(self) -> tuple[int, int]:
        return self.stages[-1].output_size

    @property
    def space(self) -> str:
        return "z" if self.w is None else "w"

    @property
    def input_size(self) -> int:
        """Values per picture in a frame plan's layer: the z of a Z bundle; the ws of a W
        bundle (num_ws x w_dim), then its view where it has an input transform."""
        if self.w is None:
            return self.latent_size
        return self.w.num_ws * self.w.w_dim + (VIEW_SIZE if self.w.transform else 0)


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
    space = latent.choice("space", SPACES, "z")
    latent.finish()

    info = parse_provenance(root.table("provenance"), folder)
    w = _w_table(root, folder, space)
    sections = root.tables("stages")
    stages = tuple(parse_stage(section, folder, i > 0) for i, section in enumerate(sections))
    root.finish()
    bundle = Bundle(folder, name, latent_size, distribution, stages, info, w)
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


def _w_table(root: Section, folder: Path, space: str) -> WSpec | None:
    """The ``[w]`` table, which a W bundle must have and a Z bundle must not."""
    if space == "z":
        if root.has("w"):
            raise root.error("w", 'only for a W-space bundle: set space = "w" in [latent]')
        return None
    if not root.has("w"):
        raise root.missing("w", dict, 'a [w] table, since [latent] says space = "w"')
    return parse_w(root.table("w"), folder)


def parse_w(section: Section, folder: Path) -> WSpec:
    """A W bundle's ``[w]`` table of files in ``folder``."""
    spec = WSpec(
        mapping=inside(section, "mapping", folder),
        mapping_sha256=_sha256(section, "mapping_sha256"),
        w_dim=section.number("w_dim", 1, kind=int),
        num_ws=section.number("num_ws", 1, kind=int),
        c_dim=section.number("c_dim", 0, None, 0, kind=int),
        average=inside(section, "average", folder),
        average_sha256=_sha256(section, "average_sha256"),
        transform=_transform(section) if section.has("transform") else None,
    )
    section.finish()
    return spec


def _transform(section: Section) -> tuple[tuple[float, float, float], ...]:
    rows = section.get("transform", list)
    numbers = all(
        isinstance(row, list)
        and len(row) == 3
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in row)
        for row in rows
    )
    if len(rows) != 3 or not numbers:
        raise section.error(
            "transform", f"expected a 3x3 matrix as three rows of 3 numbers, got {rows!r}"
        )
    matrix = tuple((float(a), float(b), float(c)) for a, b, c in rows)
    if not np.isfinite(matrix).all() or abs(np.linalg.det(matrix)) < 1e-9:
        raise section.error("transform", f"expected a finite, invertible matrix, got {rows!r}")
    return matrix


def w_table(spec: WSpec, folder: Path) -> dict[str, Any]:
    """``spec`` as the ``[w]`` table of a manifest in ``folder``, which ``parse_w`` reads back
    as ``spec``; ``transform`` only when set."""
    table: dict[str, Any] = {
        "mapping": spec.mapping.relative_to(folder).as_posix(),
        "mapping_sha256": spec.mapping_sha256,
        "w_dim": spec.w_dim,
        "num_ws": spec.num_ws,
        "c_dim": spec.c_dim,
        "average": spec.average.relative_to(folder).as_posix(),
        "average_sha256": spec.average_sha256,
    }
    if spec.transform is not None:
        table["transform"] = [list(row) for row in spec.transform]
    return table


def _sha256(section: Section, key: str) -> str:
    sha = section.get(key, str).lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise section.error(key, "expected 64 hexadecimal digits")
    return sha


def parse_stage(section: Section, folder: Path, takes_image: bool) -> StageSpec:
    """One ``[[stages]]`` table (or an exported stage's ``[stage]``) of files in ``folder``."""
    path = inside(section, "file", folder)
    sha = _sha256(section, "sha256")
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
    """Each stage must accept what the one before it produces; the first takes the latent
    (a Z bundle's z; a W bundle's ws, [num_ws, w_dim])."""
    first = bundle.stages[0]
    if bundle.w is not None:
        wanted = (bundle.w.num_ws, bundle.w.w_dim)
        if first.input_shape != wanted:
            raise sections[0].error(
                "input_shape",
                f"{list(first.input_shape)}, but a W bundle's first stage takes [num_ws, w_dim] "
                f"= {list(wanted)} as [w] says",
            )
    elif math.prod(first.input_shape) != bundle.latent_size:
        raise sections[0].error(
            "input_shape",
            f"{list(first.input_shape)} holds {math.prod(first.input_shape)} values but "
            f"latent.size is {bundle.latent_size}",
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
    """Every stage file (and a W bundle's mapping and average) exists and matches its
    sha256: catches truncated copies and half-finished rsyncs before a model is handed to a
    backend."""
    for stage in bundle.stages:
        verify_file(stage)
    if bundle.w is not None:
        verify_w(bundle.w)


def verify_w(spec: WSpec) -> None:
    """A W bundle's mapping and average files exist and match their sha256."""
    _verify(spec.mapping, spec.mapping_sha256, "mapping model file")
    _verify(spec.average, spec.average_sha256, "average w file")


def verify_file(stage: StageSpec) -> None:
    """One stage's file exists and matches its sha256."""
    _verify(stage.path, stage.sha256, f"model file of stage {stage.name!r}")


def _verify(path: Path, sha256: str, what: str) -> None:
    if not path.is_file():
        raise UserError(f"{path}: {what} not found")
    try:
        actual = sha256_of(path)
    except OSError as exc:
        raise UserError(f"{path}: cannot read {what}: {reason(exc)}") from None
    if actual != sha256:
        raise UserError(
            f"{path}: sha256 mismatch: manifest says {sha256[:12]}..., "
            f"file has {actual[:12]}... (truncated or replaced file?)"
        )


def read_average(spec: WSpec) -> np.ndarray:
    """The average w of a W bundle (after ``verify_files``): float32 [w_dim], finite."""
    path = spec.average
    try:
        average = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a numpy .npy file of the average w: {exc}") from None
    if average.dtype != np.float32 or average.shape != (spec.w_dim,):
        raise UserError(
            f"{path}: the average w is {average.dtype} {list(average.shape)}, expected float32 "
            f"[{spec.w_dim}] (w_dim in [w])"
        )
    if not np.isfinite(average).all():
        raise UserError(f"{path}: the average w has NaN or infinite values")
    return average


def extra_inputs(bundle: Bundle, index: int) -> dict[str, tuple[int, ...]]:
    """The inputs stage ``index`` takes beside its manifest's ``input_name``, per item: a
    StyleGAN3 synthesis's input transform."""
    if index == 0 and bundle.w is not None and bundle.w.transform is not None:
        return {TRANSFORM: (3, 3)}
    return {}


def check_io(
    stage: StageSpec,
    inputs: Sequence[TensorInfo],
    outputs: Sequence[TensorInfo],
    extra: Mapping[str, tuple[int, ...]] | None = None,
) -> None:
    """Compare what a loaded model declares with what the manifest promised.

    The batch axis must be dynamic or 1; the other axes must equal the manifest's shapes.
    ``extra`` are the inputs the model takes after the manifest's (``extra_inputs``)."""
    wanted = {stage.input_name: stage.input_shape, **(extra or {})}
    check_tensors(stage.path, "input", inputs, wanted, stage.input_layout is not None)
    check_tensors(stage.path, "output", outputs, {stage.output_name: stage.output_shape}, True)


def check_tensors(
    path: Path,
    kind: str,
    infos: Sequence[TensorInfo],
    wanted: Mapping[str, tuple[int, ...]],
    image: bool,
) -> None:
    """A model's inputs (or outputs) are exactly ``wanted``'s names, in its order (the first
    is the one a backend feeds the batch to), each float32 of that shape per item."""
    names = [info.name for info in infos]
    if len(infos) != len(wanted):
        expected = (
            f"one {kind}" if len(wanted) == 1 else f"{len(wanted)} {kind}s ({', '.join(wanted)})"
        )
        raise UserError(
            f"{path}: expected {expected}, the model has {len(infos)} ({', '.join(names)})"
        )
    if len(wanted) == 1 and names[0] not in wanted:
        raise UserError(
            f"{path}: {kind} is named {names[0]!r} in the model but {next(iter(wanted))!r} in "
            "the manifest"
        )
    if names != list(wanted):
        raise UserError(
            f"{path}: {kind}s are {names} in the model, expected {list(wanted)} in that order"
        )
    for info in infos:
        _match(path, kind, info, wanted[info.name], image)


def _match(path: Path, kind: str, info: TensorInfo, shape: tuple[int, ...], image: bool) -> None:
    name = info.name
    if info.dtype != "float32":
        raise UserError(f"{path}: {kind} {name!r} is {info.dtype}, expected float32")
    batch = info.shape[0] if info.shape else 0
    if (batch == 1 or not isinstance(batch, int)) and tuple(info.shape[1:]) == shape:
        return
    fix = ""
    if any(not isinstance(size, int) for size in info.shape[1:]):
        fix = "; only the batch axis may vary: export the model with a fixed " + (
            "height and width" if image else "size on every other axis"
        )
    raise UserError(
        f"{path}: {kind} {name!r} has shape {_describe(info.shape)} in the model, "
        f"manifest says [batch, {', '.join(map(str, shape))}]{fix}"
    )


def _describe(shape: Sequence[int | str | None]) -> str:
    """A model's shape as its author named the axes: ``[batch, 3, height, width]``, with ``?``
    for a variable axis that has no name."""
    return "[" + ", ".join("?" if size is None else str(size) for size in shape) + "]"
