"""Display pace: does the screen keep its rate, blending, while generation is slow?

The tests prove the display never waits for the generator by counting within one run (more
pictures than frames made, more blends than holds), so a busy CI machine cannot fail them. The
rates themselves are this benchmark's: it plays the default show's first scene headless for
``--seconds`` on the real ONNX Runtime CPU backend, made slow by ``--delay`` seconds a stage
(the tests' slow backend, as on a weak machine), and reports the frames shown and generated per
second and the share of pictures that blend two frames. On an idle machine the display should
show about ``--fps`` frames/s and blend at least 80 % of them; exit status 1 when it does not.

    python benchmarks/display_pace.py                  # under 10 frames/s made, 60 shown
    python benchmarks/display_pace.py --delay 0.1 --seconds 10 --json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from installation.display import HeadlessDisplay
from installation.engine.frames import Frame
from installation.engine.pipeline import Pipeline
from installation.player import play
from installation.score.conductor import Conductor
from installation.session import load_parts

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from slow import SlowBackend  # noqa: E402  one definition of a slow backend, the tests'

#: The first pictures compile shaders and wait for the first frames: not the steady pace.
WARM_UP = 30


class BlendDisplay(HeadlessDisplay):
    """The real headless display, noting whether each picture blends two frames."""

    def __init__(self) -> None:
        super().__init__((160, 90))
        self.blends: list[bool] = []

    def present(self, a: Frame, b: Frame | None, weight: float, brightness: float = 1.0) -> None:
        super().present(a, b, weight, brightness)
        self.blends.append(b is not None)


def measure(delay: float, seconds: float, fps: float) -> dict[str, float]:
    show, bundle, _ = load_parts(ROOT / "shows" / "default.toml")
    show = replace(show, scenes=(replace(show.scenes[0], hold=0.5, morph=1.0),))
    conductor = Conductor(show, bundle.latent_size, bundle.latent_distribution)
    pipeline = Pipeline.load(bundle, SlowBackend(delay))
    display = BlendDisplay()
    display.open("display pace")
    try:
        result = play(display, pipeline, conductor, fps=fps, lead=0.1, duration=seconds)
    finally:
        display.close()
    steady = display.blends[WARM_UP:]
    return {
        "shown_per_s": len(display.blends) / result.seconds,
        "generated_per_s": result.generated / result.seconds,
        "blended": sum(steady) / max(1, len(steady)),
        "late_ticks": result.stats.late,
        "median_interval_ms": result.stats.median_interval * 1e3,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay", type=float, default=0.05, help="seconds added a stage (0.05)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the run (5)")
    parser.add_argument("--fps", type=float, default=60.0, help="display rate (60)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    result = measure(args.delay, args.seconds, args.fps)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"shown {result['shown_per_s']:.1f} frames/s, generated {result['generated_per_s']:.1f}"
            f" frames/s, {result['blended']:.0%} blends, {result['late_ticks']} late ticks,"
            f" median tick {result['median_interval_ms']:.1f} ms"
        )
    kept = result["shown_per_s"] > 0.8 * args.fps and result["blended"] > 0.8
    return 0 if kept else 1


if __name__ == "__main__":
    raise SystemExit(main())
