"""Export a trained refinement stage from its run folder into a *stage folder*.

A stage folder is the unit ``installation export assemble`` stacks onto a bundle: the ONNX
file, verified against torch, a ``stage.toml`` whose ``[stage]`` table is exactly the
``[[stages]]`` entry a bundle manifest needs and whose ``[provenance]`` says where the weights
come from, and ``NAME.training.md``, the training report written from the run's own history (data,
steps, wall time, losses and held-out figures per epoch, which epoch was exported and why), so
the numbers in it are never typed in by hand. Any files named with ``include`` (a data licence
list, say) travel with it into the bundle. A run keeps the weights of its best epoch by each
figure (``best/<figure>.pt``); ``best_by`` exports one of those instead of the last epoch.

The refinement network is fully convolutional, but the runtime runs ONNX files of fixed image
sizes, so a stage is exported once per input size. A stage may therefore also be exported
again from an existing stage's ONNX file (``refine-256.onnx`` of the default bundle, trained for
64 px input, re-exported for a 256 px StyleGAN): its initializers carry the state-dict names,
so the torch module is rebuilt from them, proved equal to the file it came from at that file's
own size, and exported at the new one. No checkpoint has to ship for that.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import onnx
import torch
from onnx import numpy_helper

from export.bundle_writer import provenance_table, staged_bundle
from export.figures import FIGURES, best_epoch
from export.onnx_export import OPSET, export_onnx, verify_onnx
from export.refine import RefineGenerator
from export.run_record import best_path
from export.stage_config import RefineConfig
from export.toml_writer import dumps
from export.train_stage import load_run
from installation.engine.bundle import FORMAT, Provenance, StageSpec, sha256_of, stage_table
from installation.errors import UserError, first_line

STAGE_MANIFEST = "stage.toml"
REPORT = "{name}.training.md"
"""The training report's file name: named after the stage, so that the reports of several
stages can sit side by side in one bundle."""
INPUT_NAME = "image"
OUTPUT_NAME = "upscaled"


def export_stage(
    source: Path,
    out: Path,
    input_size: int,
    name: str,
    license: str,
    include: Sequence[Path] = (),
    force: bool = False,
    progress: Callable[[str], None] = print,
    best_by: str | None = None,
) -> Path:
    """Write the stage folder ``out`` for square ``input_size`` inputs; returns ``out``.
    ``source`` is a train-stage run folder (or its checkpoint) or a refinement stage's ONNX
    file. An empty ``name`` becomes ``refine-OUTPUTSIZE``. ``best_by`` (a figure) exports the
    run's best epoch by that figure; None, its last epoch."""
    exported: dict[str, Any] = {}
    if source.suffix == ".onnx":
        if best_by:
            raise UserError(f"{source}: --best-by needs a train-stage run, not an ONNX file")
        generator, state = generator_from_onnx(source, progress), None
    else:
        generator, state, exported = generator_from_run(source, best_by)
        epochs = len(state["history"])
        progress(f"exporting epoch {exported['epoch']} of {epochs}: {exported['why']}")
    config = generator.config
    generator.eval()
    output_size = input_size * config.scale
    name = name or f"refine-{output_size}"
    input_shape = (3, input_size, input_size)
    file, report = f"{name}.onnx", REPORT.format(name=name)
    # A stage re-exported from ONNX writes no report: the original's may come along.
    needed = (file, STAGE_MANIFEST) if state is None else (file, STAGE_MANIFEST, report)
    for extra in include:
        if not extra.is_file():
            raise UserError(f"{extra}: file to include not found")
        if extra.name in needed:
            raise UserError(f"{extra}: its name clashes with a file the stage folder needs")
    with staged_bundle(out, force) as folder:
        progress(f"exporting {file} ({input_size} -> {output_size} px, opset {OPSET})")
        export_onnx(generator, folder / file, input_shape, INPUT_NAME, OUTPUT_NAME)
        check = verify_onnx(generator, folder / file, input_shape, distribution="uniform")
        progress(f"max abs error {check.max_abs_error:.1e} over {check.count} images")
        spec = StageSpec(
            name=name,
            path=folder / file,
            sha256=sha256_of(folder / file),
            input_name=INPUT_NAME,
            input_shape=input_shape,
            output_name=OUTPUT_NAME,
            output_shape=(3, output_size, output_size),
            layout="NCHW",
            range=(-1.0, 1.0),
            input_layout="NCHW",
            input_range=(-1.0, 1.0),
        )
        if state is None:
            provenance = Provenance(
                source=f"re-exported from {source.name} (a refinement stage's ONNX file)",
                license=license,
                source_sha256=sha256_of(source),
                notes=f"refinement stage {config} exported at {input_size} px input from the "
                f"weights of {source.name}; its training report is that file's",
            )
        else:
            history = state["history"]
            step = history[-1]["step"] if history else 0
            provenance = Provenance(
                source=f"trained with installation export train-stage ({source.resolve()}, "
                f"{len(history)} epochs, {step} steps; exported epoch {exported['epoch']}, "
                f"{exported['why']})",
                license=license,
                notes=f"refinement stage {config} exported at {input_size} px input; "
                f"training report in {report}",
            )
            text = training_report(state, name, file, exported)
            (folder / report).write_text(text, encoding="utf-8")
        (folder / STAGE_MANIFEST).write_text(
            dumps(stage_document(folder, spec, provenance)), encoding="utf-8"
        )
        for extra in include:
            shutil.copyfile(extra, folder / extra.name)
    return out


