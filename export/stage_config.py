"""The sizes and training settings of a refinement stage, without torch.

They live apart from the torch modules so that the command line, which every runtime start
builds, can show the real defaults in its help without importing torch; and they are stored in
every checkpoint, so a stage is rebuilt and exported without the command line that trained it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RefineConfig:
    """The generator's and discriminator's sizes. The defaults run 64->256 at about 8 ms a
    frame with ONNX Runtime on a 2-core CPU."""

    scale: int = 4
    width: int = 32
    blocks: int = 6
    disc_width: int = 32

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RefineConfig:
        return cls(**{key: int(values[key]) for key in ("scale", "width", "blocks", "disc_width")})


@dataclass(frozen=True)
class TrainOptions:
    """How a run trains; stored in its checkpoint and required to match when it resumes
    (except ``epochs``, which is how far to go)."""

    crop: int = 128
    batch: int = 16
    epochs: int = 20
    steps_per_epoch: int = 100
    lr: float = 2e-4
    adversarial_weight: float = 5e-3
    gan_after: int = 500
    seed: int = 0
