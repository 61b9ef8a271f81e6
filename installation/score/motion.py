"""How fast the picture moves at a cue's pace, in faces per second, from the cue alone.

Adaptive quality (installation.engine.quality) keeps a refinement stage while the picture
moves little between two generated frames, since the display's blending between them hides
small steps; it needs the pace before the motion happens, or a stage would be dropped in the
middle of every morph. So the pace here is the *peak* speed of what the cue will do, worked
out from its parameters rather than measured from frames: a few multiplications, cheap
enough to ask for every generated frame.

The unit is one face: the distance a morph walks from one face to the next. Two independent
keyframes lie ``sqrt(2 n)`` spreads apart in ``n`` dimensions, which is what turns breathing
(an offset of ``depth`` spreads per component) into the same unit. What counts:

* the walk's morphs: the easing's peak slope over the morph's seconds, times the speed;
* a morph that is bringing in a scene or a face (an ``Entry``), while it lasts;
* breathing at its fastest, and on top of it every beat still swelling, at its steepest.

Cuts are not motion (they show by invalidating the queue), and a crossfade is a blend of
pictures, which the display's own blending reproduces, so neither counts.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from installation.score.breathing import BEAT_MEMORY, BEAT_RISE, FREQUENCIES
from installation.score.cue import Cue
from installation.score.easing import get_easing

#: The distance between two faces in latent spreads, per sqrt(latent size).
_FACE = math.sqrt(2.0)
#: The fastest a drift of depth 1 moves (all its sinusoids at their steepest together), in
#: faces per second: ``breathing.drift`` scales its sum of sines to unit spread.
BREATH_SPEED = (
    math.sqrt(sum((2 * math.pi * f) ** 2 for f in FREQUENCIES) * 2 / len(FREQUENCIES)) / _FACE
)
#: The steepest rise of a beat's swell ``x^2 exp(2 (1 - x))`` (x in units of ``BEAT_RISE``),
#: per second: at x = 1 - 1/sqrt(2), where its second derivative is 0.
_X = 1.0 - 1.0 / math.sqrt(2.0)
SWELL_SLOPE = 2.0 * _X * (1.0 - _X) * math.exp(2.0 * (1.0 - _X)) / BEAT_RISE


@lru_cache(maxsize=8)
def peak_slope(easing: str) -> float:
    """The steepest slope of an easing curve (1 for linear, 1.5 for smoothstep), found on a
    fine grid so that every curve in ``installation.score.easing`` is covered alike."""
    x = np.linspace(0.0, 1.0, 4097)
    return float(np.max(np.diff(get_easing(easing)(x))) * (len(x) - 1))


def pace(cue: Cue, c: float) -> float:
    """The fastest the picture of ``cue`` moves from content time ``c`` on, faces per second."""
    trajectory = cue.walk.trajectory
    speed = max(cue.walk.speed.at(c), cue.walk.speed.target)
    walking = 0.0
    if trajectory.morph > 0:
        walking = speed * peak_slope(trajectory.easing) / trajectory.morph
    entry = cue.entry
    if entry is not None and entry.kind == "morph" and entry.progress(c) is not None:
        walking = max(walking, peak_slope(entry.easing) / entry.seconds)
    depth = max(cue.breathing.at(c), cue.breathing.target)
    if not depth:
        return walking
    modulation = cue.modulation
    breath = depth * modulation.level(c) * BREATH_SPEED
    swelling = sum(s for when, s in modulation.beats if c - when < BEAT_MEMORY)
    return walking + breath + depth * swelling * SWELL_SLOPE / _FACE
