"""Train a refinement stage on a folder of photographs: ``installation export train-stage``.

Each step cuts random crops from the photographs, degrades them the way the previous stage's
output looks (``export.degrade``) and teaches the generator to draw the crop again from the
degraded version: an L1 reconstruction loss throughout, plus, after a warm-up, a small
adversarial loss from the conditional discriminator, which pushes towards crisp detail where
L1 alone would average it away.

Training runs for hours on an artist's GPU and may be stopped at any time, so a run is a
folder: ``checkpoint.pt`` (written atomically at every epoch's end; starting the command again
with the same ``--out`` goes on from there), ``history.csv`` (losses per epoch) and
``samples/epoch-NNNN.png`` (input, stage, original, side by side, on fixed crops). The data of
step ``n`` is drawn from a generator seeded with ``(seed, n)``, so a resumed run sees exactly
the crops an uninterrupted one would have.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from export.degrade import degrade
from export.image_folder import ImageSet, load_images
from export.refine import RefineDiscriminator, RefineGenerator, upscale
from export.stage_config import RefineConfig, TrainOptions
from installation.errors import UserError
from installation.progress import Progress

CHECKPOINT = "checkpoint.pt"
HISTORY = "history.csv"
SAMPLES = "samples"
SAMPLE_COUNT = 4


@dataclass(frozen=True)
class EpochResult:
    epoch: int
    step: int
    reconstruction: float
    adversarial: float
    discriminator: float
    seconds: float


def train_stage(
    images: Path,
    out: Path,
    config: RefineConfig,
    options: TrainOptions,
    device: str = "cpu",
    say: Callable[[str], None] = print,
) -> list[EpochResult]:
    """Train (or resume) the run in ``out`` up to ``options.epochs``; returns every epoch's
    losses so far, those of earlier sessions included."""
    if options.crop % config.scale:
        raise UserError(f"--crop {options.crop} is not a multiple of --scale {config.scale}")
    dataset = load_images(images, options.crop)
    for skipped in dataset.skipped:
        say(f"skipped {images / skipped}")
    say(f"training on {len(dataset.images)} images from {images}: {', '.join(dataset.names)}")
    torch.manual_seed(options.seed)
    generator = RefineGenerator(config).to(device)
    discriminator = RefineDiscriminator(config).to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=options.lr, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=options.lr, betas=(0.9, 0.99))
    out.mkdir(parents=True, exist_ok=True)
    history = _resume(out, config, options, generator, discriminator, opt_g, opt_d, say)
    samples = _batch(dataset, options, config.scale, -1, SAMPLE_COUNT, device)
    while len(history) < options.epochs:
        epoch = len(history) + 1
        result = _epoch(
            epoch, dataset, options, config, generator, discriminator, opt_g, opt_d, device
        )
        history.append(result)
        _write_samples(out / SAMPLES / f"epoch-{epoch:04d}.png", generator, samples, config)
        data = {"images": dataset.names, "skipped": dataset.skipped, "device": device}
        _save(out, config, options, generator, discriminator, opt_g, opt_d, history, data)
        say(
            f"epoch {epoch}/{options.epochs} step {result.step}: reconstruction (L1) "
            f"{result.reconstruction:.4f}, adversarial {result.adversarial:.4f}, "
            f"discriminator {result.discriminator:.4f}, {result.seconds:.0f} s"
        )
    return history


def _batch(
    dataset: ImageSet, options: TrainOptions, scale: int, step: int, count: int, device: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(small, large) crops in -1..1 for ``step``; step -1 is the fixed sample set."""
    rng = torch.Generator().manual_seed(options.seed * 1_000_003 + step + 1)
    crops = []
    for _ in range(count):
        image = dataset.images[int(torch.randint(len(dataset.images), (), generator=rng))]
        height, width = image.shape[1:]
        top = int(torch.randint(height - options.crop + 1, (), generator=rng))
        left = int(torch.randint(width - options.crop + 1, (), generator=rng))
        crop = image[:, top : top + options.crop, left : left + options.crop]
        if float(torch.rand((), generator=rng)) < 0.5:
            crop = crop.flip(-1)
        crops.append(crop)
    large = torch.stack(crops).to(device).float() / 255
    small = degrade(large, scale, rng)
    return small * 2 - 1, large * 2 - 1


