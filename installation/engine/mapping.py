"""A W bundle's mapping network: each keyframe's z to its w, once, remembered for a while.

The score asks for the w of keyframe (seed, index) every frame that needs it (two to four
keyframes per face, one face for seconds), so each is mapped once and kept; weeks of a show
reach millions of keyframes, so only the most recently used few hundred are kept. The mapping
runs on ONNX Runtime's CPU provider, one thread, one z at a time, whatever backend draws the
pictures: a keyframe's w then never depends on the GPU, on a batch size or on which frame
happened to need it first, so the same show time gives the same frame on every run. It runs
where frames are painted (the inference worker), never on the display's thread
(``installation.score.plan.Deferred``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.bundle import Bundle, WSpec, check_tensors, read_average, verify_w
from installation.engine.model import LoadedStage
from installation.errors import first_line
from installation.score.conductor import Conductor
from installation.score.show import Show
from installation.score.trajectory import keyframe
from installation.score.wspace import WSpace

#: Keyframe ws kept: a face needs four at most (two for a held face's morph, four with
#: Catmull-Rom tangents), twice with style mixing, and a crossfade two scenes' worth; a few
#: hundred leave room for /face/next, /seed and playlists, at w_dim 512 about 0.5 MiB.
CACHE_SIZE = 256


class MappingFailed(RuntimeError):
    """The mapping network failed while the show runs. It runs on the CPU whatever backend
    draws the pictures, so this is never the backend's fault: the supervisor restarts the
    worker rather than dropping the show to a slower backend that would fail the same way."""


class Mapping:
    """``mapping.onnx`` of a W bundle, checked against its ``[w]`` table; ``w(seed, index,
    label)`` is a keyframe's w. Safe to call from several threads."""

    def __init__(self, bundle: Bundle, cache_size: int = CACHE_SIZE) -> None:
        assert bundle.w is not None, "a Z bundle has no mapping"
        verify_w(bundle.w)
        self.spec: WSpec = bundle.w
        self.size = bundle.latent_size
        self.distribution = bundle.latent_distribution
        self.cache_size = cache_size
        self._backend = OnnxRuntimeBackend(CPU, threads=1)
        self._model: LoadedStage = self._backend.load(self.spec.mapping)
        wanted = {"z": (self.size,)}
        if self.spec.c_dim:
            wanted["c"] = (self.spec.c_dim,)
        check_tensors(self.spec.mapping, "input", self._model.inputs, wanted, False)
        check_tensors(
            self.spec.mapping, "output", self._model.outputs, {"w": (self.spec.w_dim,)}, False
        )
        self._cache: OrderedDict[tuple[int, int, int], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def map(self, z: np.ndarray, label: int = 0) -> np.ndarray:
        """One z [latent.size] (of class ``label`` in a conditional model) to its w, float32
        [w_dim]; no truncation."""
        extra = None
        if self.spec.c_dim:
            c = np.zeros((1, self.spec.c_dim), np.float32)
            c[0, label] = 1.0
            extra = {"c": c}
        try:
            w = self._model.run(np.ascontiguousarray(z, np.float32)[None, :], extra)[0]
        except Exception as exc:  # whatever ONNX Runtime raises, named as the mapping's
            raise MappingFailed(
                f"{self.spec.mapping}: mapping a keyframe failed (ONNX Runtime CPU, whatever "
                f"backend draws): {type(exc).__name__}: {first_line(exc)}"
            ) from exc
        return np.array(w, dtype=np.float32)

    def w(self, seed: int, index: int, label: int = 0) -> np.ndarray:
        """The w of ``keyframe(seed, index)``: mapped on first use, then from the cache."""
        key = (seed, index, label)
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
        # Mapped outside the lock: a duplicate computation is harmless, a held lock is not.
        w = self.map(keyframe(seed, index, self.size, self.distribution), label)
        w.flags.writeable = False
        with self._lock:
            self._cache[key] = w
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return w

    @property
    def cached(self) -> int:
        return len(self._cache)

    def space(self) -> WSpace:
        """The score's view of this W space: the average, the ws, and this mapping."""
        spec = self.spec
        return WSpace(
            average=read_average(spec),
            num_ws=spec.num_ws,
            c_dim=spec.c_dim,
            transform=spec.transform is not None,
            keyframe=self.w,
        )

    def close(self) -> None:
        self._backend.close()


def conductor_for(
    show: Show, bundle: Bundle, entropy: int | None = None, delay: float = 0.0
) -> Conductor:
    """A conductor for ``show`` playing ``bundle``: in W, with the bundle's mapping loaded
    (its files checked), for a W bundle. The mapping lives as long as the show. ``delay``:
    seconds after which a change takes effect (``Conductor``)."""
    wspace = None if bundle.w is None else Mapping(bundle).space()
    return Conductor(
        show, bundle.latent_size, bundle.latent_distribution, entropy, wspace, delay=delay
    )
