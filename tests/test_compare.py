"""``installation export compare``: real tiny training runs (one sound, one broken by a learning
rate of 100, one measured on larger tiles and more seeds) compared through the command line:
the table's ranks, the plots, the side-by-side sheet made of the runs' own contact sheets, the
lines that say what runs do not share, and one line for every bad input."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from export.compare_plots import LINE_HEIGHT, MARGIN
from export.figures import FIGURES
from export.run_record import sheet_path
from export.stage_config import RefineConfig, TrainOptions
from export.train_stage import train_stage
from installation.cli import main

TINY = RefineConfig(scale=4, width=8, blocks=1, disc_width=4)
SOUND = TrainOptions(
    crop=32, batch=4, epochs=2, steps_per_epoch=4, lr=2e-3, gan_after=6, seed=3, eval_seeds=4
)
RUNS = {
    "sound": SOUND,
    "broken": TrainOptions(**{**vars(SOUND), "lr": 100.0}),
    "wide": TrainOptions(**{**vars(SOUND), "crop": 48, "eval_seeds": 6}),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """The three runs, trained for two epochs of four steps on five small photographs (one
    held out), their fixed seeds drawn by the default bundle's 64 px generator."""
    root = tmp_path_factory.mktemp("compare")
    photos = root / "photos"
    photos.mkdir()
    rng = np.random.default_rng(1)
    for index in range(5):
        y, x = np.mgrid[0:72, 0:80]
        stripes = np.sin(x / (2 + index) + y / 5)[..., None] * np.array([60, 40, 80])
        blocks = ((x // (6 + index) + y // 9) % 2)[..., None] * np.array([70, 90, 30])
        pixels = np.clip(90 + stripes + blocks + rng.normal(0, 6, (72, 80, 3)), 0, 255)
        Image.fromarray(pixels.astype(np.uint8)).save(photos / f"photo{index}.png")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, options in RUNS.items():
            train_stage(photos, root / name, TINY, options, say=lambda _: None)
    finally:
        torch.set_num_threads(threads)
    yield {name: root / name for name in RUNS}


@pytest.fixture(scope="module")
def compared(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "out"
    assert main(["export", "compare", *map(str, runs.values()), "--out", str(out)]) == 0
    return out


def test_table_ranks_the_broken_run_last_and_ranks_only_what_compares(
    runs: dict[str, Path], compared: Path
) -> None:
    report = json.loads((compared / "figures.json").read_text())
    rows = {row["run"]: row for row in report["runs"]}
    assert [row["run"] for row in report["runs"]] == ["sound", "broken", "wide"]
    # Last of the two runs it compares with by every figure. Sharpness too: a learning rate
    # of 100 saturates the stage's output into pixel noise (sharpness about 5, as far from
    # the photographs' 1 in log terms as a blur to 0.2), where the sound run stays near 0.6.
    for figure in FIGURES:
        assert rows["broken"]["rank"][figure] == rows["broken"]["ranked_among"][figure] == 2
        assert rows["sound"]["rank"][figure] == 1
    # PSNR and SSIM of the wide run were measured on 48 px tiles: ranked alone.
    assert rows["wide"]["rank"]["psnr"] == rows["wide"]["ranked_among"]["psnr"] == 1
    assert rows["sound"]["best"]["epoch"] == rows["sound"]["best_of_epoch"]["psnr"]
    assert report["differences"] == [
        "not the same tile (32 px: sound, broken; 48 px: wide): PSNR, SSIM and sharpness not "
        "ranked across them",
        "not the same eval seeds (0-3: sound, broken; 0-5: wide): sharpness and faces not "
        "ranked across them",
    ]
    with (compared / "figures.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert [row["run"] for row in table] == ["sound", "broken", "wide"]
    assert table[1]["rank_psnr"] == "2" and table[2]["tile"] == "48 px"
    text = (compared / "figures.md").read_text()
    assert "| 2 of 2 | broken |" in text and report["differences"][0] in text


def test_sharpness_is_ranked_only_among_runs_judged_on_the_same_photographs(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    """Sharpness is relative to the held-out tiles' detail, so like PSNR it does not compare
    across held-out photographs; faces, on the same seeds, still do."""
    other = tmp_path / "other"
    other.mkdir()
    history = json.loads((runs["sound"] / "history.json").read_text())
    history["run"]["holdout"] = ["another.png"]
    (other / "history.json").write_text(json.dumps(history))
    out = tmp_path / "out"
    assert main(["export", "compare", str(runs["sound"]), str(other), "--out", str(out)]) == 0
    rows = {row["run"]: row for row in json.loads((out / "figures.json").read_text())["runs"]}
    assert rows["other"]["ranked_among"] == {"psnr": 1, "ssim": 1, "sharpness": 1, "faces": 2}


def test_plots_are_valid_png_and_svg_with_every_run(compared: Path) -> None:
    with Image.open(compared / "figures.png") as image:
        assert image.format == "PNG" and image.size == (1200, 800)
        image.verify()
    svg = ElementTree.parse(compared / "figures.svg").getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    text = "".join(svg.itertext())
    assert all(name in text for name in RUNS) and "bicubic" in text


def test_side_by_side_is_each_runs_sheet_of_its_best_epoch(
    runs: dict[str, Path], compared: Path
) -> None:
    report = json.loads((compared / "figures.json").read_text())
    sheets = []
    for row in report["runs"]:
        with Image.open(sheet_path(runs[row["run"]], row["best"]["epoch"])) as sheet:
            sheets.append(np.asarray(sheet.convert("RGB")))
    # Three label lines: the wide run's says it is not comparable (other eval seeds).
    top = MARGIN + 3 * LINE_HEIGHT + MARGIN
    width = MARGIN + sum(sheet.shape[1] + MARGIN for sheet in sheets)
    height = top + max(sheet.shape[0] for sheet in sheets) + MARGIN
    with Image.open(compared / "side-by-side.png") as image:
        assert image.size == (width, height)
        pixels = np.asarray(image.convert("RGB"))
    left = MARGIN
    for sheet in sheets:
        rows, columns = sheet.shape[:2]
        assert np.array_equal(pixels[top : top + rows, left : left + columns], sheet)
        left += columns + MARGIN
    label = pixels[MARGIN:top, left - columns - MARGIN : left]
    assert ((label[..., 0] > 120) & (label[..., 1] < 60)).any()  # the red line


def test_best_by_faces_and_force_rewrite_the_report(
    runs: dict[str, Path], compared: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["export", "compare", str(runs["sound"]), str(runs["broken"]), "--out", str(compared)]
    capsys.readouterr()
    assert main([*args, "--best-by", "faces", "--force"]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0].split()[:3] == ["rank", "(faces)", "run"]
    assert said[1].split()[:4] == ["1", "of", "2", "sound"]
    assert said[2].split()[:4] == ["2", "of", "2", "broken"]
    report = json.loads((compared / "figures.json").read_text())
    assert report["best_by"] == "faces" and report["differences"] == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("missing", "missing: no such run folder"),
        ("old", "old: no history.json: not a train-stage run"),
        ("damaged", "damaged/history.json: not a readable run history"),
    ],
)
def test_a_run_that_is_not_one_is_one_line(
    tmp_path: Path,
    runs: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    name: str,
    expected: str,
) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "checkpoint.pt").write_bytes(b"a run from before figures")
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "history.json").write_text('{"version": 1, "run": ')
    out = tmp_path / "out"
    run = str(tmp_path / name)
    assert main(["export", "compare", str(runs["sound"]), run, "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert expected in error and len(error.splitlines()) == 1
    assert not out.exists()


def test_a_folder_that_is_not_empty_needs_force(
    tmp_path: Path, runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["export", "compare", str(runs["sound"]), "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith("folder is not empty; choose another or overwrite with --force")
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]
