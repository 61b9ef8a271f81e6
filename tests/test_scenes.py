"""Show files with scenes and OSC settings: the example uses every key, and every mistake,
made in a real copy of the example, is one error naming the file, the line and the key."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import DEFAULT_BUNDLE, ROOT

from installation.errors import UserError
from installation.score.osc_settings import OscSettings
from installation.score.scenes import W_KEYS, Scene
from installation.score.show import load_show
from installation.session import load_parts

EXAMPLE = ROOT / "shows" / "example.toml"


def example_copy(tmp_path: Path, old: str = "", new: str = "", count: int = 1) -> Path:
    text = EXAMPLE.read_text().replace(
        'bundle = "../bundles/faces-256"', f'bundle = "{DEFAULT_BUNDLE}"'
    )
    if old:
        assert old in text, old
        text = text.replace(old, new, count)
    path = tmp_path / "show.toml"
    path.write_text(text)
    return path


def test_example_uses_every_key_and_loads() -> None:
    data = tomllib.loads(EXAMPLE.read_text())
    used = set().union(*(scene.keys() for scene in data["scenes"]))
    # The W-space keys need a StyleGAN bundle; tests/test_wspace_show.py uses them.
    assert used == {f.name for f in dataclasses.fields(Scene)} - set(W_KEYS)
    assert set(data["osc"]) == {f.name for f in dataclasses.fields(OscSettings)}
    show = load_show(EXAMPLE)
    assert [scene.name for scene in show.scenes] == ["dawn", "dusk", "night"]
    assert show.scenes[1].seed is None, '"random"'
    assert show.osc.address == "0.0.0.0" and len(show.osc.allow) == 2
    load_parts(EXAMPLE)  # and fits its bundle


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        ("speed = 1.5", "sped = 1.5", "sped", "scenes[1].sped: unknown key"),
        ("seed = 7", 'seed = "seven"', "seed =", 'scenes[2].seed: expected an integer or "random"'),
        ("seed = 7", "seed = -7", "seed =", "scenes[2].seed: expected an integer from 0"),
        ("truncation = 0.6", "truncation = 1.5", "truncation", "scenes[2].truncation: expected 0"),
        ("speed = 0.5", "speed = 0", "speed =", "scenes[2].speed: expected more than 0"),
        ("breathing = 0.15", "breathing = -0.1", "breathing", "scenes[1].breathing: expected 0"),
        ("fade_in = 8.0", "fade_in = 1000", "fade_in", "scenes[2].fade_in: expected 0 to 600"),
        ("duration = 900.0", "duration = 0.5", "duration", "scenes[1].duration: expected 1 to"),
        ("duration = 1800.0", "duration = 3.0", "duration", "scenes[2].duration: shorter than"),
        (
            "stages = 1\nfade_in = 0.0",
            "stages = 0\nfade_in = 0.0",
            "stages = 0",
            "expected at least 1",
        ),
        (
            'transition = "cut"',
            'transition = "wipe"',
            "transition",
            "scenes[2].transition: expected one of",
        ),
        (
            'easing = "cosine"',
            "easing = 3",
            "easing =",
            "scenes[1].easing: expected a string, got 3",
        ),
        (
            'name = "night"',
            'name = "dusk"',
            'name = "dusk"',
            "scenes[2].name: another scene is already called",
        ),
        ('next = "night"', 'next = "nacht"', "nacht", "scenes[1].next: no scene is called 'nacht'"),
        (
            "hold = 20.0\nmorph = 12.0",
            "hold = 0\nmorph = 0",
            "morph = 0",
            "hold and morph are both 0",
        ),
        ("port = 9000", "port = 70000", "port =", "osc.port: expected 1 to 65535"),
        (
            'address = "0.0.0.0"',
            'address = "localhost"',
            "address =",
            "osc.address: expected an IP",
        ),
        (
            '"192.168.10.0/24"]',
            '"192.168.10.300/24"]',
            "300",
            "osc.allow: '192.168.10.300/24' is not",
        ),
        ("max_rate = 1000", "max_rate = 1000\nrate = 5", "rate = 5", "osc.rate: unknown key"),
        ("max_rate = 1000", "max_rate = 0", "max_rate", "osc.max_rate: expected 1 to"),
        ("enabled = true", 'enabled = "yes"', "enabled", "osc.enabled: expected true or false"),
        ("[osc]", "[osk]", "[osk]", "osk: unknown key"),
    ],
)
def test_show_errors_name_file_line_and_key(
    tmp_path: Path, old: str, new: str, needle: str, message: str
) -> None:
    path = example_copy(tmp_path, old, new)
    text = EXAMPLE.read_text()
    changed_at = text[: text.index(old)].count("\n") + 1
    line = changed_at + next(i for i, part in enumerate(new.splitlines()) if needle in part)
    with pytest.raises(UserError) as caught:
        load_show(path)
    assert str(caught.value).startswith(f"{path}:{line}: "), caught.value
    assert message in str(caught.value)


def test_next_needs_a_duration_and_network_listening_needs_an_allowlist(tmp_path: Path) -> None:
    path = example_copy(tmp_path, "duration = 900.0\n", "")
    with pytest.raises(UserError, match=r"scenes\[1\]\.next: needs a duration"):
        load_show(path)
    path = example_copy(tmp_path, 'allow = ["127.0.0.0/8", "192.168.10.0/24"]\n', "")
    with pytest.raises(UserError, match=r"osc\.allow: missing: listening on 0\.0\.0\.0"):
        load_show(path)


def test_more_stages_than_the_bundle_has_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = example_copy(tmp_path, "stages = 1", "stages = 3")
    line = next(
        i for i, text in enumerate(path.read_text().splitlines(), 1) if "stages = 3" in text
    )
    with pytest.raises(UserError, match=rf"{path}:{line}: scenes\[0\]\.stages: expected at most 2"):
        load_parts(path)


def test_check_prints_one_line_and_exits_two(tmp_path: Path) -> None:
    path = example_copy(tmp_path, "truncation = 0.8", "truncation = 2")
    completed = subprocess.run(
        [sys.executable, "-m", "installation", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2
    assert completed.stderr.startswith(f"installation: error: {path}:")
    assert completed.stderr.count("\n") == 1 and "Traceback" not in completed.stderr
