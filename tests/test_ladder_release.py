"""The ladder gives back what a rung holds when it leaves it, or when the rung fails to start:
on a GPU the next rung may need that memory, and device memory is not freed by the garbage
collector. Observed on real ONNX Runtime CPU sessions: a closed stage has let its session go,
and the session is freed while the test still holds the stage."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from conftest import DEFAULT_BUNDLE

from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.bundle import load_bundle
from installation.engine.faults import Faults, FaultyPipeline
from installation.engine.ladder import BackendLadder, Rung
from installation.engine.ort_stage import OnnxRuntimeStage
from installation.engine.pipeline import Pipeline


@dataclass
class Sessions:
    """The stages a rung loaded, and its sessions, watched without keeping them alive."""

    stages: list[OnnxRuntimeStage] = field(default_factory=list)
    sessions: list[weakref.ref[object]] = field(default_factory=list)


def watched_rung(
    name: str, sessions: Sessions, wrap: Callable[[Pipeline], Pipeline] = lambda p: p
) -> Rung:
    """A CPU rung whose ONNX Runtime stages are watched through ``sessions``."""
    bundle = load_bundle(DEFAULT_BUNDLE)

    def load() -> Pipeline:
        pipeline = Pipeline.load(bundle, OnnxRuntimeBackend(CPU, threads=1))
        for stage in pipeline.stages:
            assert isinstance(stage.model, OnnxRuntimeStage)
            sessions.stages.append(stage.model)
            sessions.sessions.append(weakref.ref(stage.model.session))
        return wrap(pipeline)

    return Rung(name, load)


def released(watched: Sessions) -> bool:
    gc.collect()
    closed = all(stage.session is None for stage in watched.stages)
    freed = all(session() is None for session in watched.sessions)
    return bool(watched.stages) and closed and freed


def runs(pipeline: Pipeline) -> bool:
    latents = np.zeros((1, pipeline.bundle.latent_size), dtype=np.float32)
    return pipeline.run(latents).dtype == np.uint8


def test_the_rung_left_by_a_fall_gives_its_sessions_back() -> None:
    first, second = Sessions(), Sessions()
    ladder = BackendLadder([watched_rung("first", first), watched_rung("second", second)])
    left = ladder.start()
    assert not released(first)
    assert ladder.fall(RuntimeError("engine lost"))
    assert released(first) and not released(second)
    left.close()  # a second close changes nothing
    assert runs(ladder.pipeline)


def test_a_rung_that_fails_its_first_frame_gives_its_sessions_back() -> None:
    broken, working = Sessions(), Sessions()
    ladder = BackendLadder(
        [
            watched_rung("broken", broken, lambda p: FaultyPipeline(p, Faults(crash_always=True))),
            watched_rung("working", working),
        ]
    )
    ladder.start()
    assert ladder.name == "working"
    assert released(broken) and not released(working)
    assert runs(ladder.pipeline)
