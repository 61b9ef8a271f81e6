"""Read a folder of photographs for training, skipping what is not a usable image and saying
which files were skipped and why, so an artist knows what their stage was trained on; and set
a seeded share of them aside, never trained on, for the figures that judge every epoch."""

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


def split_holdout(
    dataset: ImageSet, folder: Path, share: float, seed: int
) -> tuple[ImageSet, ImageSet]:
    """(training, held out): ``share`` of the images (at least one), chosen by file name with
    a generator seeded by ``seed``, so the same command holds out the same photographs
    whatever order the folder lists them in. Raises ``UserError`` when none would be left
    to train on."""
    count = max(1, round(share * len(dataset.names)))
    if count >= len(dataset.names):
        raise UserError(
            f"{folder}: holding out {count} of its {len(dataset.names)} usable images "
            f"(--holdout-share {share}) leaves none to train on; add photographs, lower "
            "--holdout-share or give a separate --holdout folder"
        )
    order = torch.randperm(len(dataset.names), generator=torch.Generator().manual_seed(seed))
    held = sorted(order[:count].tolist())
    kept = [index for index in range(len(dataset.names)) if index not in held]

    def subset(indices: list[int], skipped: list[str]) -> ImageSet:
        images = [dataset.images[i] for i in indices]
        return ImageSet(images, [dataset.names[i] for i in indices], skipped)

    return subset(kept, dataset.skipped), subset(held, [])


def shared_images(images: ImageSet, others: ImageSet) -> list[str]:
    """The names of ``images`` whose pixels are those of one of ``others``: a held-out
    folder must not hold a photograph that is also trained on, whatever its file name."""
    return [
        name
        for name, image in zip(images.names, images.images, strict=True)
        if any(image.shape == other.shape and torch.equal(image, other) for other in others.images)
    ]


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
