"""FLOPs of refinement stages, counted by torch, for time estimates on other hardware.

Counts one training step (generator forward and backward, discriminator on real and fake,
both backward, as ``export.train_stage`` does after its warm-up) and one frame of inference,
for the 64->256 and the 256->1024 stage at the default sizes. Divide by a GPU's sustained
FLOP/s to estimate its time; docs/training.md does, for a few cards.

    python benchmarks/refine_flops.py [--batch 16]
"""

from __future__ import annotations

import argparse

import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from export.refine import RefineDiscriminator, RefineGenerator
from export.stage_config import RefineConfig, TrainOptions


def training_step_flops(config: RefineConfig, crop: int, batch: int) -> int:
    generator, discriminator = RefineGenerator(config), RefineDiscriminator(config)
    small = torch.rand(batch, 3, crop // config.scale, crop // config.scale) * 2 - 1
    large = torch.rand(batch, 3, crop, crop) * 2 - 1
    with FlopCounterMode(display=False) as counter:
        fake = generator(small)
        d_loss = F.softplus(-discriminator(large, small)).mean()
        d_loss = d_loss + F.softplus(discriminator(fake.detach(), small)).mean()
        d_loss.backward()
        g_loss = F.l1_loss(fake, large) + F.softplus(-discriminator(fake, small)).mean()
        g_loss.backward()
    return counter.get_total_flops()


def frame_flops(config: RefineConfig, input_size: int) -> int:
    generator = RefineGenerator(config).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        generator(torch.zeros(1, 3, input_size, input_size))
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = TrainOptions()
    parser.add_argument("--batch", type=int, default=defaults.batch, help="crops per step")
    args = parser.parse_args()
    config = RefineConfig()
    print(f"{config}, batch {args.batch}")
    print(f"{'stage':>10} {'crop':>5} {'GFLOP/step':>11} {'GFLOP/epoch':>12} {'GFLOP/frame':>12}")
    for input_size, crop in ((64, defaults.crop), (256, 2 * defaults.crop)):
        step = training_step_flops(config, crop, args.batch) / 1e9
        frame = frame_flops(config, input_size) / 1e9
        name = f"{input_size}->{input_size * config.scale}"
        epoch = step * defaults.steps_per_epoch
        print(f"{name:>10} {crop:>5} {step:>11.1f} {epoch:>12.0f} {frame:>12.2f}")


if __name__ == "__main__":
    main()
