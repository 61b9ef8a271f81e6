"""StyleGAN2 config-F synthesis at 256 px: ONNX Runtime against torch eager on this CPU.

The generator is a synthetic config-F tree (random weights, the layout and filters of a real
pickle), rebuilt by ``export.stylegan2`` and exported exactly as ``installation export
stylegan`` exports it (``export_graph`` of the same ``SynthesisNetwork`` module). Synthesis
alone is timed: the runtime maps each keyframe seed once and then only synthesizes per frame.
GFLOP per frame are counted by torch's FLOP counter on one frame of our synthesis (matrix
products and convolutions, 2 FLOP per multiply-add: the same count ``refine_flops.py`` makes);
``--also 1024`` counts the 1024 px config-F generator as well (slow: it runs one frame).
Needs the workshop extra (torch).
Run: python benchmarks/stylegan_synthesis.py [--budget SECONDS] [--also 1024]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from export import stylegan2
from export.onnx_export import export_graph
from export.stylegan_export import SynthesisNetwork
from export.stylegan_generator import StyleGenerator
from installation.bench import format_table, median_seconds
from installation.engine.backend import CPU, OnnxRuntimeBackend

RESOLUTION = 256


def config_f(resolution: int) -> StyleGenerator:
    return stylegan2.build(stylegan2.synthetic(stylegan2.config_f(resolution), seed=0))


def frame_gflop(generator: StyleGenerator) -> float:
    ws = torch.zeros(1, generator.num_ws, generator.w_dim)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        generator.synthesize(ws)
    return counter.get_total_flops() / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=10.0, help="seconds timed per side")
    parser.add_argument(
        "--also", type=int, action="append", default=[], metavar="PX", help="count GFLOP at PX"
    )
    args = parser.parse_args()

    generator = config_f(RESOLUTION)
    backend = OnnxRuntimeBackend(CPU)
    torch.set_num_threads(backend.threads)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "synthesis.onnx"
        export_graph(SynthesisNetwork(generator), path, {"ws": (generator.num_ws, generator.w_dim)})
        stage = backend.load(path)
        rng = np.random.default_rng(0)
        with torch.inference_mode():
            w = generator.map(
                torch.from_numpy(rng.standard_normal((1, generator.z_dim), dtype=np.float32))
            )
        ws = w.unsqueeze(1).repeat(1, generator.num_ws, 1)
        with torch.inference_mode():
            expected = generator.synthesize(ws).numpy()
            error = np.abs(stage.run(ws.numpy()) - expected).max()
            eager = median_seconds(lambda: generator.synthesize(ws), args.budget, minimum=5)
        ort = median_seconds(lambda: stage.run(ws.numpy()), args.budget, minimum=5)
    print(
        f"StyleGAN2 config-F {RESOLUTION} px synthesis, batch 1, {backend.threads} threads; "
        f"max abs error torch vs ONNX Runtime {error:.1e}"
    )
    rows = [
        {
            "px": RESOLUTION,
            "gflop_per_frame": frame_gflop(generator),
            "torch_eager_fps": 1 / eager,
            "onnxruntime_fps": 1 / ort,
            "speedup": eager / ort,
        }
    ]
    print(format_table(rows))
    for resolution in args.also:
        print(f"{resolution} px config-F: {frame_gflop(config_f(resolution)):.1f} GFLOP per frame")


if __name__ == "__main__":
    main()
