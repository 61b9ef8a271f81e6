"""Turn the gan-face-generate DCGAN weights into a one-stage bundle, checked end to end.

The steps are the whole promise of the workshop side: load the weights safely, rebuild the
generator in our own code, export it to ONNX, prove ONNX Runtime agrees with torch, and write
a bundle whose provenance says exactly what was imported, under which licence.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from export.bundle_writer import placed_bundle, staged_bundle, write_manifest
from export.checkpoint import PACKAGE, STATE_KEY, Checkpoint, load_checkpoint
from export.dcgan import IMAGE_SIZE, DCGANGenerator, generator_from_state_dict
from export.onnx_export import OPSET, export_onnx, verify_onnx
from installation.engine.bundle import Bundle, Provenance, StageSpec, sha256_of
from installation.errors import UserError

STAGE_FILE = "generator.onnx"
LICENSE_FILE = f"LICENSE.{PACKAGE}.txt"
HOMEPAGE = "https://github.com/chien-liu/DCGAN-PyTorch"


def import_dcgan(
    weights: Path,
    out: Path,
    name: str,
    seed: int = 0,
    force: bool = False,
    progress: Callable[[str], None] = print,
) -> Bundle:
    """Import ``weights`` (the package's .whl or its weights.tar) into the bundle folder
    ``out``; ``seed`` draws the latents that verify the export. Returns the checked bundle."""
    with staged_bundle(out, force) as folder:
        progress(f"loading {weights}")
        checkpoint = load_checkpoint(weights)
        model = _generator(checkpoint)
        input_shape = (model.nz, 1, 1)
        onnx_path = folder / STAGE_FILE
        progress(f"exporting {STAGE_FILE} (nz={model.nz}, ngf={model.ngf}, opset {OPSET})")
        export_onnx(model, onnx_path, input_shape)
        progress("verifying with ONNX Runtime against torch")
        result = verify_onnx(model, onnx_path, input_shape, seed=seed)
        progress(f"max abs error {result.max_abs_error:.1e} over {result.count} latents")
        progress(f"writing {out}")
        write_manifest(
            folder,
            name=name,
            description=_description(checkpoint),
            latent_size=model.nz,
            distribution="normal",
            provenance=_provenance(checkpoint, model),
            stages=[
                StageSpec(
                    name="generator",
                    path=onnx_path,
                    sha256=sha256_of(onnx_path),
                    input_name="z",
                    input_shape=input_shape,
                    output_name="image",
                    output_shape=(model.nc, IMAGE_SIZE, IMAGE_SIZE),
                    layout="NCHW",
                    range=(-1.0, 1.0),
                )
            ],
            license_text=checkpoint.license_text,
            out=out,
        )
    return placed_bundle(out)


def _generator(checkpoint: Checkpoint) -> DCGANGenerator:
    try:
        model = generator_from_state_dict(checkpoint.state_dict)
    except ValueError as error:
        raise UserError(f"{checkpoint.label}: {error}") from None
    if model.nc != 3:
        raise UserError(f"{checkpoint.label}: the generator draws {model.nc} channels, not RGB")
    return model


def _description(checkpoint: Checkpoint) -> str:
    origin = f" ({PACKAGE} {checkpoint.version})" if checkpoint.version else ""
    return f"{IMAGE_SIZE}x{IMAGE_SIZE} faces from a DCGAN trained on DigiFace-1M{origin}"


def _provenance(checkpoint: Checkpoint, model: DCGANGenerator) -> Provenance:
    """What was imported, precisely enough to fetch and check it again."""
    architecture = (
        f"DCGAN generator of PyTorch's DCGAN tutorial (nz={model.nz}, ngf={model.ngf}, "
        f"nc={model.nc}; {IMAGE_SIZE}x{IMAGE_SIZE} RGB, tanh output in -1..1)"
    )
    training = f"trained on the synthetic DigiFace-1M faces by Chien Liu ({HOMEPAGE})"
    if checkpoint.member is None:
        return Provenance(
            source=f"{checkpoint.path.name}, key {STATE_KEY} (a bare checkpoint in the "
            f"{PACKAGE} format)",
            license="MIT",
            source_sha256=checkpoint.sha256,
            notes=f"{architecture}. Imported from a bare checkpoint, presumably {PACKAGE}'s "
            f"weights, {training}; their MIT licence is assumed, and no licence file was "
            "available: import the wheel to carry it.",
        )
    return Provenance(
        source=f"{PACKAGE} {checkpoint.version} from PyPI ({checkpoint.path.name}), "
        f"file {checkpoint.member}, key {STATE_KEY}",
        license="MIT",
        url=f"https://pypi.org/project/{PACKAGE}/{checkpoint.version}/",
        version=checkpoint.version or "",
        license_file=LICENSE_FILE,
        source_sha256=checkpoint.sha256,
        notes=f"{architecture}, {training}.",
    )
