"""Adaptive quality, the old rule against the new: how sharp, and how smooth, is the screen?

The old rule dropped the last refinement stage whenever generation made fewer than 24 frames
a second, whatever the pace, and made a frame for every display refresh it could; the new one
drops it only when the picture moves more than ``max_step`` faces between two generated
frames, and makes no more frames than the pace needs, since the display blends between them
(installation.engine.quality). This plays the default show (ONNX Runtime on the CPU, the real
pipeline and display loop) headless at ``--size`` (1920x1080) for ``--seconds`` under each rule
taking turns (``--turns`` stretches each, every one from the show's start), and reports:

* ``full_share``: the share of screen refreshes whose newest frame is full size (all stages);
* ``jerk_mean``, ``jerk_max``: the mean and largest change between consecutive presented
  pictures, mean absolute difference in 0..255, rebuilt from what each refresh presented
  (frames, blend weight, brightness) at the bundle's full size (small frames scaled up as
  the display does, bilinear);
* ``coarse_mean``, ``coarse_max``: the same at the generator's size (full frames averaged
  down), which measures motion alone: a sharper picture has more detail to differ in.

The new rule should give a larger ``full_share`` with no larger ``jerk_mean`` or ``jerk_max``;
exit status 1 otherwise. On a machine fast enough for every stage at the display's rate the
old rule never drops one either, and the shares are equal: the comparison needs a machine
(or a screen, such as Xvfb's at 1920x1080) that leaves generation below 24 frames/s.

    python benchmarks/quality_rule.py                  # 60 s each, about 2.5 minutes
    Xvfb :97 -screen 0 1920x1080x24 &
    DISPLAY=:97 python benchmarks/quality_rule.py --screen fullscreen    # as the issue saw it
    python benchmarks/quality_rule.py --seconds 20 --json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pygame

from installation.display import Display, FullscreenDisplay, HeadlessDisplay
from installation.display.base import Action
from installation.engine.frames import Frame
from installation.engine.quality import AdaptiveQuality
from installation.player import adaptive_quality, play
from installation.session import open_show

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SHOW = ROOT / "shows" / "default.toml"
#: The two rules as show settings: the old is a floor of 24 frames/s that no pace moves.
RULES = {"old": {"min_rate": 24.0}, "new": {}}


class OldRule(AdaptiveQuality):
    """The rule before: ``min_rate`` alone, blind to the pace, and a frame every time step."""

    def spacing(self, fps: float) -> int:
        return 1


@dataclass
class Presented:
    """Each refresh as (serial a, serial b or -1, weight, brightness), and the frames by serial."""

    ticks: list[tuple[int, int, float, float]] = field(default_factory=list)
    frames: dict[int, np.ndarray] = field(default_factory=dict)


class Recording(Display):
    """A real display (headless, or fullscreen on ``$DISPLAY``), noting what each refresh
    presents."""

    def __init__(self, inner: Display) -> None:
        self.inner = inner
        self.presented = Presented()

    def open(self, title: str) -> None:
        self.inner.open(title)

    def present(self, a: Frame, b: Frame | None, weight: float, brightness: float = 1.0) -> None:
        self.inner.present(a, b, weight, brightness)
        for frame in (a, b):
            if frame is not None:
                self.presented.frames.setdefault(frame.serial, frame.image)
        serial_b = -1 if b is None else b.serial
        self.presented.ticks.append((a.serial, serial_b, weight, brightness))

    def poll(self) -> list[Action]:
        return self.inner.poll()

    def close(self) -> None:
        self.inner.close()

    @property
    def description(self) -> str:
        return self.inner.description


def scaled(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` as float32 ``size`` x ``size`` x 3: scaled up bilinearly as the display
    does, or averaged down in blocks."""
    height = image.shape[0]
    if height > size:
        step = height // size
        return image.reshape(size, step, size, step, 3).mean(axis=(1, 3), dtype=np.float32)
    if height < size:
        surface = pygame.surfarray.make_surface(image.swapaxes(0, 1))
        surface = pygame.transform.smoothscale(surface, (size, size))
        image = pygame.surfarray.array3d(surface).swapaxes(0, 1)
    return image.astype(np.float32)


