"""Compare train-stage runs: ``installation export compare RUN [RUN ...] --out DIR``.

Writes the comparison an artist reads (``figures.md``, with the plots and the side-by-side
sheet) and the same table for machines (``figures.csv``, ``figures.json``); the terminal gets
the first table and the differences between the runs. How runs are read and ranked is
``export.compare_runs``; the pictures are ``export.compare_plots``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from export.bundle_writer import staged_bundle
from export.compare_plots import Placed, plot_figures, side_by_side
from export.compare_runs import CHAIN_FIGURES, FACTS, LABELS, Comparison, Entry, Rank, compare_runs
from export.figures import FIGURES
from export.run_record import sheet_path


def shown(figure: str, record: dict[str, Any]) -> str:
    """A figure as the tables show it: faces as found/seeds, the others rounded."""
    value = record.get(figure)
    if value is None:
        return "-"
    if figure == "faces":
        return f"{record['faces_found']}/{record['faces_of']}"
    return {"psnr": f"{value:.2f} dB", "ssim": f"{value:.4f}", "sharpness": f"{value:.3f}"}[figure]


def _rank(rank: Rank | None) -> str:
    return "-" if rank is None else str(rank)


def best_table(comparison: Comparison) -> list[list[str]]:
    """Header and rows: every run at its epoch chosen by ``--best-by``, in rank order."""
    by = comparison.best_by
    header = [f"rank ({LABELS[by]})", "run", "epoch", *(LABELS[f] for f in FIGURES)]
    rows = [
        [
            _rank(entry.ranks[by]),
            entry.run.name,
            f"{entry.best['epoch']}/{entry.last['epoch']}",
            *(shown(figure, entry.best) for figure in FIGURES),
        ]
        for entry in comparison.entries
    ]
    return [header, *rows]


def _figure_tables(comparison: Comparison) -> tuple[list[list[str]], list[list[str]]]:
    """The best of every figure (value, epoch, rank) and the last epoch's figures."""
    best = [["run", *(f"{LABELS[f]} (epoch, rank)" for f in FIGURES)]]
    last = [["run", "epoch", *(LABELS[f] for f in FIGURES)]]
    for entry in comparison.entries:
        best.append(
            [
                entry.run.name,
                *(
                    f"{shown(f, entry.best_of[f])} ({entry.best_of[f]['epoch']}, "
                    f"{_rank(entry.ranks[f])})"
                    for f in FIGURES
                ),
            ]
        )
        last.append(
            [entry.run.name, str(entry.last["epoch"]), *(shown(f, entry.last) for f in FIGURES)]
        )
    return best, last


def _data_table(comparison: Comparison) -> list[list[str]]:
    """What each run was measured on: the held-out photographs (``FACTS[0]``) with where they
    came from, the other facts as they are, and the baselines."""
    facts = [fact for fact, _, _ in FACTS[1:]]
    rows = [["run", "training images", "held-out (source)", *facts, "bilinear", "bicubic"]]
    for entry in comparison.entries:
        run = entry.run
        holdout = f"{', '.join(run.setup['holdout'])} ({run.setup['holdout_source']})"
        baselines = [
            f"{run.baselines[kind]['psnr']:.2f} dB, SSIM {run.baselines[kind]['ssim']:.4f}"
            for kind in ("bilinear", "bicubic")
        ]
        measured = [value(run) for _, _, value in FACTS[1:]]
        rows.append(
            [run.name, str(len(run.setup["training_images"])), holdout, *measured, *baselines]
        )
    return rows


