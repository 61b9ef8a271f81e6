"""Train a refinement stage on a folder of photographs: ``installation export train-stage``.

Each step cuts random crops from the photographs, degrades them the way the previous stage's
output looks (``export.degrade``) and teaches the generator to draw the crop again from the
degraded version: an L1 reconstruction loss throughout, plus, after a warm-up, a small
adversarial loss from the conditional discriminator, which pushes towards crisp detail where
L1 alone would average it away.

A GAN's losses do not say whether the pictures got better, so every epoch is also judged on
what the run never trains on (``export.epoch_figures``): PSNR and SSIM on held-out
photographs, set aside before the first step, and the sharpness and the faces found in the
chain's pictures of fixed seeds.

Training runs for hours on an artist's GPU and may be stopped at any time, so a run is a
folder: ``checkpoint.pt`` (written atomically at every epoch's end; starting the command again
with the same ``--out`` goes on from there), ``history.json`` and ``history.csv`` (losses and
figures per epoch), ``samples/epoch-NNNN.png`` (input, stage, original, side by side, on
fixed crops), ``sheets/`` (the fixed seeds per epoch, ``export.run_record``) and ``best/``
(the weights of the best epoch by each figure). The data of step ``n`` is drawn from a
generator seeded with ``(seed, n)``, so a resumed run sees exactly the crops an uninterrupted
one would have.
"""

from __future__ import annotations

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
from export.epoch_figures import REPEATS, Yardstick, figures_line, judge, yardstick
from export.image_folder import ImageSet, load_images, shared_images, split_holdout
from export.refine import RefineDiscriminator, RefineGenerator, upscale
from export.run_record import keep_best, write_history, write_sheet
from export.stage_config import RefineConfig, TrainOptions
from installation.errors import UserError
from installation.progress import Progress

CHECKPOINT = "checkpoint.pt"
SAMPLES = "samples"
SAMPLE_COUNT = 4


@dataclass(frozen=True)
class Losses:
    """An epoch's training: the mean losses of its steps and its wall time."""

    step: int
    reconstruction: float
    adversarial: float
    discriminator: float
    seconds: float


@dataclass(frozen=True)
class EpochResult:
    """One epoch as ``history.json`` and the checkpoint keep it: losses, then figures.
    ``seconds`` is the training, ``figures_seconds`` the judging after it (figures, sheets).
    ``faces`` is None for a run without a base bundle."""

    epoch: int
    step: int
    reconstruction: float
    adversarial: float
    discriminator: float
    seconds: float
    figures_seconds: float
    psnr: float
    ssim: float
    sharpness: float
    faces: float | None
    faces_found: int
    faces_of: int


def train_stage(
    images: Path,
    out: Path,
    config: RefineConfig,
    options: TrainOptions,
    device: str = "cpu",
    say: Callable[[str], None] = print,
) -> list[EpochResult]:
    """Train (or resume) the run in ``out`` up to ``options.epochs``; returns every epoch's
    losses and figures so far, those of earlier sessions included."""
    if options.crop % config.scale:
        raise UserError(f"--crop {options.crop} is not a multiple of --scale {config.scale}")
    training, holdout, source = _photos(images, options, say)
    torch.manual_seed(options.seed)
    generator = RefineGenerator(config).to(device)
    discriminator = RefineDiscriminator(config).to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=options.lr, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=options.lr, betas=(0.9, 0.99))
    out.mkdir(parents=True, exist_ok=True)
    history = _resume(out, config, options, generator, discriminator, opt_g, opt_d, say)
    if len(history) >= options.epochs:
        say(f"{out} has {len(history)} epochs already; raise --epochs to train on")
        return history
    stick = yardstick(holdout, config, options)
    say(_yardstick_line(stick, options))
    run = {
        "config": config.to_dict(),
        "options": asdict(options),
        "training_images": training.names,
        "holdout": holdout.names,
        "holdout_source": source,
        "tile": options.crop,
        "repeats": REPEATS,
        "eval_seeds": list(range(options.eval_seeds)),
        "base": None if stick.base is None else stick.base.describe(),
    }
    data = {
        "images": training.names,
        "skipped": training.skipped + holdout.skipped,
        "device": device,
        "run": run,
        "baselines": stick.baselines,
    }
    samples = _batch(training, options, config.scale, -1, SAMPLE_COUNT, device)
    while len(history) < options.epochs:
        epoch = len(history) + 1
        losses = _epoch(
            epoch, training, options, config, generator, discriminator, opt_g, opt_d, device
        )
        result = _judged(out, epoch, losses, generator, stick, device)
        history.append(result)
        _write_samples(out / SAMPLES / f"epoch-{epoch:04d}.png", generator, samples, config)
        epochs = [asdict(record) for record in history]
        keep_best(out, epochs, generator.state_dict())
        _save(out, config, options, generator, discriminator, opt_g, opt_d, history, data)
        write_history(out, run, stick.baselines, epochs)
        say(
            f"epoch {epoch}/{options.epochs} step {result.step}: reconstruction (L1) "
            f"{result.reconstruction:.4f}, adversarial {result.adversarial:.4f}, "
            f"discriminator {result.discriminator:.4f}, {result.seconds:.0f} s; "
            f"{figures_line(asdict(result), stick)} ({result.figures_seconds:.1f} s)"
        )
    return history


