"""The sizes and training settings of a refinement stage, without torch.

They live apart from the torch modules so that the command line, which every runtime start
builds, can show the real defaults in its help without importing torch; and they are stored in
every checkpoint, so a stage is rebuilt and exported without the command line that trained it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DEFAULT_BASE = str(Path(__file__).resolve().parent.parent / "bundles" / "faces-256")
"""The repository's default bundle, found from this package and not from the working folder:
its 64 px face generator draws the fixed seeds a 64->256 stage is judged on."""
NO_BASE = "none"
FIGURES: tuple[str, ...] = ("psnr", "ssim", "sharpness", "faces")
"""The figures every epoch of a run is judged by (``export.figures`` computes them), here
so that ``--best-by`` offers them without importing torch."""


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
    """How a run trains and is judged; stored in its checkpoint and required to match when it
    resumes (except ``epochs``, which is how far to go): figures of one run only compare
    across epochs when the held-out photographs and the fixed seeds stay the same."""

    crop: int = 128
    batch: int = 16
    epochs: int = 20
    steps_per_epoch: int = 100
    lr: float = 2e-4
    adversarial_weight: float = 5e-3
    gan_after: int = 500
    seed: int = 0
    holdout: str = ""
    """Folder of held-out photographs; empty: ``holdout_share`` of the training folder."""
    holdout_share: float = 0.2
    base: str = DEFAULT_BASE
    """Bundle whose first ``base_stages`` stages draw the fixed seeds; ``NO_BASE`` for none."""
    base_stages: int = 1
    eval_seeds: int = 16
