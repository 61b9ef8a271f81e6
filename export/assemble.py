"""Stack exported refinement stages onto a bundle: ``installation export assemble``.

The base bundle gives the latent (with a W bundle's mapping and average w) and the first
stages; each stage folder (``export.stage_export``) adds one stage. The chain is checked before
anything is written, and the message names the stage folder whose input does not fit, because
after assembly the runtime could only point at a line of a manifest the user never wrote.
Provenance is merged part by part, each part named, so the assembled bundle still says where
every stage's weights come from and under which terms.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

from export.bundle_writer import placed_bundle, staged_bundle, write_manifest
from export.stage_export import STAGE_MANIFEST
from installation.engine.bundle import (
    MANIFEST,
    Bundle,
    Provenance,
    StageSpec,
    WSpec,
    chain_mismatch,
    check_format,
    load_bundle,
    parse_provenance,
    parse_stage,
    verify_file,
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
    """A stage folder's ``stage.toml``, validated like a manifest's stage and provenance,
    and its file, checked against its sha256 as a bundle's files are."""
    if not path.is_dir():
        raise UserError(f"{path}: stage folder not found")
    root = Section.root(read_toml(path / STAGE_MANIFEST, "stage manifest"))
    check_format(root)
    spec = parse_stage(root.table("stage"), path, takes_image=True)
    provenance = parse_provenance(root.table("provenance"), path)
    root.finish()
    verify_file(spec)
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
    base_models = [s.path for s in bundle.stages]
    if bundle.w is not None:
        base_models += [bundle.w.mapping, bundle.w.average]
    sources = [_files(bundle.path, base_models)]
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
            stages=[replace(spec, path=staging / spec.path.name) for spec in chain],
            w=None if bundle.w is None else _moved(bundle.w, staging),
            out=out,
        )
    return placed_bundle(out)


def _moved(w: WSpec, folder: Path) -> WSpec:
    """A W bundle's ``[w]`` files, copied into ``folder`` as the stages' files are."""
    return replace(w, mapping=folder / w.mapping.name, average=folder / w.average.name)


def _files(folder: Path, models: list[Path]) -> list[Path]:
    """The models and every other file of a part (licences, reports), manifests excepted."""
    others = sorted(
        p for p in folder.iterdir() if p.is_file() and p.name not in (MANIFEST, STAGE_MANIFEST)
    )
    return [*models, *(p for p in others if p not in models)]


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
