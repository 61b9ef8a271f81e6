"""Everything that can be known about a bundle without a screen, in one place.

``installation check``, the start of ``installation run`` (before any backend is tried), a
reload of the show file and the workshop's export all call ``check_bundle``, so a bundle that
one of them accepts is one the next start accepts too. Beyond the manifest, the files and
their sha256 values, and each model's declared inputs and outputs, it runs every stage once on
a sample, because a manifest can be valid and still wrong in a way only the pictures show: a
``range`` of [0, 255] for a model that draws 0..1 is a black screen that exits 0.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.bundle import Bundle, StageSpec
from installation.engine.mapping import Mapping
from installation.engine.pipeline import Pipeline, load_stages
from installation.errors import UserError
from installation.score.trajectory import keyframe
from installation.score.wspace import UPRIGHT

log = logging.getLogger(__name__)

#: Latents in the sample: enough values to judge a range, few enough to stay well under a
#: second on one core.
SAMPLE_SIZE = 2
SAMPLE_SEED = 0


@dataclass(frozen=True)
class Limits:
    """How far a stage's sample output may stray, on the 0..1 scale its ``range`` maps to.

    Refused: what would certainly look broken on screen (a flat picture, or a range wrong by a
    wide margin). Warned: what may be the model's own character (some clipped highlights, a
    dark or low-contrast output) but is more often a slightly wrong range.
    """

    #: Less than this spread between the 1st and 99th percentile is a flat picture: about 5
    #: of 255 grey levels, what a 0..1 model declared as [0, 255] draws.
    flat: float = 0.02
    #: Values further outside than this (a whole range's width) are "far outside".
    far: float = 1.0
    #: Refused when more than this share of the values is far outside.
    far_share: float = 0.5
    #: Values outside by more than this are clipped visibly ...
    clipped: float = 0.05
    #: ... and a warning when more than this share is.
    clipped_share: float = 0.01
    #: A spread below this uses too little of the range: a warning.
    dim: float = 0.25


LIMITS = Limits()


def check_bundle(bundle: Bundle, limits: Limits = LIMITS) -> list[str]:
    """Check ``bundle`` as a start would, and run its stages once on a sample (on ONNX
    Runtime's CPU provider on one thread: callers may be running a show on the other cores).

    Raises UserError naming the file (and stage) for the first problem that would fail or
    blacken a show; returns the warnings (already logged) for what merely looks doubtful.
    """
    backend = OnnxRuntimeBackend(CPU, threads=1)
    try:
        return _judge_sample(
            bundle, Pipeline(bundle, load_stages(bundle, backend), backend.name), limits
        )
    finally:
        backend.close()  # the sessions go now, not whenever the collector finds them


def keyframe_latents(bundle: Bundle, seed: int, count: int) -> np.ndarray:
    """Latents drawn like a show's first faces: keyframes 0.. of ``seed``; for a W bundle
    mapped (class 0), each w in every ws, upright, as a scene shows them."""
    if bundle.w is None:
        return np.stack(
            [
                keyframe(seed, index, bundle.latent_size, bundle.latent_distribution)
                for index in range(count)
            ]
        )
    mapping = Mapping(bundle, cache_size=count)
    try:
        space = mapping.space()
        latents = np.stack(
            [
                space.ws(space.offset(seed, index, 0), None, 1.0, 0.0, UPRIGHT.at(0.0))
                for index in range(count)
            ]
        )
    finally:
        mapping.close()
    if not np.isfinite(latents).all():  # named here, not as the synthesis drawing NaN
        raise UserError(
            f"{bundle.w.mapping}: the mapping gives NaN or infinite values for the sample's "
            f"z (seed {seed})"
        )
    return latents


def _judge_sample(bundle: Bundle, pipeline: Pipeline, limits: Limits) -> list[str]:
    latents = keyframe_latents(bundle, SAMPLE_SEED, SAMPLE_SIZE)
    warnings = []
    batch, extra = pipeline.first_input(latents), pipeline.first_extra(latents)
    outputs = (unit for _, unit in pipeline.walk(batch, extra=extra))
    for stage, unit in zip(bundle.stages, outputs, strict=True):
        warning = judge_output(stage, unit, limits)
        if warning:
            log.warning("%s", warning)
            warnings.append(warning)
    return warnings


def judge_output(stage: StageSpec, unit: np.ndarray, limits: Limits = LIMITS) -> str | None:
    """A warning for a stage's sample output (NCHW, its ``range`` mapped to 0..1), None when
    it looks right; UserError when it would not show a picture."""
    low, high = stage.range
    raw = unit * (high - low) + low

    def problem(what: str) -> str:
        return (
            f"{stage.path}: stage {stage.name!r} {what} (range = [{low:g}, {high:g}] in the "
            f"manifest; a sample drew {float(raw.min()):.4g} to {float(raw.max()):.4g})"
        )

    if not np.isfinite(unit).all():
        raise UserError(f"{stage.path}: stage {stage.name!r} draws NaN or infinite values")
    if raw.min() == raw.max():
        raise UserError(problem("draws one flat value everywhere: broken or untrained weights?"))
    spread = float(np.subtract(*np.percentile(unit, [99, 1])))
    far = float(np.mean((unit < -limits.far) | (unit > 1 + limits.far)))
    if far > limits.far_share:
        raise UserError(problem(f"draws {far:.0%} of its values far outside its range"))
    if spread < limits.flat:
        raise UserError(
            problem(f"uses {spread:.1%} of its range: the picture would be flat; is range right?")
        )
    clipped = float(np.mean((unit < -limits.clipped) | (unit > 1 + limits.clipped)))
    if clipped > limits.clipped_share:
        return problem(f"draws {clipped:.0%} of its values outside its range: clipped on screen")
    if spread < limits.dim:
        return problem(f"uses only {spread:.0%} of its range: a dim or low-contrast picture")
    return None