def _epoch(
    epoch: int,
    dataset: ImageSet,
    options: TrainOptions,
    config: RefineConfig,
    generator: RefineGenerator,
    discriminator: RefineDiscriminator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    device: str,
) -> EpochResult:
    started = time.perf_counter()
    generator.train()
    discriminator.train()
    sums = np.zeros(3)
    first = (epoch - 1) * options.steps_per_epoch
    bar = Progress(f"epoch {epoch}/{options.epochs}", options.steps_per_epoch)
    for step in range(first, first + options.steps_per_epoch):
        small, large = _batch(dataset, options, config.scale, step, options.batch, device)
        adversarial = step >= options.gan_after
        fake = generator(small)
        d_loss = torch.zeros(())
        if adversarial:
            opt_d.zero_grad(set_to_none=True)
            real_logits = discriminator(large, small)
            fake_logits = discriminator(fake.detach(), small)
            d_loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
            d_loss.backward()
            opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        reconstruction = F.l1_loss(fake, large)
        g_adv = torch.zeros(())
        if adversarial:
            g_adv = F.softplus(-discriminator(fake, small)).mean()
        (reconstruction + options.adversarial_weight * g_adv).backward()
        opt_g.step()
        sums += [reconstruction.item(), g_adv.item(), d_loss.item()]
        done = step - first + 1
        means = sums / done
        bar.advance(1, f"L1 {means[0]:.4f} adv {means[1]:.3f} D {means[2]:.3f}")
    bar.finish()
    means = sums / options.steps_per_epoch
    return EpochResult(
        epoch,
        first + options.steps_per_epoch,
        float(means[0]),
        float(means[1]),
        float(means[2]),
        time.perf_counter() - started,
    )


def _write_samples(
    path: Path,
    generator: RefineGenerator,
    samples: tuple[torch.Tensor, torch.Tensor],
    config: RefineConfig,
) -> None:
    """One row per sample crop: the degraded input (bilinear upscale), the stage, the original."""
    small, large = samples
    generator.eval()
    with torch.no_grad():
        columns = [upscale(small, config.scale), generator(small), large]
    rows = torch.cat([torch.cat(list(column), dim=-1) for column in zip(*columns, strict=True)], 1)
    pixels = ((rows.permute(1, 2, 0).cpu().numpy() + 1) * 127.5 + 0.5).clip(0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)


def _save(
    out: Path,
    config: RefineConfig,
    options: TrainOptions,
    generator: RefineGenerator,
    discriminator: RefineDiscriminator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    history: list[EpochResult],
    data: dict[str, Any],
) -> None:
    """Write the checkpoint next to the old one and swap: a kill mid-write loses nothing.
    ``data`` (images used, files skipped, device) is what the training report states."""
    state = {
        "config": config.to_dict(),
        "options": asdict(options),
        "generator": generator.state_dict(),
        "discriminator": discriminator.state_dict(),
        "opt_g": opt_g.state_dict(),
        "opt_d": opt_d.state_dict(),
        "history": [asdict(result) for result in history],
        "data": data,
    }
    partial = out / f"{CHECKPOINT}.partial"
    torch.save(state, partial)
    os.replace(partial, out / CHECKPOINT)
    with (out / HISTORY).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([field.name for field in fields(EpochResult)])
        writer.writerows([list(asdict(result).values()) for result in history])


def load_run(out: Path) -> dict[str, Any]:
    """A run's checkpoint, loaded without running any pickled code."""
    path = out / CHECKPOINT if out.is_dir() else out
    if not path.is_file():
        raise UserError(f"{path}: no checkpoint (is this a train-stage --out folder?)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for damaged files
        raise UserError(f"{path}: not a readable checkpoint: {error}") from None
    if not isinstance(state, dict) or "config" not in state or "generator" not in state:
        raise UserError(f"{path}: not a train-stage checkpoint")
    return state


def _resume(
    out: Path,
    config: RefineConfig,
    options: TrainOptions,
    generator: RefineGenerator,
    discriminator: RefineDiscriminator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    say: Callable[[str], None],
) -> list[EpochResult]:
    if not (out / CHECKPOINT).exists():
        return []
    state = load_run(out)
    saved = RefineConfig.from_dict(state["config"])
    saved_options = TrainOptions(**state["options"])
    if saved != config:
        raise UserError(
            f"{out / CHECKPOINT}: this run trains {saved}, not {config}; use the same sizes "
            "to resume or another --out to start afresh"
        )
    if {**asdict(saved_options), "epochs": 0} != {**asdict(options), "epochs": 0}:
        raise UserError(
            f"{out / CHECKPOINT}: this run was started with {saved_options}; only --epochs "
            "may change when it resumes"
        )
    generator.load_state_dict(state["generator"])
    discriminator.load_state_dict(state["discriminator"])
    # Optimizer.load_state_dict moves the moments to the parameters' device by itself, so a
    # run started on a GPU may go on on a CPU and the other way round.
    opt_g.load_state_dict(state["opt_g"])
    opt_d.load_state_dict(state["opt_d"])
    history = [EpochResult(**result) for result in state["history"]]
    say(f"resuming {out} after epoch {len(history)} (step {history[-1].step if history else 0})")
    return history
