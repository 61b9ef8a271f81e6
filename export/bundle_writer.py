"""Write a model bundle (``docs/bundle.md``) and check it exactly as the runtime will.

A bundle is assembled in a hidden staging folder next to its destination and only moved into
place once the runtime's own validator accepts it, so a failed export never leaves a
half-written bundle behind, nor damages the one it was meant to replace. The manifest's sha256
values are computed from the files actually written, never typed in.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from export.toml_writer import dumps
from installation.engine.bundle import FORMAT, MANIFEST, Bundle, load_bundle, sha256_of
from installation.engine.bundle_check import check_bundle as check_loaded
from installation.errors import UserError


@dataclass(frozen=True)
class Provenance:
    """The manifest's ``[provenance]``; empty optional fields are left out of the file."""

    source: str
    license: str
    url: str = ""
    version: str = ""
    license_file: str = ""
    source_sha256: str = ""
    notes: str = ""


@dataclass(frozen=True)
class StageEntry:
    """One ``[[stages]]`` entry without its sha256, which is computed from the written file.

    Shapes are per item; ``input_layout`` and ``input_range`` are for stages that take an
    image, i.e. every stage but the first.
    """

    name: str
    file: str
    input_name: str
    input_shape: tuple[int, ...]
    output_name: str
    output_shape: tuple[int, ...]
    layout: str = "NCHW"
    range: tuple[float, float] = (-1.0, 1.0)
    input_layout: str | None = None
    input_range: tuple[float, float] | None = None


@contextmanager
def staged_bundle(out: Path, force: bool) -> Iterator[Path]:
    """Yield an empty staging folder; when the block succeeds, move its files into ``out``.

    Refuses a non-empty ``out`` unless ``force``, which replaces files of the same names and
    leaves any others alone (deleting a folder the user named is never worth the risk).
    """
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(f"{out}: folder is not empty; choose another or overwrite with --force")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}-", dir=out.parent) as staging:
        yield Path(staging)
        out.mkdir(exist_ok=True)
        # The manifest goes last, so it never names model files that are not in place yet.
        for file in sorted(Path(staging).iterdir(), key=lambda item: item.name == MANIFEST):
            os.replace(file, out / file.name)


def write_manifest(
    folder: Path,
    name: str,
    description: str,
    latent_size: int,
    distribution: str,
    provenance: Provenance,
    stages: Sequence[StageEntry],
    license_text: str | None = None,
) -> Bundle:
    """Write ``bundle.toml`` (and the licence text to ``provenance.license_file`` if given)
    into ``folder``, which already holds the stages' ONNX files, then check the result."""
    if license_text is not None:
        if not provenance.license_file:
            raise ValueError("license_text given but provenance.license_file is empty")
        (folder / provenance.license_file).write_text(license_text, encoding="utf-8")
    document: dict[str, Any] = {"format": FORMAT, "name": name}
    if description:
        document["description"] = description
    document["latent"] = {"size": latent_size, "distribution": distribution}
    document["provenance"] = {
        field.name: getattr(provenance, field.name)
        for field in fields(provenance)
        if getattr(provenance, field.name)
    }
    document["stages"] = [stage_table(folder, stage) for stage in stages]
    (folder / MANIFEST).write_text(dumps(document), encoding="utf-8")
    return check_bundle(folder)


def stage_table(folder: Path, stage: StageEntry) -> dict[str, Any]:
    """One ``[[stages]]`` table (as in ``bundle.toml`` and a stage folder's ``stage.toml``),
    its sha256 computed from the file written in ``folder``."""
    table: dict[str, Any] = {
        "name": stage.name,
        "file": stage.file,
        "sha256": sha256_of(folder / stage.file),
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


def check_bundle(path: Path) -> Bundle:
    """Everything the runtime checks before its first frame (``installation.engine.bundle_check``):
    manifest, files, sha256 values, each model's real input and output against the manifest,
    and each stage's output on a sample against its declared range."""
    bundle = load_bundle(path)
    check_loaded(bundle)
    return bundle
