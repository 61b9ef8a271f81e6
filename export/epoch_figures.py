"""Judge a training run's stage after every epoch, on what the run never trains on.

The yardstick is fixed when the run starts and stays the same in every epoch: the held-out
photographs cut into ``--crop`` px tiles and degraded with a fixed evaluation seed (PSNR and
SSIM against bilinear and bicubic, computed once), and the base bundle's pictures of the fixed
seeds, which the stage refines in the chain it will run in (sharpness, faces, the contact
sheet). The numbers themselves are ``export.figures``'s, the same code as
``benchmarks/refine_psnr.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from export.base_chain import BaseChain, draw_base
from export.figures import (
    FaceDetector,
    HoldoutSet,
    baselines,
    high_frequency_energy,
    holdout_set,
    sharpness,
    upscale_figures,
)
from export.image_folder import ImageSet
from export.refine import RefineGenerator
from export.stage_config import NO_BASE, RefineConfig, TrainOptions

EVAL_SEED = 2026
"""Seed of the held-out tiles' degradations: ``benchmarks/refine_psnr.py``'s default, and the
same in every run, so two runs on the same held-out photographs see the same inputs."""
REPEATS = 4
"""Degradations drawn per held-out tile, as in ``benchmarks/refine_psnr.py``."""
BATCH = 16


@dataclass(frozen=True)
class Yardstick:
    """What every epoch of one run is measured against."""

    holdout: HoldoutSet
    detail: float
    """``high_frequency_energy`` of the held-out tiles: what sharpness is relative to."""
    baselines: dict[str, dict[str, Any]]
    """{"bilinear": {"psnr", "ssim", "sharpness", "faces", ...}, "bicubic": {...}}: PSNR and
    SSIM over all held-out tiles, the others of the chain with the stage replaced by that
    interpolation (bilinear is the untrained stage)."""
    chain: torch.Tensor
    """The stage's inputs in the chain, (N, 3, h, w) in 0..1: the base's pictures of the fixed
    seeds, or without a base the first held-out inputs."""
    base: BaseChain | None
    detector: FaceDetector | None


def yardstick(holdout: ImageSet, config: RefineConfig, options: TrainOptions) -> Yardstick:
    """Cut and degrade the held-out tiles, measure their detail, draw the base's fixed seeds
    and measure the baselines: once per run, as none of it changes while the stage trains."""
    tiles = holdout_set(holdout, options.crop, config.scale, EVAL_SEED, REPEATS)
    detail = high_frequency_energy(tiles.tiles)
    if options.base == NO_BASE:
        base, detector, chain = None, None, tiles.small[: options.eval_seeds]
    else:
        base = draw_base(Path(options.base), options.base_stages, options.eval_seeds)
        detector, chain = FaceDetector(), torch.from_numpy(base.images)
    bars = {}
    for mode, table in baselines(tiles, BATCH).items():
        upscaled = F.interpolate(chain, scale_factor=config.scale, mode=mode)
        bars[mode] = table["all"] | _chain_figures(upscaled, detail, detector)
    return Yardstick(tiles, detail, bars, chain, base, detector)


def judge(
    generator: RefineGenerator, stick: Yardstick, device: str
) -> tuple[dict[str, Any], torch.Tensor]:
    """The epoch's figures (``history.json``'s names) and the chain's pictures (0..1 NCHW on
    the CPU, for the contact sheet)."""
    generator.eval()

    def refine(small: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return ((generator(small.to(device) * 2 - 1) + 1) / 2).cpu()

    scores = upscale_figures(refine, stick.holdout, BATCH)["all"]
    outputs = torch.cat([refine(part) for part in stick.chain.split(BATCH)])
    figures = scores | _chain_figures(outputs, stick.detail, stick.detector)
    return figures, outputs


def _chain_figures(
    outputs: torch.Tensor, detail: float, detector: FaceDetector | None
) -> dict[str, Any]:
    """Sharpness (relative to ``detail``) and faces of the chain's pictures (faces None
    without a detector)."""
    figures: dict[str, Any] = {
        "sharpness": sharpness(outputs, detail),
        "faces": None,
        "faces_found": 0,
        "faces_of": 0,
    }
    if detector is not None:
        found = sum(count == 1 for count in detector.frontal_faces(outputs))
        figures |= {"faces": found / len(outputs), "faces_found": found, "faces_of": len(outputs)}
    return figures


def figures_line(figures: dict[str, Any], stick: Yardstick) -> str:
    """The figures as the progress line after an epoch states them."""
    gain = figures["psnr"] - stick.baselines["bicubic"]["psnr"]
    faces = (
        "no base" if figures["faces"] is None else f"{figures['faces_found']}/{figures['faces_of']}"
    )
    return (
        f"PSNR {figures['psnr']:.2f} dB ({gain:+.2f} over bicubic), SSIM {figures['ssim']:.3f}, "
        f"sharpness {figures['sharpness']:.2f}, faces {faces}"
    )
