"""The figures that say whether a refinement stage got better, on data its run never trains on.

A GAN's losses do not say whether the pictures improved, so runs are compared on four figures,
computed every epoch and by ``benchmarks/refine_psnr.py`` with the same code:

- ``psnr`` and ``ssim``: held-out photographs cut into tiles of the stage's output size
  (overlapping by half), each degraded ``repeats`` times exactly as in training
  (``export.degrade``, from a generator seeded once, so every epoch and every run sees the same
  inputs), brought back up by the stage and compared, rounded to 8 bits as the screen shows
  them, with the original tile. Bilinear and bicubic interpolation of the same inputs are the
  baselines.
- ``sharpness``: the high-frequency energy of the chain's outputs over that of the held-out
  tiles (``high_frequency_energy``). 1.0 is as detailed as the photographs; a blurry stage
  falls below, noise and ringing rise above, so only closeness to 1 counts as merit.
- ``faces``: the share of fixed-seed chain outputs in which OpenCV's bundled Haar cascade finds
  exactly one frontal face, so a run drifting away from faces shows it in a number.

Everything takes NCHW images in 0..1 (or uint8 0..255 where it says so) and rounds to 8 bits
before measuring; a NaN pixel counts as black, so a diverged run gets poor, finite figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from export.degrade import degrade, gaussian_blur
from export.image_folder import ImageSet
from export.stage_config import FIGURES
from installation.errors import UserError

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
PEAK = 255.0

DETAIL_SIGMAS = (1.0, 2.0)
"""Gaussian blurs that split an image's detail into octaves: what sigma 1 px takes away is
the finest octave (periods under about 5 px), what sigma 2 px takes away beyond that the
next one."""

CASCADE = "haarcascade_frontalface_default.xml"
FACE_NEIGHBOURS = 5
FACE_MIN_SHARE = 0.25
FACE_PAD = 0.125
OPENCV_MISSING = (
    "the face figure needs OpenCV 4: pip install -e '.[export]' "
    "(the export extra brings opencv-python-headless>=4.8,<5)"
)


def merit(figure: str, value: float | None) -> float:
    """How good ``value`` of ``figure`` is, higher is better, so any figure ranks epochs and runs
    the same way: psnr, ssim and faces as they are; sharpness by its distance from 1 in log
    terms (half as sharp and twice as sharp as the photographs rank alike). A missing or NaN
    value ranks below everything."""
    if figure not in FIGURES:
        raise ValueError(f"unknown figure {figure!r}; known: {', '.join(FIGURES)}")
    if value is None or math.isnan(value):
        return -math.inf
    if figure == "sharpness":
        return -abs(math.log(max(value, 1e-6)))
    return float(value)


def best_epoch(epochs: list[dict[str, Any]], figure: str) -> dict[str, Any]:
    """The epoch record (a ``history.json`` epoch) with the highest merit of ``figure``; on a
    tie the later epoch, which has trained longer for the same figure."""
    if not epochs:
        raise ValueError("no epochs to choose from")
    return max(reversed(epochs), key=lambda record: merit(figure, record.get(figure)))


def to_8bit(images: torch.Tensor | np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Images as floats (``dtype``) holding the 8-bit values the screen would show: uint8 as
    they are, floats in 0..1 clipped and rounded (NaN as 0)."""
    images = torch.as_tensor(images).detach().cpu()
    if images.dtype == torch.uint8:
        return images.to(dtype)
    return torch.round(torch.nan_to_num(images.to(dtype), nan=0.0).clamp(0, 1) * PEAK)


