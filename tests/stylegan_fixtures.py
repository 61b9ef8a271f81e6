"""Write StyleGAN snapshot pickles in the real persistence structure, for the tests.

NVIDIA's training code saves ``{G, D, G_ema, augment_pipe, training_set_kwargs}`` with
``pickle.dump``; each network reduces to ``torch_utils.persistence._reconstruct_persistent_obj``
called with ``meta = {type, version, module_src, class_name, state}``, where ``state`` is the
module's ``__dict__`` (torch's bookkeeping, ``_parameters``, ``_buffers``, ``_modules`` with
nested persistent objects, the class's own attributes, ``_init_args``, ``_init_kwargs``), and
configuration dicts are ``dnnlib.util.EasyDict``. To emit those global names without NVIDIA's
code, tiny stand-in modules of our own are registered in ``sys.modules`` while a file is written;
their reconstructor refuses to run, so a test that reached it would fail loudly.
"""

from __future__ import annotations

import pickle
import sys
import types
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from export.stylegan_pickle import PickledModule

PERSISTENCE_VERSION = 6
HARMLESS_SOURCE = "# module source of the networks; never executed by the loader\n"


def source_that_writes(marker: Path) -> str:
    """A ``module_src`` that creates ``marker`` if anything ever executes it."""
    return f"import pathlib\npathlib.Path({str(marker)!r}).write_text('module_src was run')\n"


class Reduced:
    """An object that pickles as ``function(*args)``: how the stand-ins name NVIDIA's globals."""

    def __init__(self, function: Any, *args: Any) -> None:
        self.function, self.args = function, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.function, self.args


def write_snapshot(
    path: Path,
    g_ema: PickledModule,
    module_src: str = HARMLESS_SOURCE,
    extra: Mapping[str, Any] | None = None,
    protocol: int = pickle.DEFAULT_PROTOCOL,
) -> Path:
    """Write a snapshot whose ``G`` and ``G_ema`` are ``g_ema`` and whose ``D`` is a tiny
    discriminator; ``extra`` entries are added to the top-level dict as they are."""
    with _stand_ins() as (persistence, easy_dict):

        def persistent(module: PickledModule) -> Reduced:
            meta = {
                "type": "class",
                "version": PERSISTENCE_VERSION,
                "module_src": module_src,
                "class_name": module.class_name,
                "state": _state(module, persistent, easy_dict),
            }
            return Reduced(persistence._reconstruct_persistent_obj, meta)

        snapshot = {
            "G": persistent(g_ema),
            "D": persistent(_discriminator()),
            "G_ema": persistent(g_ema),
            "augment_pipe": None,
            "training_set_kwargs": easy_dict(
                class_name="training.dataset.ImageFolderDataset",
                path="faces.zip",
                use_labels=bool(g_ema.init_kwargs.get("c_dim")),
                max_size=1000,
                xflip=False,
                resolution=g_ema.init_kwargs.get("img_resolution"),
            ),
            **(extra or {}),
        }
        path.write_bytes(pickle.dumps(snapshot, protocol=protocol))
    return path


def _state(module: PickledModule, persistent: Any, easy_dict: type) -> dict[str, Any]:
    """``module.__dict__`` as a torch.nn.Module subclass decorated by NVIDIA's persistence
    would have it: torch's own entries first, then the class's attributes, then the saved
    constructor arguments."""
    return {
        "training": False,
        "_parameters": OrderedDict(
            (name, torch.nn.Parameter(tensor.clone(), requires_grad=False))
            for name, tensor in module.parameters.items()
        ),
        "_buffers": OrderedDict((name, tensor.clone()) for name, tensor in module.buffers.items()),
        "_non_persistent_buffers_set": set(),
        "_backward_pre_hooks": OrderedDict(),
        "_backward_hooks": OrderedDict(),
        "_is_full_backward_hook": None,
        "_forward_hooks": OrderedDict(),
        "_forward_hooks_with_kwargs": OrderedDict(),
        "_forward_hooks_always_called": OrderedDict(),
        "_forward_pre_hooks": OrderedDict(),
        "_forward_pre_hooks_with_kwargs": OrderedDict(),
        "_state_dict_hooks": OrderedDict(),
        "_state_dict_pre_hooks": OrderedDict(),
        "_load_state_dict_pre_hooks": OrderedDict(),
        "_load_state_dict_post_hooks": OrderedDict(),
        "_modules": OrderedDict(
            (name, persistent(child)) for name, child in module.children.items()
        ),
        **module.attributes,
        "_init_args": module.init_args,
        # The constructor's kwargs dict is plain; the configuration dicts inside it were made
        # by the training script as EasyDicts.
        "_init_kwargs": {
            key: easy_dict(value) if isinstance(value, dict) else value
            for key, value in module.init_kwargs.items()
        },
    }


