"""Train-stage runs read for comparison, and ranked only where they compare.

A GAN's losses do not say whether its pictures got better, so runs are compared on the figures
every run records on data it never trains on (``history.json``, see ``export.figures``). A
figure is only ranked among runs that measured it on the same thing: PSNR and SSIM on the same
held-out photographs, tile, scale and repeats; sharpness and faces on the same base chain and
evaluation seeds, and sharpness, which is relative to the held-out tiles' detail, also on the
same held-out photographs and tile. Runs that differ are still shown, with one line per
difference saying which figures are not ranked across them, instead of a ranking that means
nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from export.figures import FIGURES, best_epoch, merit
from export.run_record import HISTORY_JSON
from installation.errors import UserError

HOLDOUT_FIGURES = ("psnr", "ssim")
CHAIN_FIGURES = ("sharpness", "faces")
ON_TILES = (*HOLDOUT_FIGURES, "sharpness")
"""The figures measured on, or relative to, the held-out tiles: sharpness is the chain's fine
detail over the tiles' (0.14 against one pair of photographs, 0.22 against another)."""
LABELS = {"psnr": "PSNR", "ssim": "SSIM", "sharpness": "sharpness", "faces": "faces"}


@dataclass(frozen=True)
class Run:
    """One run folder's ``history.json``: how it was measured and its figures per epoch."""

    name: str
    path: Path
    setup: dict[str, Any]
    baselines: dict[str, dict[str, float]]
    epochs: list[dict[str, Any]]


def _seeds(run: Run) -> str:
    seeds = list(run.setup["eval_seeds"])
    if len(seeds) > 2 and seeds == list(range(len(seeds))):
        return f"0-{len(seeds) - 1}"
    return ", ".join(str(seed) for seed in seeds) or "none"


def _base(run: Run) -> str:
    base = run.setup["base"]
    if base is None:
        return "none"
    return f"{base['name']} ({base['stages']} stage(s), {base['size']} px)"


#: What a figure is measured on: runs are ranked on a figure only where all of these agree.
#: (name, figures that depend on it, the value as the report shows it).
FACTS: tuple[tuple[str, tuple[str, ...], Callable[[Run], str]], ...] = (
    ("held-out photographs", ON_TILES, lambda run: ", ".join(run.setup["holdout"])),
    ("tile", ON_TILES, lambda run: f"{run.setup['tile']} px"),
    ("scale", HOLDOUT_FIGURES, lambda run: f"{run.setup['config']['scale']}x"),
    ("repeats", HOLDOUT_FIGURES, lambda run: str(run.setup["repeats"])),
    ("base", CHAIN_FIGURES, _base),
    ("eval seeds", CHAIN_FIGURES, _seeds),
)


def measured_on(run: Run, figure: str) -> tuple[str, ...]:
    """What ``figure`` of ``run`` was measured on; equal for runs whose figure compares."""
    return tuple(value(run) for _, figures, value in FACTS if figure in figures)


@dataclass(frozen=True)
class Rank:
    """1 is best, among ``of`` runs that compare on the figure."""

    place: int
    of: int

    def __str__(self) -> str:
        return f"{self.place} of {self.of}"


@dataclass(frozen=True)
class Entry:
    """A run in the comparison: its epoch chosen by ``--best-by``, its best epoch of every
    figure, its last epoch, and its rank per figure among the runs it compares with (``None``:
    the run has no value for that figure)."""

    run: Run
    best: dict[str, Any]
    best_of: dict[str, dict[str, Any]]
    last: dict[str, Any]
    ranks: dict[str, Rank | None]


@dataclass(frozen=True)
class Comparison:
    """``runs`` in the order given (the first is the reference for the side-by-side sheet, and
    colours follow this order whatever ``--best-by``); ``entries`` best first, grouped by what
    the ``best_by`` figure was measured on."""

    best_by: str
    runs: list[Run]
    entries: list[Entry]
    mismatches: list[str]


def load_history(path: Path, name: str) -> Run:
    """The run in folder ``path``; anything that is not a run with figures is one line."""
    file = path / HISTORY_JSON
    if not path.is_dir():
        raise UserError(f"{path}: no such run folder")
    if not file.is_file():
        raise UserError(
            f"{path}: no {HISTORY_JSON}: not a train-stage run, or one from before runs "
            "recorded their figures"
        )
    try:
        history = json.loads(file.read_text(encoding="utf-8"))
        if history["version"] != 1:
            raise UserError(f"{file}: version {history['version']}, this version reads 1")
        run = Run(name, path, history["run"], history["baselines"], list(history["epochs"]))
        for _, _, value in FACTS:
            value(run)
    except (OSError, ValueError, KeyError, TypeError) as error:
        detail = f"no {error}" if isinstance(error, KeyError) else str(error)
        raise UserError(f"{file}: not a readable run history ({detail})") from None
    if not run.epochs:
        raise UserError(f"{file}: no epoch finished yet")
    return run


def _names(paths: Sequence[Path]) -> list[str]:
    """Each run's folder name, or its path as given where two folders share a name."""
    if len({path.resolve() for path in paths}) < len(paths):
        raise UserError("the same RUN is given twice")
    names = [path.name or str(path) for path in paths]
    return [
        name if names.count(name) == 1 else str(path)
        for name, path in zip(names, paths, strict=True)
    ]


def _ranks(runs: list[Run], figure: str) -> dict[str, Rank | None]:
    """Each run's rank by its best value of ``figure`` among the runs whose ``figure`` was
    measured on the same thing; equal values share a rank. ``None``: the run has no value."""
    merits = {run.name: merit(figure, best_epoch(run.epochs, figure)[figure]) for run in runs}
    ranks: dict[str, Rank | None] = {}
    for run in runs:
        peers = [
            merits[other.name]
            for other in runs
            if measured_on(other, figure) == measured_on(run, figure)
            and merits[other.name] > -math.inf
        ]
        value = merits[run.name]
        ranks[run.name] = (
            None if value == -math.inf else Rank(1 + sum(p > value for p in peers), len(peers))
        )
    return ranks


def _mismatches(runs: list[Run]) -> list[str]:
    lines = []
    for fact, figures, value in FACTS:
        holders: dict[str, list[str]] = {}
        for run in runs:
            holders.setdefault(value(run), []).append(run.name)
        if len(holders) > 1:
            which = "; ".join(f"{key}: {', '.join(names)}" for key, names in holders.items())
            *others, last = (LABELS[figure] for figure in figures)
            shown = f"{', '.join(others)} and {last}"
            lines.append(f"not the same {fact} ({which}): {shown} not ranked across them")
    return lines


def compare_runs(paths: Sequence[Path], best_by: str) -> Comparison:
    runs = [load_history(path, name) for path, name in zip(paths, _names(paths), strict=True)]
    ranks = {figure: _ranks(runs, figure) for figure in FIGURES}
    entries = [
        Entry(
            run,
            best_epoch(run.epochs, best_by),
            {figure: best_epoch(run.epochs, figure) for figure in FIGURES},
            run.epochs[-1],
            {figure: ranks[figure][run.name] for figure in FIGURES},
        )
        for run in runs
    ]
    groups = list(dict.fromkeys(measured_on(run, best_by) for run in runs))
    entries.sort(
        key=lambda entry: (
            groups.index(measured_on(entry.run, best_by)),
            _place(entry.ranks[best_by]),
        )
    )
    return Comparison(best_by, runs, entries, _mismatches(runs))


def _place(rank: Rank | None) -> float:
    return math.inf if rank is None else rank.place