def changes(presented: Presented, size: int) -> list[float]:
    """The mean absolute difference between each two consecutive presented pictures,
    rebuilt at ``size`` px."""
    cache: dict[int, np.ndarray] = {}

    def frame(serial: int) -> np.ndarray:
        if serial not in cache:
            cache[serial] = scaled(presented.frames[serial], size)
        return cache[serial]

    found = []
    previous = None
    for serial_a, serial_b, weight, brightness in presented.ticks:
        picture = frame(serial_a)
        if serial_b >= 0:
            picture = picture + weight * (frame(serial_b) - picture)
        picture = picture * brightness
        if previous is not None:
            found.append(float(np.mean(np.abs(picture - previous))))
        previous = picture
    return found


@dataclass
class Run:
    """What one rule showed, over all its stretches."""

    full: list[bool] = field(default_factory=list)  # per refresh: newest frame full size
    jerk: list[float] = field(default_factory=list)
    coarse: list[float] = field(default_factory=list)
    seconds: float = 0.0
    generated: int = 0
    held: int = 0
    screen: str = ""  # the display's video driver and renderer

    def figures(self) -> dict[str, float]:
        return {
            "full_share": float(np.mean(self.full)),
            "jerk_mean": float(np.mean(self.jerk)),
            "jerk_max": float(np.max(self.jerk)),
            "coarse_mean": float(np.mean(self.coarse)),
            "coarse_max": float(np.max(self.coarse)),
            "generated_per_s": self.generated / self.seconds,
            "shown_per_s": len(self.full) / self.seconds,
            "held_share": self.held / len(self.full),
        }


def stretch(run: Run, rule: str, seconds: float, size: tuple[int, int], screen: str) -> None:
    """Play the default show from its start for ``seconds`` under ``rule``, adding to ``run``."""
    show, ladder, conductor = open_show(DEFAULT_SHOW)
    show = replace(show, engine=replace(show.engine, **RULES[rule]))
    quality = adaptive_quality(show, ladder, conductor)
    if rule == "old":
        quality = OldRule(quality.labels, quality.policy, quality.adaptive)
    inner = HeadlessDisplay(size) if screen == "headless" else FullscreenDisplay(size)
    display = Recording(inner)
    display.open(f"quality rule: {rule}")
    run.screen = display.description
    try:
        result = play(
            display, ladder, conductor, show.display.fps, show.engine.lead, seconds, None, quality
        )
    finally:
        display.close()
    presented = display.presented
    stages = ladder.pipeline.stages
    full, small = stages[-1].spec.output_size[0], stages[0].spec.output_size[0]
    for a, b, _, _ in presented.ticks:
        run.full.append(presented.frames[b if b >= 0 else a].shape[0] == full)
    run.jerk += changes(presented, full)
    run.coarse += changes(presented, small)
    run.seconds += result.seconds
    run.generated += result.generated
    run.held += result.stats.held


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="show time per rule (60)")
    parser.add_argument("--size", default="1920x1080", help="screen size (1920x1080)")
    parser.add_argument(
        "--screen",
        choices=("headless", "fullscreen"),
        default="headless",
        help="SDL's dummy driver, or fullscreen on $DISPLAY (Xvfb -screen 0 1920x1080x24)",
    )
    parser.add_argument("--turns", type=int, default=2, help="stretches per rule, alternating (2)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    size = (width, height)
    runs = {rule: Run() for rule in RULES}
    # Taking turns, so that what else the machine does weighs on both rules alike.
    for _ in range(args.turns):
        for rule, run in runs.items():
            stretch(run, rule, args.seconds / args.turns, size, args.screen)
    results = {rule: run.figures() for rule, run in runs.items()}
    if args.json:
        print(json.dumps(results))
    else:
        print(f"{args.size} on {runs['new'].screen}, {args.seconds:g} s each")
        for rule, figures in results.items():
            print(rule, " ".join(f"{key} {value:.4g}" for key, value in figures.items()))
    old, new = results["old"], results["new"]
    sharper = new["full_share"] > old["full_share"]
    return 0 if sharper and all(new[k] <= old[k] for k in ("jerk_mean", "jerk_max")) else 1


if __name__ == "__main__":
    sys.exit(main())