def _photos(
    images: Path, options: TrainOptions, say: Callable[[str], None]
) -> tuple[ImageSet, ImageSet, str]:
    """(training, held out, where the held-out ones come from): a separate ``--holdout``
    folder, else a seeded share of ``images``."""
    dataset = load_images(images, options.crop)
    for skipped in dataset.skipped:
        say(f"skipped {images / skipped}")
    if options.holdout:
        folder = Path(options.holdout)
        holdout = load_images(folder, options.crop)
        for skipped in holdout.skipped:
            say(f"skipped {folder / skipped}")
        training, source = dataset, str(folder)
        trained = shared_images(holdout, dataset)
        if trained:
            raise UserError(
                f"{folder}: {', '.join(trained)} also in {images}; held-out photographs must "
                "never be trained on"
            )
    else:
        training, holdout = split_holdout(dataset, images, options.holdout_share, options.seed)
        source = f"share {options.holdout_share}"
    say(f"training on {len(training.images)} images from {images}: {', '.join(training.names)}")
    say(f"held out ({source}): {', '.join(holdout.names)}")
    return training, holdout, source


def _yardstick_line(stick: Yardstick, options: TrainOptions) -> str:
    """What every epoch is measured against, said once when the run starts."""
    bilinear, bicubic = stick.baselines["bilinear"], stick.baselines["bicubic"]
    line = (
        f"held-out figures on {len(stick.holdout.tiles)} tiles of {options.crop} px "
        f"({REPEATS} degradations each): bilinear {bilinear['psnr']:.2f} dB, "
        f"bicubic {bicubic['psnr']:.2f} dB; "
    )
    if stick.base is None:
        return line + f"sharpness on the first {len(stick.chain)} held-out inputs, no faces"
    return line + (
        f"sharpness and faces on {options.eval_seeds} fixed seeds drawn by {stick.base.name} "
        f"({stick.base.stages} stage(s), {stick.base.size} px), bilinear upscaling: "
        f"sharpness {bilinear['sharpness']:.2f}, faces {bilinear['faces_found']}/"
        f"{bilinear['faces_of']}"
    )


def _judged(
    out: Path,
    epoch: int,
    losses: Losses,
    generator: RefineGenerator,
    stick: Yardstick,
    device: str,
) -> EpochResult:
    """The epoch's losses with its figures; writes its contact sheet and the strip."""
    started = time.perf_counter()
    figures, outputs = judge(generator, stick, device)
    write_sheet(out, epoch, outputs.numpy())
    seconds = time.perf_counter() - started
    return EpochResult(epoch, **asdict(losses), figures_seconds=seconds, **figures)


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
) -> Losses:
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
    return Losses(
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
    ``data`` (images used and held out, files skipped, device, baselines) is what the
    training report states."""
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
    missing = [field.name for field in fields(TrainOptions) if field.name not in state["options"]]
    if missing:
        raise UserError(
            f"{out / CHECKPOINT}: this run was started before runs were judged on held-out "
            f"figures (its options lack {', '.join(missing)}), so it cannot go on; start a new "
            "run with another --out (export stage still exports this one)"
        )
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