def _discriminator() -> PickledModule:
    """A two-tensor stand-in for ``D``: the loader reads it like any network and ignores it."""
    return PickledModule(
        class_name="Discriminator",
        init_kwargs={"c_dim": 0, "img_resolution": 32, "img_channels": 3},
        attributes={"c_dim": 0, "img_resolution": 32},
        parameters={"weight": torch.ones(1, 3, 1, 1), "bias": torch.zeros(1)},
        buffers={},
        children={},
        source_sha256=None,
    )


@contextmanager
def _stand_ins() -> Iterator[tuple[Any, type]]:
    """Register ``torch_utils.persistence`` and ``dnnlib.util`` stand-ins (our own code) so
    that pickle writes those global names; removed again afterwards."""

    def refuse(meta: Any) -> None:
        raise AssertionError("the persistence reconstructor must never be called")

    class EasyDict(dict):
        """Pickles as ``dnnlib.util.EasyDict``, a dict subclass, as NVIDIA's does."""

    modules = {
        name: types.ModuleType(name)
        for name in ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util")
    }
    refuse.__module__, refuse.__qualname__ = (
        "torch_utils.persistence",
        "_reconstruct_persistent_obj",
    )
    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    modules["torch_utils.persistence"]._reconstruct_persistent_obj = refuse  # type: ignore[attr-defined]
    modules["dnnlib.util"].EasyDict = EasyDict  # type: ignore[attr-defined]
    clashes = [name for name in modules if name in sys.modules]
    assert not clashes, f"real modules loaded: {clashes}"
    sys.modules.update(modules)
    try:
        yield modules["torch_utils.persistence"], EasyDict
    finally:
        for name in modules:
            del sys.modules[name]


def upfirdn_by_definition(
    x: torch.Tensor,
    f: torch.Tensor,
    up: int,
    down: int,
    padding: tuple[int, int, int, int],
    gain: float,
) -> torch.Tensor:
    """Zero insertion, zero padding (negative: cropping), a true 2-D convolution written as a
    sum over the taps (out[y, x] = sum f[i, j] * in[y + fh-1 - i, x + fw-1 - j]; 1-D taps as
    their outer product), then every down-th pixel: the reference both generators' resampling
    is tested against."""
    data = x.double().numpy()
    batch, channels, height, width = data.shape
    spread = np.zeros((batch, channels, height * up, width * up))
    spread[:, :, ::up, ::up] = data
    x0, x1, y0, y1 = padding
    padded = np.pad(spread, ((0, 0), (0, 0), (max(y0, 0), max(y1, 0)), (max(x0, 0), max(x1, 0))))
    rows, columns = padded.shape[2], padded.shape[3]
    padded = padded[:, :, max(-y0, 0) : rows - max(-y1, 0), max(-x0, 0) : columns - max(-x1, 0)]
    taps = f.double().numpy()
    taps = (np.outer(taps, taps) if taps.ndim == 1 else taps) * gain
    fh, fw = taps.shape
    out_h, out_w = padded.shape[2] - fh + 1, padded.shape[3] - fw + 1
    out = np.zeros((batch, channels, out_h, out_w))
    for i in range(fh):
        for j in range(fw):
            out += (
                taps[i, j]
                * padded[:, :, fh - 1 - i : fh - 1 - i + out_h, fw - 1 - j :][..., :out_w]
            )
    return torch.from_numpy(out[:, :, ::down, ::down]).float()
