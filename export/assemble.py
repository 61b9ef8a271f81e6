"""Stack exported refinement stages onto a bundle: ``installation export assemble``.

The base bundle gives the latent and the first stages; each stage folder (``export.stage_export``)
adds one stage. The chain is checked before anything is written, and the message names the
stage folder whose input does not fit, because after assembly the runtime could only point at
a line of a manifest the user never wrote. Provenance is merged part by part, each part named,
so the assembled bundle still says where every stage's weights come from and under which terms.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from export.bundle_writer import Provenance, StageEntry, check_bundle, staged_bundle, write_manifest
from export.stage_export import STAGE_MANIFEST
from installation.engine.bundle import (
    MANIFEST,
    Bundle,
    StageSpec,
    chain_mismatch,
    check_format,
    load_bundle,
    parse_stage,
    verify_files,
)
from installation.errors import UserError
from installation.tomlfile import Section, read_toml


@dataclass(frozen=True)
class StageFolder:
    path: Path
    spec: StageSpec
    provenance: dict[str, str]


def load_stage_folder(path: Path) -> StageFolder:
    """A stage folder's ``stage.toml``, validated like a manifest's stage, and its file."""
    if not path.is_dir():
        raise UserError(f"{path}: stage folder not found")
    root = Section.root(read_toml(path / STAGE_MANIFEST, "stage manifest"))
    check_format(root)
    spec = parse_stage(root.table("stage"), path, takes_image=True)
    section = root.table("provenance")
    provenance = {field.name: section.get(field.name, str, "") for field in fields(Provenance)}
    for key in ("source", "license"):
        if not provenance[key]:
            raise section.error(key, "missing; say where the weights come from and their licence")
    section.finish()
    root.finish()
    if not spec.path.is_file():
        raise UserError(f"{spec.path}: model file of stage {spec.name!r} not found")
    return StageFolder(path, spec, provenance)


def assemble(
    base: Path,
    stages: Sequence[Path],
    out: Path,
    name: str,
    description: str = "",
    force: bool = False,
) -> Bundle:
    """Write the bundle ``out``: ``base``'s stages followed by those of the stage folders."""
    bundle = load_bundle(base)
    verify_files(bundle)
    folders = [load_stage_folder(path) for path in stages]
    chain = list(bundle.stages)
    for folder in folders:
        mismatch = chain_mismatch(chain[-1], folder.spec)
        if mismatch:
            raise UserError(f"{folder.path / STAGE_MANIFEST}: stage input_shape {mismatch}")
        chain.append(folder.spec)
    sources = [_files(bundle.path, [s.path for s in bundle.stages])]
    sources += [_files(folder.path, [folder.spec.path]) for folder in folders]
    with staged_bundle(out, force) as staging:
        copied: dict[str, Path] = {}
        for files in sources:
            for file in files:
                if file.name in copied:
                    raise UserError(
                        f"{file}: a file named {file.name} also comes from {copied[file.name]}"
                    )
                copied[file.name] = file
                shutil.copyfile(file, staging / file.name)
        write_manifest(
            staging,
            name=name,
            description=description or _describe(chain),
            latent_size=bundle.latent_size,
            distribution=bundle.latent_distribution,
            provenance=_merge(bundle, folders),
            stages=[_entry(spec) for spec in chain],
        )
    return check_bundle(out)


def _files(folder: Path, models: list[Path]) -> list[Path]:
    """The models and every other file of a part (licences, reports), manifests excepted."""
    others = sorted(
        p for p in folder.iterdir() if p.is_file() and p.name not in (MANIFEST, STAGE_MANIFEST)
    )
    return [*models, *(p for p in others if p not in models)]


def _entry(spec: StageSpec) -> StageEntry:
    return StageEntry(
        name=spec.name,
        file=spec.path.name,
        input_name=spec.input_name,
        input_shape=spec.input_shape,
        output_name=spec.output_name,
        output_shape=spec.output_shape,
        layout=spec.layout,
        range=spec.range,
        input_layout=spec.input_layout,
        input_range=spec.input_range,
    )


def _describe(chain: list[StageSpec]) -> str:
    sizes = " -> ".join(f"{spec.output_size[0]}" for spec in chain)
    return f"faces in {len(chain)} stages: {sizes} px"


def _merge(bundle: Bundle, folders: list[StageFolder]) -> Provenance:
    """Each provenance field as "stage: value; stage: value". A base bundle of several stages
    was assembled and its values are labelled already; they are kept as they are. The base's
    licence file stays the manifest's ``license_file`` (the stages' own files are copied next
    to it)."""
    base = bundle.stages[0].name if len(bundle.stages) == 1 else ""
    parts = [(base, bundle.provenance)]
    parts += [(folder.spec.name, folder.provenance) for folder in folders]
    merged = {
        key: "; ".join(
            f"{part}: {info[key]}" if part else info[key] for part, info in parts if info[key]
        )
        for key in (field.name for field in fields(Provenance))
    }
    merged["license_file"] = bundle.provenance["license_file"]
    return Provenance(**merged)
