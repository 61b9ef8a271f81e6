"""Torch eager against ONNX Runtime on the same stage, in one run, on this machine.

The torch model is rebuilt from the bundle's own ONNX weights (our DCGAN architecture in
``export.dcgan``), so both sides compute the same function; their agreement is printed
first. Both use the same number of threads. Needs the workshop extra (torch).
Run: python benchmarks/torch_vs_onnxruntime.py [--budget SECONDS] [--batch N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from export.dcgan import generator_from_state_dict
from installation.bench import format_table, median_seconds
from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.bundle import load_bundle

BUNDLE = Path(__file__).resolve().parent.parent / "bundles" / "faces-256"


def torch_generator(path: Path) -> torch.nn.Module:
    """Our torch DCGAN generator holding the weights stored in an exported ONNX file."""
    state: dict[str, torch.Tensor] = {
        init.name: torch.from_numpy(numpy_helper.to_array(init).copy())
        for init in onnx.load(str(path)).graph.initializer
    }
    for key in [k for k in state if k.endswith(".running_mean")]:
        state[key.replace("running_mean", "num_batches_tracked")] = torch.tensor(0)
    return generator_from_state_dict(state)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=3.0, help="seconds timed per row")
    parser.add_argument("--batch", type=int, default=16, help="the larger batch size")
    args = parser.parse_args()

    stage = load_bundle(BUNDLE).stages[0]
    backend = OnnxRuntimeBackend(CPU)
    torch.set_num_threads(backend.threads)
    session = backend.load(stage.path)
    model = torch_generator(stage.path)

    rng = np.random.default_rng(0)
    check = rng.standard_normal((8, *stage.input_shape), dtype=np.float32)
    with torch.inference_mode():
        error = np.abs(model(torch.from_numpy(check)).numpy() - session.run(check)).max()
    print(f"max abs error torch vs ONNX Runtime: {error:.2e} ({backend.threads} threads)")

    rows = []
    for batch in (1, args.batch):
        latents = rng.standard_normal((batch, *stage.input_shape), dtype=np.float32)
        tensor = torch.from_numpy(latents)
        with torch.inference_mode():
            eager = median_seconds(lambda t=tensor: model(t), args.budget)
        ort = median_seconds(lambda x=latents: session.run(x), args.budget)
        rows.append(
            {
                "batch": batch,
                "torch_eager_fps": batch / eager,
                "onnxruntime_fps": batch / ort,
                "speedup": eager / ort,
            }
        )
    print(format_table(rows))


if __name__ == "__main__":
    main()
