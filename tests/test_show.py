"""Show files: the committed default is valid, and each mistake names file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import DEFAULT_SHOW, edited_show

from installation.cli import main
from installation.errors import UserError
from installation.score.show import load_show


def test_default_show_loads() -> None:
    show = load_show(None)
    assert show.path == DEFAULT_SHOW
    assert show.bundle.resolve() == (DEFAULT_SHOW.parent.parent / "bundles" / "faces-256")
    assert show.display.mode == "fullscreen"
    assert [scene.name for scene in show.scenes] == ["faces"]
    assert (show.osc.enabled, show.osc.address, show.osc.port) == (True, "127.0.0.1", 9000)


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        ("hold = 3.0", 'hold = "3"', "hold =", "scenes[0].hold: expected a number, got '3'"),
        ("hold = 3.0", "hold = -1.0", "hold =", "scenes[0].hold: expected 0 to 3600 seconds"),
        ("morph = 5.0", "morph = -1", "morph =", "scenes[0].morph: expected 0 to 3600 seconds"),
        ("seed = 2026", "seed = true", "seed =", "scenes[0].seed: expected an integer, got True"),
        ('easing = "smoothstep"', 'easing = "bouncy"', "easing =", "scenes[0].easing: unknown"),
        ('mode = "fullscreen"', 'mode = "tv"', "mode =", "display.mode: expected one of"),
        ("fps = 60", "fps = 1000", "fps =", "display.fps: expected more than 0 and at most 240"),
        (
            "window_size = [1280, 720]",
            "window_size = [1280, 720, 3]",
            "window_size =",
            "display.window_size: expected 2 integers, got 3",
        ),
        ("threads = 0", "threads = 0\nthreds = 2", "threds", "engine.threds: unknown key"),
        ("[[scenes]]", "[[scenes]]\nsped = 2", "sped", "scenes[0].sped: unknown key"),
    ],
)
def test_show_errors_name_file_line_and_key(
    tmp_path: Path, old: str, new: str, needle: str, message: str
) -> None:
    path = edited_show(tmp_path, old, new)
    with pytest.raises(UserError) as caught:
        load_show(path)
    assert str(caught.value).startswith(f"{path}:{line_of(path, needle)}: "), caught.value
    assert message in str(caught.value)


def test_missing_scene_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text('bundle = "b"\n')
    with pytest.raises(UserError, match=r"scenes: missing; expected one or more \[\[scenes\]\]"):
        load_show(path)
    with pytest.raises(UserError, match=r"nowhere\.toml: show file not found"):
        load_show(tmp_path / "nowhere.toml")


def test_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(DEFAULT_SHOW)]) == 0
    assert main(["check", str(edited_show(tmp_path, "hold = 3.0", "hold = -1.0"))]) == 2
    assert (
        main(
            [
                "check",
                str(
                    edited_show(
                        tmp_path,
                        'bundle = "../bundles/faces-256"',
                        'bundle = "../bundles/nope"',
                    )
                ),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "nope: bundle folder not found" in err
    assert "Traceback" not in err
