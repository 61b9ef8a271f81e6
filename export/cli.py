"""The ``installation export`` subcommands, registered into the runtime's command line.

This module imports nothing heavy: the runtime builds its whole parser on every start, on
machines without torch, so torch and ONNX are imported only when an export actually runs.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from installation.errors import UserError

DEFAULT_NAME = "dcgan-digiface-64"


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
    dcgan.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of the random latents that verify the export (default: %(default)s)",
    )
    dcgan.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty DIR, replacing the bundle's files there",
    )
    dcgan.set_defaults(func=_dcgan)


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
        progress=functools.partial(print, flush=True),
    )
    print(f"bundle written to {bundle.path}")
    return 0
