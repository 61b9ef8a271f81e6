"""What one frame is made of, as the score describes it: layers of latents and their weights.

Most frames are one latent through every stage. A scene may stop after fewer stages, and a
crossfade between scenes needs two pictures mixed; both are described by a ``FramePlan``, so
the conductor stays pure (no pipeline, no images). ``installation.engine.paint`` is the one
place that turns plans into pixels. A grid layout shows several face streams at once: its
frames are a ``Mosaic`` of plans, one per stream.

A W bundle's latent needs its keyframes mapped (a model run), which must happen where frames
are painted, never on the display's or a controller's thread: its layers hold a ``Deferred``
value, computed the first time the painter asks for ``latent``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


class Deferred:
    """A latent computed on first use and then kept. The computation is dropped once done,
    so a chain of transitions (each starting from the picture before it) is let go as soon
    as its pictures exist, however many cuts a show sees in weeks."""

    def __init__(self, compute: Callable[[], np.ndarray]) -> None:
        self._compute: Callable[[], np.ndarray] | None = compute
        self._value: np.ndarray | None = None
        self._lock = threading.Lock()

    def get(self) -> np.ndarray:
        with self._lock:
            if self._value is None:
                assert self._compute is not None
                self._value, self._compute = self._compute(), None
            return self._value


@dataclass(frozen=True, eq=False)
class Layer:
    """A latent (or a ``Deferred`` one) to draw through the first ``stages`` stages (None:
    all), mixed in by ``weight``. Compared by identity (``eq=False``): it holds an array."""

    value: np.ndarray | Deferred
    stages: int | None
    weight: float = 1.0

    @property
    def latent(self) -> np.ndarray:
        return self.value.get() if isinstance(self.value, Deferred) else self.value


@dataclass(frozen=True, eq=False)
class FramePlan:
    """Everything that makes one frame: its layers, whose weights add up to 1."""

    layers: tuple[Layer, ...]

    @property
    def dominant(self) -> Layer:
        """The layer that is most of the picture, as a single full-weight layer (its value
        not computed here: a cut on a controller's thread takes it as a transition's start)."""
        layer = max(self.layers, key=lambda item: item.weight)
        return Layer(layer.value, layer.stages)


@dataclass(frozen=True, eq=False)
class Mosaic:
    """One frame of a grid layout: a plan per face stream, row by row, ``columns`` to a row,
    tiled with gutters of ``background`` (RGB). All its streams are painted as one batch, so
    a grid costs one pipeline run per frame however many faces it shows."""

    cells: tuple[FramePlan, ...]
    columns: int
    background: tuple[int, int, int] = (0, 0, 0)

    @property
    def rows(self) -> int:
        return len(self.cells) // self.columns


#: What the conductor hands the painter for one frame.
Plan = FramePlan | Mosaic