def text_table(rows: list[list[str]]) -> str:
    """Columns aligned with spaces, for the terminal."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _markdown_table(rows: list[list[str]]) -> str:
    lines = [f"| {' | '.join(row)} |" for row in rows]
    lines.insert(1, f"|{'---|' * len(rows[0])}")
    return "\n".join(lines)


def _report(comparison: Comparison, missing: list[str]) -> str:
    by = LABELS[comparison.best_by]
    best, last = _figure_tables(comparison)
    differences = comparison.mismatches or [
        "all runs share held-out photographs, tile, scale, repeats, base and eval seeds: "
        "every figure is ranked across all of them"
    ]
    parts = [
        "# Training runs compared",
        f"Runs: {', '.join(f'`{entry.run.path}`' for entry in comparison.entries)}. "
        f"PSNR and SSIM on held-out tiles (higher is better); sharpness relative to the "
        f"held-out photographs (1 is as detailed; nearer 1 is better); faces: fixed-seed chain "
        f"outputs with one frontal face.",
        "\n".join(f"- {line}" for line in differences + missing),
        f"## At the best epoch by {by}",
        _markdown_table(best_table(comparison)),
        "## The best of every figure",
        _markdown_table(best),
        "## At the last epoch",
        _markdown_table(last),
        "## What each run was measured on",
        _markdown_table(_data_table(comparison)),
        "## Figures over epochs",
        "![figures over epochs](figures.png)",
        f"## The evaluation seeds at each run's best epoch by {by}",
        "![side by side](side-by-side.png)",
    ]
    return "\n\n".join(parts) + "\n"


def _record(entry: Entry, best_by: str) -> dict[str, Any]:
    run = entry.run
    figures = {figure: entry.best_of[figure][figure] for figure in FIGURES}
    return {
        "run": run.name,
        "path": str(run.path),
        "best": {"by": best_by, **{k: entry.best.get(k) for k in ("epoch", *FIGURES)}},
        "last": {k: entry.last.get(k) for k in ("epoch", *FIGURES)},
        "best_of": figures,
        "best_of_epoch": {figure: entry.best_of[figure]["epoch"] for figure in FIGURES},
        "rank": {figure: rank and rank.place for figure, rank in entry.ranks.items()},
        "ranked_among": {figure: rank and rank.of for figure, rank in entry.ranks.items()},
        "baselines": run.baselines,
        "training_images": len(run.setup["training_images"]),
        "holdout": " ".join(run.setup["holdout"]),
        "holdout_source": run.setup["holdout_source"],
        **{fact.replace(" ", "_"): value(run) for fact, _, value in FACTS[1:]},
    }


def _flat(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"best": {"psnr": 1}}`` as ``{"best_psnr": 1}``, for the CSV."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}_"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _csv(records: list[dict[str, Any]]) -> str:
    rows = [_flat(record) for record in records]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def _sheets(comparison: Comparison) -> tuple[list[Placed], list[str]]:
    """Each run's contact sheet of its best epoch, labelled; the first RUN given is the
    reference: a sheet drawn from another base or other seeds is marked as not comparable."""
    reference = comparison.runs[0]
    placed, missing = [], []
    for entry in comparison.entries:
        run, epoch = entry.run, entry.best["epoch"]
        sheet = sheet_path(run.path, epoch)
        if not sheet.is_file():
            missing.append(f"{sheet}: missing, so {run.name} is not in side-by-side.png")
            continue
        value = shown(comparison.best_by, entry.best)
        lines = [run.name, f"epoch {epoch}, {LABELS[comparison.best_by]} {value}"]
        other = [
            fact
            for fact, figures, get in FACTS
            if figures == CHAIN_FIGURES and get(run) != get(reference)
        ]
        if other:
            lines.append(f"not comparable: other {' and '.join(other)}")
        placed.append(Placed(sheet, lines, not other))
    return placed, missing


def compare(paths: Sequence[Path], out: Path, best_by: str, force: bool) -> str:
    """Write the comparison of the runs in ``paths`` into ``out``; returns what the terminal
    shows: the table at the best epochs and the differences between the runs."""
    comparison = compare_runs(paths, best_by)
    placed, missing = _sheets(comparison)
    records = [_record(entry, best_by) for entry in comparison.entries]
    with staged_bundle(out, force) as staging:
        (staging / "figures.md").write_text(_report(comparison, missing), encoding="utf-8")
        (staging / "figures.csv").write_text(_csv(records), encoding="utf-8")
        document = {"version": 1, "best_by": best_by, "differences": comparison.mismatches}
        text = json.dumps({**document, "runs": records}, indent=2)
        (staging / "figures.json").write_text(text + "\n", encoding="utf-8")
        plot_figures(comparison.runs, staging / "figures")
        side_by_side(placed, staging / "side-by-side.png")
    return "\n".join([text_table(best_table(comparison)), *comparison.mismatches, *missing])
