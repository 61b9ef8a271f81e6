"""The ``installation export`` subcommands, registered into the runtime's command line.

This module imports nothing heavy: the runtime builds its whole parser on every start, on
machines without torch, so torch and ONNX are imported only when an export actually runs.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from export.stage_config import DEFAULT_BASE, FIGURES, NO_BASE, RefineConfig, TrainOptions
from installation.errors import UserError

DEFAULT_NAME = "dcgan-digiface-64"
_progress = functools.partial(print, flush=True)
"""Progress lines as they happen: exports run for minutes, often with output to a log."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``export`` subcommands to ``subparsers`` (those of ``installation export``).

    Each sets ``func``: it takes the parsed namespace, returns the exit code and raises
    ``UserError`` for anything the user can fix.
    """
    dcgan = subparsers.add_parser(
        "dcgan",
        help="import the gan-face-generate DCGAN face generator into a bundle",
        description="Import the DCGAN face generator of the gan-face-generate package (PyPI) "
        "into a one-stage bundle: load its weights, export them to ONNX, verify ONNX Runtime "
        "against torch, and write the bundle with its licence and provenance.",
    )
    dcgan.add_argument(
        "weights",
        type=Path,
        metavar="WEIGHTS",
        help="the package's wheel (gan_face_generate-1.1.1-py3-none-any.whl from PyPI, "
        "preferred: it carries the licence) or the weights.tar inside it",
    )
    dcgan.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="bundle folder to write"
    )
    dcgan.add_argument(
        "--name", default=DEFAULT_NAME, help="bundle name shown in logs (default: %(default)s)"
    )
    _add_seed_and_force(dcgan)
    dcgan.set_defaults(func=_dcgan)
    _register_stylegan(subparsers)
    _register_train_stage(subparsers)
    _register_stage_and_assemble(subparsers)
    _register_compare(subparsers)


def _add_seed_and_force(parser: argparse.ArgumentParser) -> None:
    """The options every importer shares: the verification seed and overwriting."""
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of the random latents that verify the export (default: %(default)s)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty DIR, replacing the bundle's files there",
    )


def _add_license(parser: argparse.ArgumentParser) -> None:
    """The licence a user states for weights we cannot know the terms of (kept in provenance)."""
    parser.add_argument(
        "--license",
        required=True,
        help="the weights' licence and the training data's terms, as the manifest states them",
    )


def _register_stylegan(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stylegan = subparsers.add_parser(
        "stylegan",
        help="import a StyleGAN2(-ADA) or StyleGAN3 training pickle into a W-space bundle",
        description="Read G_ema of a StyleGAN2-ADA or StyleGAN3 snapshot (.pkl) as data, "
        "never running the code it carries; rebuild it in this project's own generator code; "
        "export mapping.onnx (z -> w) and synthesis.onnx (ws -> image), verify ONNX Runtime "
        "against torch, and write a bundle that morphs in W (docs/stylegan.md).",
    )
    stylegan.add_argument("pickle", type=Path, metavar="PKL", help="the training snapshot")
    stylegan.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="bundle folder to write"
    )
    stylegan.add_argument("--name", default="", help="bundle name (default: the pickle's name)")
    _add_license(stylegan)
    _add_seed_and_force(stylegan)
    stylegan.set_defaults(func=_stylegan)


def _register_train_stage(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    train = subparsers.add_parser(
        "train-stage",
        help="train a refinement stage (e.g. 64->256 px) on a folder of photographs",
        description="Train a refinement stage that draws an image again at --scale times its "
        "size: random crops of the photographs, degraded the way the previous stage's output "
        "looks, L1 reconstruction plus an adversarial loss. After every epoch it judges the "
        "stage on held-out photographs (PSNR, SSIM) and on fixed seeds of the base bundle "
        "(sharpness, faces), and writes checkpoint.pt, history.json/.csv, samples/, sheets/ "
        "and best/ into --out; run the same command again to resume.",
    )
    train.add_argument("--images", type=Path, required=True, metavar="DIR", help="photographs")
    train.add_argument("--out", type=Path, required=True, metavar="RUN", help="run folder")
    defaults_c, defaults_t = RefineConfig(), TrainOptions()
    for flag, default, kind, text in (
        ("--scale", defaults_c.scale, int, "upscaling factor"),
        ("--width", defaults_c.width, int, "generator channels"),
        ("--blocks", defaults_c.blocks, int, "generator residual blocks"),
        ("--disc-width", defaults_c.disc_width, int, "discriminator channels (first layer)"),
        ("--crop", defaults_t.crop, int, "size of the large training crops in px"),
        ("--batch", defaults_t.batch, int, "crops per step"),
        ("--epochs", defaults_t.epochs, int, "epochs to reach (raise it to train on)"),
        ("--steps-per-epoch", defaults_t.steps_per_epoch, int, "steps between checkpoints"),
        ("--lr", defaults_t.lr, float, "Adam learning rate"),
        ("--adversarial-weight", defaults_t.adversarial_weight, float, "weight of the GAN loss"),
        ("--gan-after", defaults_t.gan_after, int, "steps of L1 only before the GAN loss"),
        ("--seed", defaults_t.seed, int, "seed of initial weights, crops and held-out share"),
        ("--holdout-share", defaults_t.holdout_share, float, "share of --images held out"),
        ("--base-stages", defaults_t.base_stages, int, "stages of --base that draw the seeds"),
        ("--eval-seeds", defaults_t.eval_seeds, int, "fixed seeds judged every epoch"),
    ):
        train.add_argument(flag, type=kind, default=default, help=f"{text} (default: %(default)s)")
    train.add_argument(
        "--holdout",
        type=Path,
        metavar="DIR",
        help="photographs never trained on, for the figures (default: a share of --images)",
    )
    train.add_argument(
        "--base",
        default=DEFAULT_BASE,
        metavar="BUNDLE",
        help=f"bundle whose first --base-stages stages draw the fixed seeds the stage refines "
        f"for sharpness and faces, or {NO_BASE!r} (default: the repository's faces-256)",
    )
    train.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: %(default)s"
    )
    train.add_argument(
        "--threads", type=int, default=0, metavar="N", help="CPU threads (default: torch's)"
    )
    train.set_defaults(func=_train_stage)


def _register_stage_and_assemble(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    stage = subparsers.add_parser(
        "stage",
        help="export a trained refinement stage (a train-stage run) into a stage folder",
        description="Export the generator of a train-stage run, or of an existing stage's "
        "ONNX file (to use it at another input size), to ONNX for square inputs of "
        "--input-size px, verify ONNX Runtime against torch, and write a stage folder (ONNX, "
        "stage.toml, NAME.training.md for a run) for `installation export assemble`.",
    )
    stage.add_argument(
        "run",
        type=Path,
        metavar="SOURCE",
        help="train-stage --out folder, or a refinement stage's .onnx file "
        "(e.g. bundles/faces-256/refine-256.onnx)",
    )
    stage.add_argument("--out", type=Path, required=True, metavar="DIR", help="stage folder")
    stage.add_argument(
        "--input-size",
        type=int,
        required=True,
        metavar="PX",
        help="e.g. 64 for 64->256, 256 after a 256 px StyleGAN",
    )
    stage.add_argument("--name", default=None, help="stage name (default: refine-OUTPUTSIZE)")
    _add_license(stage)
    stage.add_argument(
        "--include",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a file to carry along, e.g. the list of training photographs and their licences",
    )
    stage.add_argument(
        "--best-by",
        choices=FIGURES,
        metavar="FIGURE",
        help=f"export the epoch best by this figure ({', '.join(FIGURES)}) instead of the last",
    )
    stage.add_argument("--force", action="store_true", help="overwrite files in DIR")
    stage.set_defaults(func=_stage)

    assemble = subparsers.add_parser(
        "assemble",
        help="stack stage folders onto a bundle into a new bundle",
        description="Write a bundle whose stages are BASE's followed by each STAGE folder's, "
        "after checking that every stage's input fits the output before it.",
    )
    assemble.add_argument("base", type=Path, metavar="BASE", help="the bundle to start from")
    assemble.add_argument(
        "stages", type=Path, nargs="+", metavar="STAGE", help="stage folders, in order"
    )
    assemble.add_argument("--out", type=Path, required=True, metavar="DIR", help="new bundle")
    assemble.add_argument("--name", required=True, help="bundle name shown in logs")
    assemble.add_argument("--description", default="", help="one line (default: the sizes)")
    assemble.add_argument("--force", action="store_true", help="overwrite files in DIR")
    assemble.set_defaults(func=_assemble)


def _require_workshop() -> None:
    """The exhibition PC has no torch: say how to get the workshop side, not a traceback."""
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise UserError(
            f"installation export needs torch and onnx ({exc.name} is missing): "
            "pip install -e '.[export]'"
        ) from None


def _dcgan(args: argparse.Namespace) -> int:
    _require_workshop()
    from export.dcgan_import import import_dcgan

    bundle = import_dcgan(
        args.weights,
        args.out,
        args.name,
        seed=args.seed,
        force=args.force,
        progress=_progress,
    )
    print(f"bundle written to {bundle.path}")
    return 0


def _stylegan(args: argparse.Namespace) -> int:
    _require_workshop()
    from export.stylegan_export import export_stylegan

    if not args.license.strip():
        raise UserError('--license must say the weights\' licence, e.g. "CC BY 4.0"')
    bundle = export_stylegan(
        args.pickle,
        args.out,
        args.name or args.pickle.stem,
        license=args.license,
        seed=args.seed,
        force=args.force,
        progress=_progress,
    )
    print(f"bundle written to {bundle.path}")
    return 0


def _train_stage(args: argparse.Namespace) -> int:
    _require_workshop()
    import torch

    from export.train_stage import train_stage

    positive = ("scale", "width", "blocks", "disc_width", "crop", "batch", "epochs", "lr")
    for name in (*positive, "base_stages", "eval_seeds"):
        if not getattr(args, name) > 0:
            raise UserError(f"--{name.replace('_', '-')} must be positive")
    if not 0 < args.holdout_share < 1:
        raise UserError(f"--holdout-share must be between 0 and 1, got {args.holdout_share}")
    if args.scale < 2:
        raise UserError(f"--scale must be at least 2, got {args.scale}")
    if args.steps_per_epoch < 1 or args.gan_after < 0 or args.adversarial_weight < 0:
        raise UserError(
            "--steps-per-epoch must be positive, --gan-after and --adversarial-weight not negative"
        )
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: torch sees no CUDA GPU on this machine")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    config = RefineConfig(args.scale, args.width, args.blocks, args.disc_width)
    options = TrainOptions(
        crop=args.crop,
        batch=args.batch,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        lr=args.lr,
        adversarial_weight=args.adversarial_weight,
        gan_after=args.gan_after,
        seed=args.seed,
        holdout=str(args.holdout.resolve()) if args.holdout else "",
        holdout_share=args.holdout_share,
        base=args.base if args.base == NO_BASE else str(Path(args.base).resolve()),
        base_stages=args.base_stages,
        eval_seeds=args.eval_seeds,
    )
    print(f"training {config} with {options} on {device}", flush=True)
    train_stage(args.images, args.out, config, options, device, _progress)
    print(f"run written to {args.out}")
    return 0


def _stage(args: argparse.Namespace) -> int:
    _require_workshop()
    from export.stage_export import export_stage

    if args.input_size < 1:
        raise UserError(f"--input-size must be positive, got {args.input_size}")
    out = export_stage(
        args.run,
        args.out,
        args.input_size,
        name=args.name or "",
        license=args.license,
        include=args.include,
        force=args.force,
        progress=_progress,
        best_by=args.best_by,
    )
    print(f"stage folder written to {out}")
    return 0


def _assemble(args: argparse.Namespace) -> int:
    _require_workshop()
    from export.assemble import assemble

    bundle = assemble(args.base, args.stages, args.out, args.name, args.description, args.force)
    sizes = " -> ".join(f"{stage.name} {stage.output_size[0]}px" for stage in bundle.stages)
    print(f"bundle written to {bundle.path}: {sizes}")
    return 0


def _register_compare(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    compare = subparsers.add_parser(
        "compare",
        help="compare train-stage runs: figures table, plots over epochs, side-by-side sheet",
        description="Read each RUN's history.json and write into DIR: figures.md, .csv and "
        ".json (every run's held-out figures at its best and last epoch, ranked only among "
        "runs measured on the same data), figures.png/.svg (every figure over epochs) and "
        "side-by-side.png (the evaluation seeds at each run's best epoch).",
    )
    compare.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="train-stage runs")
    compare.add_argument("--out", type=Path, required=True, metavar="DIR", help="report folder")
    compare.add_argument(
        "--best-by",
        choices=FIGURES,
        default="psnr",
        help="figure that picks each run's best epoch (default: %(default)s)",
    )
    compare.add_argument("--force", action="store_true", help="overwrite files in DIR")
    compare.set_defaults(func=_compare)


def _compare(args: argparse.Namespace) -> int:
    _require_workshop()
    from export.compare import compare

    print(compare(args.runs, args.out, args.best_by, args.force))
    print(f"comparison written to {args.out}")
    return 0
