"""``installation bench``: how fast this machine runs a show's bundle, and whether the
display keeps its rate while it does.

Medians, not means: exhibition PCs and CI machines are noisy, and one descheduled run should
not move the figure. Every measurement of one bench run happens on the same machine in the
same process, so rows can be compared as ratios.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import numpy as np

from installation.display import make_display
from installation.engine.convention import from_unit
from installation.engine.ladder import BackendLadder
from installation.engine.mapping import conductor_for
from installation.engine.pipeline import Pipeline
from installation.errors import UserError, first_line
from installation.player import play
from installation.progress import Progress
from installation.score.show import Show

WARMUP = 10


@dataclass(frozen=True)
class StageRow:
    backend: str
    stage: str
    batch: int
    latency_ms: float
    frames_per_s: float


@dataclass(frozen=True)
class DisplayRow:
    backend: str
    seconds: float
    target_fps: float
    display_fps: float
    max_interval_ms: float
    late_ticks: int
    ticks: int
    generated_fps: float


def median_seconds(
    run: Callable[[], object], budget: float, minimum: int = 20, warmup: int = WARMUP
) -> float:
    """Median wall time of ``run`` over at least ``minimum`` calls or ``budget`` seconds,
    after ``warmup`` calls (kernels chosen, memory allocated) that are not counted."""
    for _ in range(warmup):
        run()
    times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < minimum or time.perf_counter() < deadline:
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def stage_input(pipeline: Pipeline, index: int, batch: int, rng: np.random.Generator) -> np.ndarray:
    """A batch in the input convention of stage ``index``: latents for the first stage,
    random images for the others."""
    spec = pipeline.stages[index].spec
    shape = (batch, *spec.input_shape)
    if index == 0:
        return rng.standard_normal(shape, dtype=np.float32)
    assert spec.input_layout is not None and spec.input_range is not None
    width, height = pipeline.stages[index - 1].spec.output_size
    unit = rng.random((batch, 3, height, width), dtype=np.float32)
    return from_unit(unit, spec.input_layout, spec.input_range)


def time_stages(
    pipeline: Pipeline,
    batches: tuple[int, ...],
    rng: np.random.Generator,
    measure: Callable[[Callable[[], object]], float],
) -> Iterator[tuple[str, int, float]]:
    """Each stage alone on each of ``batches`` it takes (a fixed batch axis takes 1 only), on
    random input in its convention: (stage name, batch, ``measure``'s seconds)."""
    for index, stage in enumerate(pipeline.stages):
        for batch in batches:
            if batch > 1 and stage.model.inputs[0].shape[0] == 1:
                continue
            data = stage_input(pipeline, index, batch, rng)
            yield stage.spec.name, batch, measure(lambda s=stage, d=data: s.model.run(d))


def bench_stages(
    pipeline: Pipeline, batches: tuple[int, ...], budget: float, progress: Progress
) -> list[StageRow]:
    rng = np.random.default_rng(0)
    rows = []
    measure = functools.partial(median_seconds, budget=budget)
    for name, batch, seconds in time_stages(pipeline, batches, rng, measure):
        rows.append(StageRow(pipeline.backend_name, name, batch, seconds * 1e3, batch / seconds))
        progress.advance()
    latents = rng.standard_normal((1, pipeline.bundle.input_size), dtype=np.float32)
    # A scene may stop the chain early: each shorter chain is a rate the show can choose.
    for count in range(1, len(pipeline.stages) + 1):
        seconds = median_seconds(lambda c=count: pipeline.run(latents, stages=c), budget)
        name = pipeline.stages[count - 1].spec.name
        label = "whole pipeline" if count == len(pipeline.stages) else f"chain to {name}"
        rows.append(StageRow(pipeline.backend_name, label, 1, seconds * 1e3, 1 / seconds))
        progress.advance()
    return rows


def bench_display(pipeline: Pipeline, show: Show, fps: float, seconds: float) -> DisplayRow:
    """Run the real show loop headless while the worker generates, and measure its ticks."""
    bundle = pipeline.bundle
    conductor = conductor_for(show, bundle)
    display = make_display("headless")
    display.open("bench")
    try:
        result = play(display, pipeline, conductor, fps, lead=0.1, duration=seconds)
    finally:
        display.close()
    stats = result.stats
    return DisplayRow(
        backend=pipeline.backend_name,
        seconds=result.seconds,
        target_fps=fps,
        display_fps=1 / stats.median_interval if stats.median_interval else 0.0,
        max_interval_ms=stats.max_interval * 1e3,
        late_ticks=stats.late,
        ticks=len(stats.intervals),
        generated_fps=result.generated / result.seconds,
    )


def run_bench(
    ladder: BackendLadder,
    show: Show,
    batch: int,
    budget: float,
    display_seconds: float,
    fps: float,
) -> dict[str, list[dict[str, object]]]:
    """Every stage on every backend of ``ladder`` that loads, at batch 1 and ``batch``, then
    the display loop; backends that do not load are listed with the reason."""
    batches = (1, batch) if batch > 1 else (1,)
    pipelines: list[Pipeline] = []
    skipped: list[dict[str, object]] = []
    for rung in ladder.rungs:
        try:
            pipelines.append(rung.load())
        except Exception as exc:  # the reason is the result: this backend cannot run here
            skipped.append({"backend": rung.name, "reason": first_line(exc)})
    if not pipelines:
        reasons = "; ".join(f"{row['backend']}: {row['reason']}" for row in skipped)
        raise UserError(f"no backend can run bundle {show.bundle}: {reasons}")
    steps = sum(len(p.stages) * (len(batches) + 1) for p in pipelines)
    progress = Progress("benchmarking", steps)
    stage_rows = [row for p in pipelines for row in bench_stages(p, batches, budget, progress)]
    progress.finish()
    display_rows = [bench_display(p, show, fps, display_seconds) for p in pipelines]
    return {
        "skipped": skipped,
        "stages": [asdict(row) for row in stage_rows],
        "display": [asdict(row) for row in display_rows],
    }


def format_table(rows: list[dict[str, object]]) -> str:
    """A plain text table: numbers right-aligned, floats with sensible precision."""
    if not rows:
        return ""
    headers = list(rows[0])
    cells = [[_cell(row[h]) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return str(value)
