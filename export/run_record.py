"""What a training run leaves for people and for ``export compare``: its history as JSON and
CSV, a contact sheet of the fixed seeds per epoch with an animated strip of the latest, and the
weights of the best epoch by each figure.

Everything here is rewritten after every epoch through a temporary file and a rename, so a
run stopped at any moment (training runs for hours and is stopped with Ctrl-C) leaves every
file either as it was or whole, and a reader (``compare`` on a run still training) never sees
half a file.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from export.figures import FIGURES, best_epoch
from installation.engine.convention import to_rgb8
from installation.files import write_atomic

HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"
HISTORY_VERSION = 1
SHEETS = "sheets"
STRIP = "strip.gif"
BEST = "best"
STRIP_EPOCHS = 10
STRIP_WIDTH = 384
"""The strip's frames are downscaled to this width: it is for seeing the trend, and a GIF
of ten full sheets of 256 px faces would run to many megabytes."""
STRIP_FRAME_MS = 600
GAP = 2


def write_history(
    out: Path, run: dict[str, Any], baselines: dict[str, Any], epochs: list[dict[str, Any]]
) -> None:
    """``history.json`` (the run, its baselines and every epoch) and ``history.csv`` (one
    row per epoch, an empty cell where a figure has no value)."""
    document = {"version": HISTORY_VERSION, "run": run, "baselines": baselines, "epochs": epochs}
    text = json.dumps(document, indent=1, ensure_ascii=False) + "\n"
    write_atomic(out / HISTORY_JSON, text.encode("utf-8"))
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    if epochs:
        writer.writerow(list(epochs[0]))
        writer.writerows([["" if v is None else v for v in epoch.values()] for epoch in epochs])
    write_atomic(out / HISTORY_CSV, table.getvalue().encode("utf-8"))


def sheet_path(out: Path, epoch: int) -> Path:
    return out / SHEETS / f"epoch-{epoch:04d}.png"


def write_sheet(out: Path, epoch: int, images: np.ndarray) -> None:
    """The fixed seeds' pictures (N, 3, H, W in 0..1) in a grid, seed order row-major, the
    same grid in every run; then the strip of the latest sheets, this one last."""
    frames = to_rgb8(np.ascontiguousarray(images, dtype=np.float32))
    count, height, width = frames.shape[:3]
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    sheet = np.zeros((GAP + rows * (height + GAP), GAP + columns * (width + GAP), 3), np.uint8)
    for index, frame in enumerate(frames):
        row, column = divmod(index, columns)
        top, left = GAP + row * (height + GAP), GAP + column * (width + GAP)
        sheet[top : top + height, left : left + width] = frame
    sheet_path(out, epoch).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(sheet_path(out, epoch), _encoded(Image.fromarray(sheet), "PNG"))
    _write_strip(out, epoch)


def _write_strip(out: Path, epoch: int) -> None:
    """``strip.gif``: the sheets of the last ``STRIP_EPOCHS`` epochs, one frame each,
    downscaled, with the epoch written in the corner."""
    frames = []
    for number in range(max(1, epoch - STRIP_EPOCHS + 1), epoch + 1):
        path = sheet_path(out, number)
        if not path.is_file():
            continue
        with Image.open(path) as sheet:
            height = round(sheet.height * STRIP_WIDTH / sheet.width)
            frame = sheet.convert("RGB").resize((STRIP_WIDTH, height), Image.Resampling.BOX)
        draw = ImageDraw.Draw(frame)
        draw.rectangle((0, 0, 70, 14), fill=(0, 0, 0))
        draw.text((3, 2), f"epoch {number}", fill=(255, 255, 255))
        frames.append(frame)
    buffer = io.BytesIO()
    frames[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=STRIP_FRAME_MS,
        loop=0,
    )
    write_atomic(out / SHEETS / STRIP, buffer.getvalue())


def _encoded(image: Image.Image, kind: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=kind)
    return buffer.getvalue()


def best_path(out: Path, figure: str) -> Path:
    return out / BEST / f"{figure}.pt"


def keep_best(out: Path, epochs: list[dict[str, Any]], generator: dict[str, torch.Tensor]) -> None:
    """Keep ``generator`` (the last epoch's weights) as ``best/<figure>.pt`` for every figure
    by which the last epoch is the best so far (``best_epoch``: on a tie the later epoch).
    A figure without a value (no faces without a base) keeps nothing."""
    last = epochs[-1]
    for figure in FIGURES:
        if last[figure] is None or best_epoch(epochs, figure)["epoch"] != last["epoch"]:
            continue
        state = {
            "figure": figure,
            "epoch": int(last["epoch"]),
            "value": float(last[figure]),
            "generator": {key: value.detach().cpu() for key, value in generator.items()},
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        best_path(out, figure).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(best_path(out, figure), buffer.getvalue())