def generator_from_onnx(path: Path, progress: Callable[[str], None] = print) -> RefineGenerator:
    """The refinement generator whose weights ``path`` holds, proved to compute what the file
    computes (at the file's own input size) before it is exported at another."""
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        model = onnx.load(str(path))
    except Exception as error:  # onnx raises DecodeError, OSError, ... for a bad file
        raise UserError(f"{path}: not a readable ONNX file ({type(error).__name__})") from None
    weights = {
        item.name: torch.from_numpy(numpy_helper.to_array(item).copy())
        for item in model.graph.initializer
    }
    try:
        config = RefineConfig(
            scale=math.isqrt(weights["tail.weight"].shape[0] // 3),
            width=weights["head.weight"].shape[0],
            blocks=len([key for key in weights if key.endswith(".conv1.weight")]),
        )
        generator = RefineGenerator(config)
        generator.load_state_dict(weights)
    except (KeyError, ValueError, RuntimeError) as error:
        why = f"no weight {error.args[0]}" if isinstance(error, KeyError) else first_line(error)
        raise UserError(
            f"{path}: not a refinement stage of this project (its weights do not fit "
            f"RefineGenerator: {why})"
        ) from None
    dims = model.graph.input[0].type.tensor_type.shape.dim
    shape = tuple(dim.dim_value for dim in dims[1:])
    if len(shape) != 3 or not all(shape):
        raise UserError(f"{path}: its input has no fixed [3, height, width] shape")
    progress(f"rebuilt {config} from {path.name}; checking it against the file at {shape}")
    verify_onnx(generator, path, shape, distribution="uniform")
    return generator


def stage_document(folder: Path, spec: StageSpec, provenance: Provenance) -> dict[str, Any]:
    """``stage.toml`` as a TOML document: the stage's ``[[stages]]`` table as ``[stage]``."""
    return {
        "format": FORMAT,
        "stage": stage_table(spec, folder),
        "provenance": provenance_table(provenance),
    }


def generator_from_run(
    source: Path, best_by: str | None
) -> tuple[RefineGenerator, dict[str, Any], dict[str, Any]]:
    """The generator of a run's last epoch, or of its best by the figure ``best_by``; the
    run's checkpoint; and which epoch that is and why ({"epoch", "why"})."""
    state = load_run(source)
    generator = RefineGenerator(RefineConfig.from_dict(state["config"]))
    exported = {"epoch": len(state["history"]), "why": "the last epoch"}
    weights = state["generator"]
    if best_by:
        kept = best_weights(source, state, best_by)
        why = f"the best by {best_by} ({best_by} {kept['value']:.4g})"
        exported = {"epoch": kept["epoch"], "why": why}
        weights = kept["generator"]
    generator.load_state_dict(weights)
    return generator, state, exported


def best_weights(source: Path, state: dict[str, Any], figure: str) -> dict[str, Any]:
    """``best/<figure>.pt`` of the run ``source``, checked against the run's history: the
    epoch it holds must be the one ``best_epoch`` picks."""
    if figure not in FIGURES:
        raise UserError(f"--best-by {figure}: not a figure; choose one of {', '.join(FIGURES)}")
    path = best_path(source if source.is_dir() else source.parent, figure)
    if not path.is_file():
        raise UserError(
            f"{path}: no weights kept for --best-by {figure} (a run from before held-out "
            "figures keeps none, and a run without a base bundle has no faces figure)"
        )
    try:
        kept = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for damaged files
        raise UserError(f"{path}: not a readable weights file: {first_line(error)}") from None
    wanted = best_epoch(state["history"], figure)["epoch"]
    if kept.get("epoch") != wanted:
        raise UserError(
            f"{path}: holds epoch {kept.get('epoch')}, but the checkpoint's history says the "
            f"best by {figure} is epoch {wanted}; run train-stage again to finish the epoch"
        )
    return kept


def training_report(
    state: dict[str, Any], name: str, file: str, exported: dict[str, Any] | None = None
) -> str:
    """The markdown report of a run, from its checkpoint alone: data, held-out photographs,
    baselines, losses and figures per epoch, the epoch exported (``exported``: "epoch" and
    "why"; None, the last) and the best epoch by each figure."""
    config = RefineConfig.from_dict(state["config"])
    options = state["options"]
    history = state["history"]
    data = state.get("data", {})
    run = data.get("run")
    seconds = sum(epoch["seconds"] for epoch in history)
    judging = sum(epoch.get("figures_seconds", 0.0) for epoch in history)
    exported = exported or {"epoch": len(history), "why": "the last epoch"}
    lines = [
        f"# Training report: {name} ({file})",
        "",
        f"- Architecture: residual refinement generator, {config}",
        f"- Options: {', '.join(f'{key}={value}' for key, value in options.items())}",
        f"- Device: {data.get('device', 'unknown')}",
        f"- Images ({len(data.get('images', []))}): {', '.join(data.get('images', []))}",
    ]
    if run is not None:
        lines.append(
            f"- Held out ({run['holdout_source']}), never trained on "
            f"({len(run['holdout'])}): {', '.join(run['holdout'])}"
        )
    lines += [
        f"- Skipped: {', '.join(data.get('skipped', [])) or 'none'}",
        f"- Epochs: {len(history)}, steps: {history[-1]['step'] if history else 0}, "
        f"batch {options['batch']} crops of {options['crop']} px",
        f"- Wall time: {seconds / 60:.1f} min training, {judging / 60:.1f} min figures",
        f"- Exported: epoch {exported['epoch']}, {exported['why']}",
    ]
    if run is None:
        lines += [
            "",
            "| epoch | step | reconstruction (L1, -1..1 scale) | adversarial | discriminator | s |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {e['epoch']} | {e['step']} | {e['reconstruction']:.4f} | {e['adversarial']:.4f} "
            f"| {e['discriminator']:.4f} | {e['seconds']:.0f} |"
            for e in history
        ]
        return "\n".join(lines) + "\n"
    return "\n".join(lines + _figures_section(run, data["baselines"], history)) + "\n"


def _figures_section(
    run: dict[str, Any], baselines: dict[str, Any], history: list[dict[str, Any]]
) -> list[str]:
    """The report's held-out figures: baselines, every epoch, the best epoch by each."""
    base = run["base"]
    chain = (
        f"{len(run['eval_seeds'])} fixed seeds drawn by {base['name']} ({base['bundle']}, "
        f"{base['stages']} stage(s), {base['size']} px), then this stage"
        if base
        else f"the first {len(run['eval_seeds'])} held-out inputs (no base bundle: no faces)"
    )
    lines = [
        "",
        "## Held-out figures",
        "",
        f"PSNR and SSIM on tiles of {run['tile']} px cut from the held-out photographs, each "
        f"degraded {run['repeats']} times as in training; sharpness (high-frequency energy "
        "over that of those tiles, 1.0 = as detailed) and faces (share with exactly one "
        f"frontal face, OpenCV's Haar cascade) on {chain}.",
        "",
        "| baseline (the stage replaced by) | PSNR | SSIM | sharpness | faces |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {mode} | {values['psnr']:.2f} dB | {values['ssim']:.4f} | "
        f"{values['sharpness']:.3f} | {_faces(values)} |"
        for mode, values in baselines.items()
    ]
    lines += [
        "",
        "| epoch | step | L1 | adversarial | discriminator | PSNR | SSIM | sharpness | faces "
        "| s | figures s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {e['epoch']} | {e['step']} | {e['reconstruction']:.4f} | {e['adversarial']:.4f} "
        f"| {e['discriminator']:.4f} | {e['psnr']:.2f} dB | {e['ssim']:.4f} "
        f"| {e['sharpness']:.3f} | {_faces(e)} | {e['seconds']:.0f} | {e['figures_seconds']:.1f} |"
        for e in history
    ]
    lines += ["", "| figure | best epoch | value |", "|---|---:|---:|"]
    for figure in FIGURES:
        best = best_epoch(history, figure)
        value = "-" if best[figure] is None else f"{best[figure]:.4g}"
        lines.append(f"| {figure} | {best['epoch']} | {value} |")
    return lines


def _faces(figures: dict[str, Any]) -> str:
    """Faces found as "k/N", or "-" where there is no faces figure."""
    if figures.get("faces") is None:
        return "-"
    return f"{figures['faces_found']}/{figures['faces_of']}"
