"""Write a model bundle (``docs/bundle.md``) and check it exactly as the runtime will.

A bundle is assembled in a hidden staging folder next to its destination and only moved into
place once the runtime's own validator accepts it, so a failed export never leaves a
half-written bundle behind, nor damages the one it was meant to replace. The manifest's sha256
values are those of the files actually written, never typed in: the runtime's validator checks
each against its file before the bundle is moved into place. Stages are the runtime's own
``StageSpec`` and are written by its ``stage_table``, so there is one schema, not two.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from export.toml_writer import dumps
from installation.engine.bundle import (
    FORMAT,
    MANIFEST,
    Bundle,
    Provenance,
    StageSpec,
    WSpec,
    load_bundle,
    stage_table,
    verify_files,
    w_table,
)
from installation.engine.bundle_check import check_bundle as check_loaded
from installation.errors import UserError


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
    stages: Sequence[StageSpec],
    license_text: str | None = None,
    w: WSpec | None = None,
    out: Path | None = None,
) -> Bundle:
    """Write ``bundle.toml`` (and the licence text to ``provenance.license_file`` if given)
    into ``folder``, which already holds the stages' ONNX files, then check the result.
    ``w`` makes it a bundle that morphs in W (docs/bundle.md), its files also in ``folder``.
    ``out`` is where ``staged_bundle`` will move a staging ``folder``: the check's warnings
    name it, so that the bundle need not be checked again there (``placed_bundle``)."""
    if license_text is not None:
        if not provenance.license_file:
            raise ValueError("license_text given but provenance.license_file is empty")
        (folder / provenance.license_file).write_text(license_text, encoding="utf-8")
    document: dict[str, Any] = {"format": FORMAT, "name": name}
    if description:
        document["description"] = description
    document["latent"] = {"size": latent_size, "distribution": distribution}
    if w is not None:
        document["latent"]["space"] = "w"
        document["w"] = w_table(w, folder)
    document["provenance"] = provenance_table(provenance)
    document["stages"] = [stage_table(stage, folder) for stage in stages]
    (folder / MANIFEST).write_text(dumps(document), encoding="utf-8")
    # The check logs its warnings with the hidden staging folder's paths: they are held back
    # and said again with the paths the bundle will have.
    check_log = logging.getLogger(check_loaded.__module__)
    level = check_log.level
    check_log.setLevel(logging.ERROR)
    try:
        bundle = load_bundle(folder)
        warnings = check_loaded(bundle)
    finally:
        check_log.setLevel(level)
    for warning in warnings:
        check_log.warning("%s", warning.replace(str(folder), str(out or folder)))
    return bundle


def provenance_table(provenance: Provenance) -> dict[str, str]:
    """The ``[provenance]`` table: the fields that are set, in their order."""
    values = ((field.name, getattr(provenance, field.name)) for field in fields(provenance))
    return {key: value for key, value in values if value}


def placed_bundle(out: Path) -> Bundle:
    """The bundle ``staged_bundle`` just moved into ``out``, after ``write_manifest`` checked
    it in staging: its manifest read again for the final paths, and its files' sha256 verified
    in place; the models are the same bytes, so they are not run a second time."""
    bundle = load_bundle(out)
    verify_files(bundle)
    return bundle