def psnr(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """PSNR in dB of two images (C, H, W), or the mean over a batch (N, C, H, W) of each pair's
    PSNR, after rounding both to 8 bits. Identical images give infinity."""
    return float(_psnr_each(*_batches(a, b)).mean())


def ssim(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """SSIM (Wang, Bovik, Sheikh and Simoncelli 2004) of two images (C, H, W), or the mean over
    a batch, after rounding both to 8 bits: an 11 px Gaussian window of sigma 1.5 over the
    valid area (no padding), K1 0.01, K2 0.03, dynamic range 255, each channel measured alone
    and the maps averaged."""
    return float(_ssim_each(*_batches(a, b)).mean())


def _batches(
    a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    a8, b8 = to_8bit(a), to_8bit(b)
    if a8.shape != b8.shape:
        raise ValueError(f"images differ in shape: {tuple(a8.shape)} and {tuple(b8.shape)}")
    return (a8[None], b8[None]) if a8.dim() == 3 else (a8, b8)


def _psnr_each(a8: torch.Tensor, b8: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR of (N, C, H, W) 8-bit values."""
    mse = ((a8 - b8) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(PEAK**2 / mse)


def _ssim_each(a8: torch.Tensor, b8: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM of (N, C, H, W) 8-bit values.

    The five local means (of a, b, a², b², ab) are one depthwise float32 convolution, about
    ten times faster on a CPU than float64; each plane of ``a`` is first centred on its own
    mean, and ``b``'s plane on the same value, which leaves variances and covariance unchanged
    and keeps the squares small, so float32's rounding stays far below the constant K2 adds
    (58.5): within 1e-4 of float64 throughout."""
    count, channels, height, width = a8.shape
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW} px, got {width}x{height}")
    centre = a8.mean((2, 3), keepdim=True)
    a, b = (a8 - centre).float(), (b8 - centre).float()
    moments = torch.stack([a, b, a * a, b * b, a * b], 2).reshape(1, -1, height, width)
    planes = moments.shape[1]
    kernel = _gaussian_window().view(1, 1, SSIM_WINDOW, SSIM_WINDOW).expand(planes, 1, -1, -1)
    local = F.conv2d(moments, kernel, groups=planes).double()
    mu_a, mu_b, sq_a, sq_b, ab = local.reshape(count, channels, 5, *local.shape[-2:]).unbind(2)
    var_a, var_b, cov = sq_a - mu_a**2, sq_b - mu_b**2, ab - mu_a * mu_b
    mu_a, mu_b = mu_a + centre, mu_b + centre
    c1, c2 = (SSIM_K1 * PEAK) ** 2, (SSIM_K2 * PEAK) ** 2
    luminance = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)
    structure = (2 * cov + c2) / (var_a + var_b + c2)
    return (luminance * structure).reshape(count, -1).mean(1)


def _gaussian_window() -> torch.Tensor:
    """The normalised 11x11 Gaussian (sigma 1.5) of SSIM's local statistics, float32."""
    offsets = torch.arange(SSIM_WINDOW, dtype=torch.float64) - SSIM_WINDOW // 2
    line = torch.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
    window = line[:, None] * line[None, :]
    return (window / window.sum()).float()


@dataclass(frozen=True)
class HoldoutSet:
    """The held-out inputs and what the stage should draw from them, made once per run.

    ``tiles`` (N, 3, S, S) uint8 are the original tiles (8-bit already, as the files hold
    them; a quarter of the memory of floats); ``small`` (N, 3, S/scale, S/scale) float32 in 0..1
    their degraded versions, the stage's inputs; ``photo_of_tile[i]`` names the photograph
    tile ``i`` was cut from."""

    tiles: torch.Tensor
    small: torch.Tensor
    photo_of_tile: list[str]

    @property
    def photos(self) -> list[str]:
        """The photographs' names in the order their tiles come."""
        return list(dict.fromkeys(self.photo_of_tile))


def holdout_set(photos: ImageSet, size: int, scale: int, seed: int, repeats: int) -> HoldoutSet:
    """Every photograph cut into ``size`` px tiles overlapping by half, all its tiles taken
    ``repeats`` times (each time degraded differently), degraded with one generator seeded with
    ``seed``, photograph after photograph: the same inputs for every epoch and every run."""
    generator = torch.Generator().manual_seed(seed)
    tiles: list[torch.Tensor] = []
    small: list[torch.Tensor] = []
    names: list[str] = []
    for name, image in zip(photos.names, photos.images, strict=True):
        cut = image.unfold(1, size, size // 2).unfold(2, size, size // 2)
        cut = cut.permute(1, 2, 0, 3, 4).reshape(-1, 3, size, size).repeat(repeats, 1, 1, 1)
        tiles.append(cut)
        small.append(degrade(cut.float() / 255, scale, generator))
        names += [name] * len(cut)
    return HoldoutSet(torch.cat(tiles), torch.cat(small), names)


def upscale_figures(
    upscale: Callable[[torch.Tensor], torch.Tensor], holdout: HoldoutSet, batch: int = 16
) -> dict[str, dict[str, float]]:
    """PSNR and SSIM of ``upscale`` (0..1 NCHW small images -> 0..1 NCHW tiles) on the held-out
    set, ``batch`` tiles at a time: ``{"all": {"psnr": dB, "ssim": s}, photo: {...}, ...}``,
    each the mean over the tiles (every repeat counts once), photographs in their order."""
    scores: list[torch.Tensor] = []
    for start in range(0, len(holdout.tiles), batch):
        tiles = to_8bit(holdout.tiles[start : start + batch])
        output = to_8bit(upscale(holdout.small[start : start + batch]))
        if output.shape != tiles.shape:
            raise ValueError(
                f"upscaled images are {tuple(output.shape)}, the tiles {tuple(tiles.shape)}"
            )
        scores.append(torch.stack([_psnr_each(output, tiles), _ssim_each(output, tiles)], 1))
    table = torch.cat(scores)
    names = np.array(holdout.photo_of_tile)
    rows = {"all": table} | {name: table[names == name] for name in holdout.photos}
    return {
        key: {"psnr": float(row[:, 0].mean()), "ssim": float(row[:, 1].mean())}
        for key, row in rows.items()
    }


def baselines(holdout: HoldoutSet, batch: int = 16) -> dict[str, dict[str, dict[str, float]]]:
    """``upscale_figures`` of bilinear and bicubic interpolation (``{"bilinear": ...,
    "bicubic": ...}``, each with "all" and every photograph), the bars a stage must clear. They
    do not change as a stage trains, so a run computes them once."""
    scale = holdout.tiles.shape[-1] // holdout.small.shape[-1]
    return {
        mode: upscale_figures(
            lambda small, mode=mode: F.interpolate(small, scale_factor=scale, mode=mode),
            holdout,
            batch,
        )
        for mode in ("bilinear", "bicubic")
    }


def high_frequency_energy(images: torch.Tensor | np.ndarray) -> float:
    """The energy of the finest octave of detail of (N, 3, H, W) images (0..1, or uint8,
    rounded to 8 bits) over that of the octave below it, on their luma (Rec. 601 weights),
    pooled over the batch; 0 for images without detail.

    Relative to the image's own coarser detail, not absolute, so contrast counts far less
    and sets of photographs come out alike (the held-out and the training photographs of the
    default bundle within 5 % of each other, where the finest octave's absolute energy
    differs twofold), and faces can be held against them. Single photographs still differ
    (from 0.56 for brick to 4.4 for rocket), so sharpness compares only between runs judged
    on the same ones. A picture blown up from a smaller one lacks the finest octave (the
    default bundle's 64 px faces blown up bilinearly to 256 px: 0.14 relative to astronaut
    and coffee, 0.22 to brick and rocket); noise has too much of it (12 for uniform noise)."""
    rgb = to_8bit(images, torch.float32) / PEAK
    if rgb.dim() == 3:
        rgb = rgb[None]
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    # The pictures side by side as channels: a depthwise convolution, several times faster on
    # a CPU than the same blur over a batch of one-channel images.
    luma = (rgb * weights).sum(1)[None]
    fine_blur, coarse_blur = (gaussian_blur(luma, sigma) for sigma in DETAIL_SIGMAS)
    finest = float(((luma - fine_blur) ** 2).sum())
    below = float(((fine_blur - coarse_blur) ** 2).sum())
    return finest / below if below > 0 else 0.0


def sharpness(outputs: torch.Tensor | np.ndarray, reference: float) -> float:
    """High-frequency energy of ``outputs`` over ``reference``, that of the held-out tiles
    (``high_frequency_energy(holdout.tiles)``, measured once per run: the tiles do not
    change): 1.0 is as detailed as the photographs, below is blurrier, above is noisier."""
    if reference == 0:
        raise ValueError("the reference tiles have no detail at all (flat images)")
    return high_frequency_energy(outputs) / reference


class FaceDetector:
    """OpenCV's Haar frontal-face cascade (Viola-Jones, ``haarcascade_frontalface_default``),
    loaded once from the file inside the opencv-python-headless wheel: a detector that ships in
    a registry package, so nothing is downloaded, runs on a CPU in milliseconds, and is old and
    stable enough that its figure means the same next year. It finds upright, frontal faces,
    which is what the bundles draw; a face turned to the side does not count.

    Its settings are tuned on the default bundle's faces, which fill the frame (see
    ``frontal_faces``). OpenCV is imported here, not at module level, so the other figures
    work without it."""

    def __init__(self) -> None:
        cv2 = _opencv()
        path = Path(cv2.data.haarcascades) / CASCADE
        self._cv2 = cv2
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise UserError(f"{path}: OpenCV could not load its frontal-face cascade")

    def frontal_faces(self, images: torch.Tensor | np.ndarray) -> list[int]:
        """The number of frontal faces found in each (N, 3, H, W) image (0..1, or uint8).

        Each image is made grey and histogram-equalised (the cascade compares light and dark
        regions, so even contrast helps pale and dark faces alike) and its edges repeated
        outwards by an eighth of its size: a generated face fills the frame, and the
        cascade's window needs a little room around the brow and chin. Candidates need 5
        overlapping detections (OpenCV's usual threshold against texture that looks like a
        face) and a side of at least a quarter of the image, which no generated face is
        smaller than and much false-positive texture is. On the default bundle's seeds 0-15
        this finds one face in 13 (the misses are a turned head and faces cut by the frame),
        in noise and in flat grey none."""
        pixels = to_8bit(images).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        cv2 = self._cv2
        counts = []
        for rgb in pixels:
            grey = cv2.equalizeHist(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY))
            side = max(1, round(FACE_MIN_SHARE * min(grey.shape)))
            pad = round(FACE_PAD * min(grey.shape))
            grey = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            found = self._cascade.detectMultiScale(
                grey, scaleFactor=1.1, minNeighbors=FACE_NEIGHBOURS, minSize=(side, side)
            )
            counts.append(len(found))
        return counts


def _opencv() -> Any:
    """The cv2 module, or one line saying which extra brings it."""
    try:
        import cv2
    except ImportError:
        raise UserError(OPENCV_MISSING) from None
    return cv2
