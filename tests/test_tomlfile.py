"""What the TOML reader refuses before parsing (what is not a regular file, what is too
large) and how a missing key is reported: at its table's line, next to the unknown key that is
probably its misspelling. Shows and bundle manifests are read the same way."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from conftest import DEFAULT_BUNDLE, DEFAULT_SHOW

from installation.engine.bundle import load_bundle
from installation.errors import UserError
from installation.score.scenes import MAX_SCENES
from installation.score.show import load_show
from installation.tomlfile import MAX_BYTES, Section, TomlDocument, read_toml


def line_of(path: Path, needle: str, start: int = 0) -> int:
    lines = path.read_text().splitlines()
    return next(i for i in range(start, len(lines)) if needle in lines[i]) + 1


def edited(source: Path, target: Path, old: str, new: str) -> Path:
    text = source.read_text()
    assert old in text, old
    target.write_text(text.replace(old, new, 1))
    return target


def test_a_fifo_in_place_of_a_show_is_one_line_and_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "show.toml"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def load() -> None:
        try:
            load_show(fifo)
        except BaseException as exc:  # whatever it was, the test reports it
            outcome.append(exc)

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(30.0)
    if reader.is_alive():  # unblock the reader so the test run can end
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading a FIFO blocked")
    assert [str(exc) for exc in outcome] == [
        f"{fifo}: is a named pipe (FIFO), expected a show file"
    ]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (Path("/dev/zero"), "/dev/zero: is a device, expected a show file"),
        (DEFAULT_BUNDLE, f"{DEFAULT_BUNDLE}: is a folder, expected a show file"),
    ],
)
def test_only_regular_files_are_read(path: Path, message: str) -> None:
    with pytest.raises(UserError) as caught:
        load_show(path)
    assert str(caught.value) == message


def test_a_file_over_the_size_cap_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "show.toml"
    text = DEFAULT_SHOW.read_text()
    path.write_text(text + "#" * (MAX_BYTES - len(text.encode())) + "\n")
    with pytest.raises(UserError, match=rf"^{path}: larger than 1024 KiB; a show file is far"):
        load_show(path)
    path.write_text(text + "#" * (MAX_BYTES - len(text.encode()) - 1) + "\n")
    load_show(path)  # exactly the cap


def test_the_number_of_scenes_is_capped(tmp_path: Path) -> None:
    path = tmp_path / "show.toml"
    scene = '[[scenes]]\nname = "s{}"\nseed = 1\n'
    head = 'bundle = "b"\n'
    path.write_text(head + "".join(scene.format(i) for i in range(MAX_SCENES)))
    assert len(load_show(path).scenes) == MAX_SCENES
    path.write_text(head + "".join(scene.format(i) for i in range(MAX_SCENES + 1)))
    line = 2 + 3 * MAX_SCENES
    with pytest.raises(UserError) as caught:
        load_show(path)
    assert str(caught.value) == (
        f"{path}:{line}: scenes[{MAX_SCENES}]: a show may have at most {MAX_SCENES} scenes, "
        f"this one has {MAX_SCENES + 1}"
    )


def test_a_misspelt_required_key_of_a_manifest_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "bundle"
    shutil.copytree(DEFAULT_BUNDLE, folder)
    manifest = folder / "bundle.toml"
    edited(manifest, manifest, 'output_name = "image"', 'ouput_name = "image"')
    header = line_of(manifest, "[[stages]]")
    typo = line_of(manifest, "ouput_name")
    with pytest.raises(UserError) as caught:
        load_bundle(folder)
    assert str(caught.value) == (
        f"{manifest}:{header}: stages[0].output_name: missing; expected a string "
        f"(there is an unknown key ouput_name on line {typo}: a typo?)"
    )


@pytest.mark.parametrize(
    ("old", "new", "key", "hint"),
    [
        ('bundle = "', 'bundel = "', "bundle", "bundel"),
        ('[[scenes]]\nname = "faces"', '[[scenes]]\nnme = "faces"', "scenes[0].name", "nme"),
        ("seed = 2026", "seeds = 2026", "scenes[0].seed", "seeds"),
        ("[[scenes]]", "[[scene]]", "scenes", "scene"),
    ],
)
def test_a_misspelt_required_key_of_a_show_is_named(
    tmp_path: Path, old: str, new: str, key: str, hint: str
) -> None:
    path = edited(DEFAULT_SHOW, tmp_path / "show.toml", old, new)
    with pytest.raises(UserError) as caught:
        load_show(path)
    assert f"{key}: missing; expected " in str(caught.value)
    line = line_of(path, next(part for part in new.splitlines() if hint in part))
    hinted = f"(there is an unknown key {hint} on line {line}: a typo?)"
    assert str(caught.value).endswith(hinted)


def test_no_hint_for_a_key_that_only_looks_alike(tmp_path: Path) -> None:
    """``speed`` looks like ``seed`` but holds a number that is not a seed: no false hint."""
    path = edited(DEFAULT_SHOW, tmp_path / "show.toml", "seed = 2026", "speed = 1.5")
    with pytest.raises(UserError) as caught:
        load_show(path)
    header = line_of(path, "[[scenes]]")
    assert str(caught.value) == f"{path}:{header}: scenes[0].seed: missing; expected an integer"


@pytest.mark.parametrize(
    ("value", "args", "kwargs", "message"),
    [
        ("7", (0.0, 1.0), {}, "x: expected 0 to 1, got 7"),
        ("nan", (0.0, 1.0), {}, "x: expected 0 to 1, got nan"),
        ("-inf", (0.0, 600.0), {"unit": "seconds"}, "x: expected 0 to 600 seconds, got -inf"),
        ("0", (0.0, 240.0), {"low_open": True}, "x: expected more than 0 and at most 240, got 0"),
        ("inf", (0.0,), {"low_open": True}, "x: expected more than 0, got inf"),
        ("0", (1,), {"kind": int}, "x: expected at least 1, got 0"),
        (
            "65",
            (0, 64),
            {"kind": int, "expected": "0 (all) to 64"},
            "x: expected 0 (all) to 64, got 65",
        ),
        ("1.5", (0, 64), {"kind": int}, "x: expected an integer, got 1.5"),
        ("true", (0.0, 1.0), {}, "x: expected a number, got True"),
    ],
)
def test_every_range_is_read_and_reported_alike(
    tmp_path: Path, value: str, args: tuple, kwargs: dict, message: str
) -> None:
    """``Section.number``, the one range check of shows, scenes, hours, OSC and manifests."""
    path = tmp_path / "numbers.toml"
    path.write_text(f"y = 1\nx = {value}\n")
    with pytest.raises(UserError) as caught:
        Section.root(read_toml(path, "test file")).number("x", *args, **kwargs)
    assert str(caught.value) == f"{path}:2: {message}"


def test_a_number_in_range_or_absent_is_returned() -> None:
    doc = TomlDocument(Path("n.toml"), "", {"x": 3, "y": 0.5})
    section = Section.root(doc)
    assert section.number("x", 1, 3, kind=int) == 3
    assert section.number("y", 0.0, 1.0, low_open=True) == 0.5
    assert section.number("z", 0.0, 1.0, 0.25) == 0.25
