"""What one frame is made of, as the score describes it: layers of latents and their weights.

Most frames are one latent through every stage. A scene may stop after fewer stages, and a
crossfade between scenes needs two pictures mixed; both are described by a ``FramePlan``, so
the conductor stays pure (no pipeline, no images). ``installation.engine.paint`` is the one
place that turns plans into pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Layer:
    """A latent to draw through the first ``stages`` stages (None: all), mixed in by
    ``weight``. Compared by identity (``eq=False``): it holds an array."""

    latent: np.ndarray
    stages: int | None
    weight: float = 1.0


@dataclass(frozen=True, eq=False)
class FramePlan:
    """Everything that makes one frame: its layers, whose weights add up to 1."""

    layers: tuple[Layer, ...]

    @property
    def dominant(self) -> Layer:
        """The layer that is most of the picture, as a single full-weight layer."""
        layer = max(self.layers, key=lambda item: item.weight)
        return Layer(layer.latent, layer.stages)
