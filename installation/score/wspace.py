"""Motion in W: how the faces of a StyleGAN bundle move, as a pure function of time.

A W bundle's mapping turns each keyframe's z (the same ``keyframe(seed, index)`` as a Z
bundle's) into a w, and faces move between those ws, relative to the average w: in W a
straight line is a good path (the mapping has already unwarped the Gaussian shell that makes
Z need slerp), truncation is the lerp ``w_avg + psi (w - w_avg)`` the models were trained to
expect, and style mixing is a choice of w per synthesis layer.

The path through the keyframes is a cubic Hermite spline in the *eased* morph parameter
``u = easing(progress)``, so that the velocity is continuous at every keyframe (C1) and a
face never kinks there:

* Catmull-Rom tangents, half the difference of the neighbouring keyframes, so the walk
  flows through each face along a curve instead of turning a corner there. The velocity at
  a keyframe is ``tangent * easing'(end) / morph`` from both sides, and every easing has the
  same slope at both ends (1 for linear, 0 for the others), so it is continuous; with a
  hold, a held face is at rest and so is a morph's every end (slope 0). The first face's
  tangent is 0: the walk starts from rest, as the transition that brings a scene in (or a
  restarted scene, a new seed) ends at rest, so a scene begun again joins its entry
  without a kink. A new ``/hold`` mid-morph keeps the morph's progress and so its point on
  the same curve: the face does not move where the change lands.
* ``hold > 0`` with the ``linear`` easing, whose slope at the ends is not 0: tangents are
  zero, so that a morph leaves and reaches its held faces at rest. Each morph is then the
  straight segment between two faces, traversed by the Hermite blend of ``u`` (smoothstep
  of the progress). Here alone a ``/hold`` between 0 and more mid-morph changes the curve
  under the face, which moves by up to about a tenth of the way between two faces, once.

At a keyframe time the result is that keyframe's w exactly: the offsets are exact float64
differences of float32 values, and nothing is added to them there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from installation.score.easing import get_easing
from installation.score.plan import Deferred, Layer
from installation.score.ramp import Ramp
from installation.score.trajectory import Trajectory

#: (seed, index, label) -> the mapped w of ``keyframe(seed, index)`` for class ``label``,
#: float32 [w_dim]; the engine's mapping (``installation.engine.mapping``), which caches.
KeyframeW = Callable[[int, int, int], np.ndarray]
#: A view part that stays at 0: no rotation, no translation.
STILL = Ramp.constant(0.0)


@dataclass(frozen=True, eq=False)
class WSpace:
    """A W bundle's latent space as the score needs it: the average w, the synthesis's
    number of ws, the classes of a conditional model, whether the synthesis takes an input
    transform, and the mapped keyframes."""

    average: np.ndarray
    num_ws: int
    c_dim: int
    transform: bool
    keyframe: KeyframeW

    @property
    def w_dim(self) -> int:
        return len(self.average)

    @property
    def size(self) -> int:
        """Values per layer of a frame plan: the ws, then the view (``View``) if any."""
        return self.num_ws * self.w_dim + (3 if self.transform else 0)

    def offset(self, seed: int, index: int, label: int) -> np.ndarray:
        """Keyframe ``index``'s w minus the average, float64 (exact: both are float32)."""
        w = self.keyframe(seed, index, label).astype(np.float64)
        return w - self.average.astype(np.float64)

    def offset_at(self, trajectory: Trajectory, t: float, label: int) -> np.ndarray:
        """Where ``trajectory`` (its seed, hold, morph and easing) is at trajectory time
        ``t``, as float64 w - w_avg on the spline the module docstring describes."""
        index, phase = trajectory.position_at(t)
        here = self.offset(trajectory.seed, index, label)
        if phase < trajectory.hold:
            return here
        there = self.offset(trajectory.seed, index + 1, label)
        u = float(get_easing(trajectory.easing)((phase - trajectory.hold) / trajectory.morph))
        if trajectory.hold > 0 and trajectory.easing == "linear":
            return hermite(here, there, 0.0, 0.0, u)
        before = self.offset(trajectory.seed, index - 1, label) if index > 0 else None
        start = 0.0 if before is None else 0.5 * (there - before)
        end = 0.5 * (self.offset(trajectory.seed, index + 2, label) - here)
        return hermite(here, there, start, end, u)

    def ws(
        self,
        offset: np.ndarray,
        mixed: tuple[int, np.ndarray] | None,
        psi: float,
        breath: np.ndarray | float,
        view: tuple[float, float, float],
    ) -> np.ndarray:
        """A layer's values: ``num_ws`` ws from ``offset`` (layers from ``mixed[0]`` on
        from ``mixed[1]``), each moved by ``breath``, truncated toward the average by
        ``psi``, flattened; then the ``view`` where the synthesis takes a transform."""
        rows = np.repeat(offset[None, :], self.num_ws, axis=0)
        if mixed is not None:
            rows[mixed[0] :] = mixed[1]
        ws = self.average.astype(np.float64) + psi * (rows + breath)
        values = ws.astype(np.float32).ravel()
        if self.transform:
            values = np.concatenate([values, np.asarray(view, dtype=np.float32)])
        return values

    @staticmethod
    def blend(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
        """From layer values ``a`` (a transition's still start) to ``b`` (a face at rest) at
        eased progress ``t``: the straight line, with zero tangents at both ends like a
        linear morph between held faces, so a transition is C1 whatever the easing."""
        a64 = a.astype(np.float64)
        return hermite(a64, b.astype(np.float64), 0.0, 0.0, t).astype(np.float32)


class Blend(Deferred):
    """A W morph's layer values at one moment: eased ``progress`` of the way from the picture
    ``source`` to ``target`` (``WSpace.blend``), computed where the frame is painted.

    A transition begun during a morph starts from that morph's picture, which may itself
    start from another's: while no frame is painted (closing hours, when the display still
    moves playlists on; a worker restarting; cuts faster than frames) the chain grows by one
    per cut, thousands in a night. Deferred values asking each other in turn would then
    overflow Python's stack, in the worker, each time it tried again. So the pending steps
    are computed oldest first, in a loop, each asking only for a value already there; and
    each lets go of its pictures once it has its own, which frees the chain behind it."""

    def __init__(self, space: WSpace, source: Layer, target: Layer, progress: float) -> None:
        super().__init__(self._chain)
        self._parts: tuple[WSpace, Layer, Layer, float] | None = (space, source, target, progress)

    def _pending_source(self) -> Blend | None:
        """The step this one starts from, if that is a blend not computed yet."""
        parts = self._parts
        source = None if parts is None else parts[1].value
        return source if isinstance(source, Blend) and source._parts is not None else None

    def _chain(self) -> np.ndarray:
        pending: list[Blend] = []
        step = self._pending_source()
        while step is not None:
            pending.append(step)
            step = step._pending_source()
        for step in reversed(pending):
            step.get()
        parts = self._parts
        assert parts is not None
        space, source, target, progress = parts
        value = space.blend(source.latent, target.latent, progress)
        self._parts = None
        return value


def hermite(
    p0: np.ndarray, p1: np.ndarray, m0: np.ndarray | float, m1: np.ndarray | float, u: float
) -> np.ndarray:
    """The cubic from ``p0`` (u = 0, tangent ``m0``) to ``p1`` (u = 1, tangent ``m1``);
    at u = 0 it is ``p0`` exactly."""
    u2 = u * u
    return p0 + u2 * (3.0 - 2.0 * u) * (p1 - p0) + u * (1.0 - u) ** 2 * m0 + u2 * (u - 1.0) * m1


def breath_scale(offset: np.ndarray) -> float:
    """How far a breathing depth of 1 moves a face in W: its root-mean-square distance from
    the average per component. W has no unit spread as Z has, and a face's own distance is
    the scale at which its features change, so a depth means the same for any model."""
    return float(np.linalg.norm(offset)) / math.sqrt(len(offset))


@dataclass(frozen=True)
class View:
    """The StyleGAN3 input transform a scene asks for, each part gliding like truncation:
    rotation in degrees, translation x and y in the synthesis's input coordinates."""

    rotate: Ramp = STILL
    x: Ramp = STILL
    y: Ramp = STILL

    def at(self, c: float) -> tuple[float, float, float]:
        return self.rotate.at(c), self.x.at(c), self.y.at(c)

    def to(
        self,
        c: float,
        seconds: float,
        rotate: float | None = None,
        translate: tuple[float, float] | None = None,
    ) -> View:
        """The view gliding from its value at ``c`` to a new rotation and/or translation."""
        x, y = (self.x.target, self.y.target) if translate is None else translate
        return View(
            self.rotate.to(self.rotate.target if rotate is None else rotate, c, seconds),
            self.x.to(x, c, seconds),
            self.y.to(y, c, seconds),
        )


#: The view of a scene that neither turns nor moves the picture.
UPRIGHT = View()


def transform_matrix(view: tuple[float, float, float]) -> np.ndarray:
    """The synthesis's input transform for a view: the inverse of the rotation by ``view[0]``
    degrees then translation by ``view[1:]``, as StyleGAN3 takes it (it maps output
    coordinates back to input ones). float64 [3, 3]."""
    angle = math.radians(view[0])
    cos, sin = math.cos(angle), math.sin(angle)
    forward = np.array([[cos, sin, view[1]], [-sin, cos, view[2]], [0.0, 0.0, 1.0]])
    return np.linalg.inv(forward)
