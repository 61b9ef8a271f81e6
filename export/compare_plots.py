"""The pictures of a run comparison: every figure over epochs (matplotlib, PNG and SVG) and the
evaluation seeds' contact sheets of each run's best epoch, side by side.

Plots are drawn on matplotlib's Agg canvas without pyplot: no window, no global figure state,
so a comparison runs the same on a headless workshop machine and in tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

from installation.errors import UserError

try:
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator
    from matplotlib.transforms import blended_transform_factory
except ImportError:
    raise UserError(
        "installation export compare needs matplotlib: pip install -e '.[export]'"
    ) from None

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from export.compare_runs import Run

#: Panel title and y axis of each figure, in FIGURES order.
PANELS = {
    "psnr": ("PSNR on held-out tiles", "dB"),
    "ssim": ("SSIM on held-out tiles", "SSIM"),
    "sharpness": ("sharpness (1 = as detailed as the photographs)", "ratio, log scale"),
    "faces": ("faces: seeds with one frontal face", "share of the seeds"),
}
BASELINE_STYLES = {"bicubic": "--", "bilinear": ":"}
MARKERS = "osD^vP*X"
"""A marker per run, so runs whose lines lie on top of each other are still told apart."""
MARGIN = 10
FONT_SIZE = 14
LINE_HEIGHT = 18
NOT_COMPARABLE = (160, 0, 0)


def plot_figures(runs: Sequence[Run], stem: Path) -> None:
    """``stem``.png and ``stem``.svg: one panel per figure over epochs, one line per run; the
    bilinear and bicubic baselines dashed where they apply (PSNR, SSIM), each distinct set
    once; sharpness 1 (the photographs' own detail) dashed."""
    figure = Figure(figsize=(12, 8), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, 2).flatten()
    colours = [f"C{index % 10}" for index in range(len(runs))]
    markers = [MARKERS[index % len(MARKERS)] for index in range(len(runs))]
    for ax, name in zip(axes, PANELS, strict=True):
        title, unit = PANELS[name]
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(unit)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        for run, colour, marker in zip(runs, colours, markers, strict=True):
            kept = [epoch for epoch in run.epochs if epoch.get(name) is not None]
            values = [epoch[name] for epoch in kept]
            epochs = [epoch["epoch"] for epoch in kept]
            ax.plot(epochs, values, marker=marker, ms=4, color=colour, label=run.name)
        if name in ("psnr", "ssim"):
            _baselines(ax, runs, colours, name)
    axes[2].set_yscale("log")
    _reference(axes[2], 1.0, "photographs", "0.4")
    axes[3].set_ylim(-0.05, 1.05)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=min(len(runs), 4))
    figure.savefig(stem.with_suffix(".png"), dpi=100)
    # Text as text, so the run names can be found and edited; no date, so the same runs
    # give the same file.
    with rc_context({"svg.fonttype": "none"}):
        figure.savefig(stem.with_suffix(".svg"), metadata={"Date": None})


def _baselines(ax: Axes, runs: Sequence[Run], colours: list[str], name: str) -> None:
    """Each distinct set of baselines once: grey when all runs share it, else in the colour
    of the first run that has it."""
    sets: dict[tuple[float, float], str] = {}
    for run, colour in zip(runs, colours, strict=True):
        values = (run.baselines["bilinear"][name], run.baselines["bicubic"][name])
        sets.setdefault(values, colour)
    for values, colour in sets.items():
        for kind, value in zip(("bilinear", "bicubic"), values, strict=True):
            _reference(ax, value, kind, "0.4" if len(sets) == 1 else colour, BASELINE_STYLES[kind])


def _reference(ax: Axes, value: float, label: str, colour: str, style: str = "--") -> None:
    """A horizontal line across the panel, named at its right end."""
    ax.axhline(value, linestyle=style, linewidth=1, color=colour)
    where = blended_transform_factory(ax.transAxes, ax.transData)
    ax.text(1.0, value, f" {label}", transform=where, va="center", fontsize=8, color=colour)


@dataclass(frozen=True)
class Placed:
    """A contact sheet for the side-by-side sheet, with the lines of its label above it."""

    sheet: Path
    lines: list[str]
    comparable: bool


def side_by_side(placed: Sequence[Placed], path: Path) -> list[tuple[int, int]]:
    """Paste the sheets in a row, each under its label, at their own size (no resampling, so
    detail compares); labels of sheets that are not comparable are red. Returns the top-left
    corner of each sheet."""
    font = ImageFont.load_default(size=FONT_SIZE)
    images = []
    for item in placed:
        try:
            with Image.open(item.sheet) as image:
                images.append(image.convert("RGB"))
        except OSError as error:
            raise UserError(f"{item.sheet}: not a readable contact sheet ({error})") from None
    band = max((len(item.lines) for item in placed), default=0) * LINE_HEIGHT + MARGIN
    widths = [
        max(image.width, *(round(font.getlength(line)) for line in item.lines))
        for item, image in zip(placed, images, strict=True)
    ]
    height = MARGIN + band + max((image.height for image in images), default=0) + MARGIN
    canvas = Image.new("RGB", (MARGIN + sum(width + MARGIN for width in widths), height), "white")
    draw = ImageDraw.Draw(canvas)
    corners, left = [], MARGIN
    for item, image, width in zip(placed, images, widths, strict=True):
        colour = (0, 0, 0) if item.comparable else NOT_COMPARABLE
        for row, line in enumerate(item.lines):
            draw.text((left, MARGIN + row * LINE_HEIGHT), line, fill=colour, font=font)
        corners.append((left, MARGIN + band))
        canvas.paste(image, corners[-1])
        left += width + MARGIN
    canvas.save(path)
    return corners
