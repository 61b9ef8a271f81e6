"""Read a folder of photographs for training, skipping what is not a usable image and saying
which files were skipped and why, so an artist knows what their stage was trained on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from installation.errors import UserError

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class ImageSet:
    """Images as (3, H, W) uint8 tensors, their file names, and the files skipped with why."""

    images: list[torch.Tensor]
    names: list[str]
    skipped: list[str]


def load_images(folder: Path, min_size: int) -> ImageSet:
    """Every readable image in ``folder`` (not recursive) at least ``min_size`` px on both
    sides, as RGB (grey and alpha images are converted). Raises ``UserError`` naming the
    folder and the skipped files when none is usable."""
    if not folder.is_dir():
        raise UserError(f"{folder}: image folder not found")
    images: list[torch.Tensor] = []
    names: list[str] = []
    skipped: list[str] = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        reason = _skip_reason(path, min_size)
        if isinstance(reason, str):
            skipped.append(f"{path.name} ({reason})")
            continue
        images.append(reason)
        names.append(path.name)
    if not images:
        detail = f"; skipped: {', '.join(skipped)}" if skipped else ""
        raise UserError(
            f"{folder}: no usable training images (need {', '.join(SUFFIXES)} files of at "
            f"least {min_size}x{min_size} px){detail}"
        )
    return ImageSet(images, names, skipped)


def _skip_reason(path: Path, min_size: int) -> torch.Tensor | str:
    """The image as a tensor, or why it is skipped."""
    if path.suffix.lower() not in SUFFIXES:
        return "not an image file"
    try:
        with Image.open(path) as opened:
            pixels = np.asarray(opened.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as error:
        return f"unreadable: {error}"
    height, width = pixels.shape[:2]
    if height < min_size or width < min_size:
        return f"{width}x{height}, smaller than {min_size}x{min_size}"
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1)
