"""Turn a StyleGAN2-ADA / StyleGAN3 training pickle into a W-space bundle, checked end to end.

The pickle is read as data (``export.stylegan_pickle``: nothing in it runs), its ``G_ema`` is
rebuilt in our own generator code (``export.stylegan2`` / ``export.stylegan3``), and the two
halves are exported separately: ``mapping.onnx`` (z [, c] -> w, untruncated) and
``synthesis.onnx`` (ws [, transform] -> image, constant noise). The runtime maps each keyframe
seed through the mapping once and morphs in W, so it needs both, plus the average w that
truncation pulls toward (``w_avg.npy``). Both files are verified against torch on ONNX
Runtime before the bundle is written, like every other export.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from export import stylegan2, stylegan3
from export.bundle_writer import placed_bundle, staged_bundle, write_manifest
from export.onnx_export import OPSET, compare_onnx, export_graph
from export.stylegan_generator import StyleGenerator
from export.stylegan_pickle import PickledModule, load_network
from installation.engine.bundle import Bundle, Provenance, StageSpec, WSpec, sha256_of
from installation.errors import UserError

MAPPING_FILE = "mapping.onnx"
SYNTHESIS_FILE = "synthesis.onnx"
AVERAGE_FILE = "w_avg.npy"
NETWORK_KEY = "G_ema"
BATCH_SIZES = (1, 3)
"""Batches the export is verified on: 1 as the runtime plays it, 3 to prove the batch axis."""
NVIDIA_WARNING = (
    "note: NVIDIA's own released pickles (FFHQ, AFHQ, MetFaces, ...) are licensed for "
    "research and evaluation only (NVIDIA Source Code License-NC); a pickle you trained "
    "yourself holds your weights: --license states their terms"
)


def export_stylegan(
    pickle_path: Path,
    out: Path,
    name: str,
    license: str,
    seed: int = 0,
    force: bool = False,
    progress: Callable[[str], None] = print,
) -> Bundle:
    """Import ``G_ema`` of the snapshot at ``pickle_path`` into the bundle folder ``out``;
    ``seed`` draws the latents that verify the export. Returns the checked bundle."""
    progress(NVIDIA_WARNING)
    progress(f"reading {pickle_path} (as data: the code inside the pickle is never run)")
    network = load_network(pickle_path, NETWORK_KEY)
    family, generator = build_generator(network, pickle_path)
    if generator.img_channels != 3:
        raise UserError(
            f"{pickle_path}: {NETWORK_KEY} draws {generator.img_channels} channels; the "
            "runtime shows RGB images (3 channels)"
        )
    size = generator.img_resolution
    progress(
        f"{family}: {size}x{size} px, z_dim {generator.z_dim}, c_dim {generator.c_dim}, "
        f"w_dim {generator.w_dim}, num_ws {generator.num_ws}"
    )
    with staged_bundle(out, force) as folder:
        mapping, synthesis = folder / MAPPING_FILE, folder / SYNTHESIS_FILE
        progress(f"exporting {MAPPING_FILE} and {SYNTHESIS_FILE} (opset {OPSET})")
        mapping_inputs = {"z": (generator.z_dim,)}
        if generator.c_dim:
            mapping_inputs["c"] = (generator.c_dim,)
        export_graph(MappingNetwork(generator), mapping, mapping_inputs, "w")
        synthesis_inputs = {"ws": (generator.num_ws, generator.w_dim)}
        if generator.transform is not None:
            synthesis_inputs["transform"] = (3, 3)
        export_graph(SynthesisNetwork(generator), synthesis, synthesis_inputs, "image")
        progress("verifying with ONNX Runtime against torch")
        for path, module, batches in (
            (mapping, MappingNetwork(generator), mapping_samples(generator, seed)),
            (synthesis, SynthesisNetwork(generator), synthesis_samples(generator, seed)),
        ):
            result = compare_onnx(module, path, batches)
            progress(
                f"{path.name}: max abs error {result.max_abs_error:.1e} over {result.count} items"
            )
        np.save(folder / AVERAGE_FILE, generator.w_avg.detach().numpy().astype(np.float32))
        progress(f"writing {out}")
        write_manifest(
            folder,
            name=name,
            description=f"{size}x{size} images from a {family} generator ({pickle_path.name}), "
            "morphing in W",
            latent_size=generator.z_dim,
            distribution="normal",
            provenance=_provenance(pickle_path, network, family, license),
            stages=[
                StageSpec(
                    name="synthesis",
                    path=synthesis,
                    sha256=sha256_of(synthesis),
                    input_name="ws",
                    input_shape=(generator.num_ws, generator.w_dim),
                    output_name="image",
                    output_shape=(3, size, size),
                    layout="NCHW",
                    range=(-1.0, 1.0),
                )
            ],
            w=w_spec(folder, generator),
            out=out,
        )
    return placed_bundle(out)


def build_generator(network: PickledModule, label: Path) -> tuple[str, StyleGenerator]:
    """Our generator for ``network`` and the family's name, chosen by the classes the pickle
    names: StyleGAN3's synthesis network starts from a ``SynthesisInput``, StyleGAN2's from
    ``SynthesisBlock``s. Any problem is one line naming ``label`` (the pickle) first."""
    synthesis = network.children.get("synthesis")
    kinds = {child.class_name for child in synthesis.children.values()} if synthesis else set()
    families = {
        "SynthesisInput": ("StyleGAN3", stylegan3),
        "SynthesisBlock": ("StyleGAN2", stylegan2),
    }
    for kind, (family, module) in families.items():
        if network.class_name == "Generator" and kind in kinds:
            try:
                return family, module.build(network)
            except UserError as error:
                raise UserError(f"{label}: {NETWORK_KEY}: {error}") from None
    found = ", ".join(sorted(kinds)) or "no synthesis network"
    raise UserError(
        f"{label}: {NETWORK_KEY} is a {network.class_name} ({found}), not a StyleGAN2, "
        "StyleGAN2-ADA or StyleGAN3 generator; those are the ones this importer supports"
    )


class MappingNetwork(nn.Module):
    """``map`` as a module of its own, so it exports as a graph: (z [, c]) -> w."""

    def __init__(self, generator: StyleGenerator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator.map(z, c)


class SynthesisNetwork(nn.Module):
    """``synthesize`` as a module of its own: (ws [, transform]) -> image."""

    def __init__(self, generator: StyleGenerator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, ws: torch.Tensor, transform: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator.synthesize(ws, transform)


def mapping_samples(generator: StyleGenerator, seed: int) -> list[tuple[torch.Tensor, ...]]:
    """Normal z, and one-hot labels of random classes for a conditional model."""
    draw = torch.Generator().manual_seed(seed)
    batches: list[tuple[torch.Tensor, ...]] = []
    for batch in BATCH_SIZES:
        z = torch.randn(batch, generator.z_dim, generator=draw)
        if not generator.c_dim:
            batches.append((z,))
            continue
        classes = torch.randint(generator.c_dim, (batch,), generator=draw)
        batches.append((z, nn.functional.one_hot(classes, generator.c_dim).float()))
    return batches


def synthesis_samples(generator: StyleGenerator, seed: int) -> list[tuple[torch.Tensor, ...]]:
    """ws as the runtime makes them: mapped seeds, a different face for the fine layers
    (style mixing), and for StyleGAN3 rotated and shifted input transforms."""
    draw = torch.Generator().manual_seed(seed + 1)
    batches: list[tuple[torch.Tensor, ...]] = []
    for (z, *c), (other, *_) in zip(
        mapping_samples(generator, seed), mapping_samples(generator, seed + 1), strict=True
    ):
        with torch.no_grad():
            coarse, fine = generator.map(z, *c), generator.map(other, *c)
        ws = coarse.unsqueeze(1).repeat(1, generator.num_ws, 1)
        ws[:, generator.num_ws // 2 :] = fine.unsqueeze(1)
        if generator.transform is None:
            batches.append((ws,))
            continue
        angle = (torch.rand(len(z), generator=draw) - 0.5) * math.pi / 2
        shift = (torch.rand(len(z), 2, generator=draw) - 0.5) * 0.4
        transform = torch.zeros(len(z), 3, 3)
        transform[:, 0, 0] = transform[:, 1, 1] = torch.cos(angle)
        transform[:, 0, 1], transform[:, 1, 0] = -torch.sin(angle), torch.sin(angle)
        transform[:, :2, 2], transform[:, 2, 2] = shift, 1.0
        batches.append((ws, transform))
    return batches


def w_spec(folder: Path, generator: StyleGenerator) -> WSpec:
    """The manifest's ``[w]`` table (docs/bundle.md) for the files written in ``folder``."""
    transform = generator.transform
    return WSpec(
        mapping=folder / MAPPING_FILE,
        mapping_sha256=sha256_of(folder / MAPPING_FILE),
        w_dim=generator.w_dim,
        num_ws=generator.num_ws,
        c_dim=generator.c_dim,
        average=folder / AVERAGE_FILE,
        average_sha256=sha256_of(folder / AVERAGE_FILE),
        transform=None if transform is None else tuple(map(tuple, transform.tolist())),
    )


def _provenance(path: Path, network: PickledModule, family: str, license: str) -> Provenance:
    """The pickle by name and sha256, the licence as the user states it, and the sha256 of
    the training code's source per class: enough to tell which code trained the weights,
    without carrying (or ever running) that code."""
    sources = ", ".join(f"{name}={sha}" for name, sha in network.sources().items())
    return Provenance(
        source=path.name,
        license=license,
        source_sha256=sha256_of(path),
        notes=f"{family} generator ({NETWORK_KEY} of the training snapshot), rebuilt in this "
        f"project's own code and exported to ONNX; module_src sha256: {sources}",
    )
