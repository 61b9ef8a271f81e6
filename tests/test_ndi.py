"""NDI output: the ``[ndi]`` table, a show without the optional extra, and a real headless show
received over NDI by cyndilib inside a private network namespace (tests/ndi_netns.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import DEFAULT_SHOW, ROOT
from ndi_netns import FRAMES, PATTERN_SIZE, pattern

from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.paint import paint
from installation.engine.pipeline import Pipeline
from installation.errors import UserError
from installation.output import frame_rate
from installation.output.compose import fit
from installation.score.ndi_settings import NdiSettings
from installation.score.show import load_show
from installation.session import load_parts

#: NDI compresses every frame (SpeedHQ, 4:2:2), so what arrives is the picture within a PSNR:
#: about 41 dB for a face, 33 dB for the test pattern's sharp edges here. The pictures a bug
#: would send instead (a pixel off, red and blue swapped, dimmed, another face) are below.
FACE_DB = 38.0
PATTERN_DB = 30.0
#: Finds sources by asking 127.0.0.1 on NDI's port 5960 rather than by mDNS; a config that
#: names no address here (tried: "10.1.2.3") finds nothing in the namespace.
NDI_CONFIG = {"ndi": {"networks": {"ips": "127.0.0.1"}, "multicast": {"send": {"enable": False}}}}
NAMESPACE = 'ip link set lo up && exec "$0" "$@"'
NDI_TABLE = '\n[ndi]\nname = "test-faces"\n'


def still_show(tmp_path: Path, ndi: str) -> Path:
    """The default show holding its first face for an hour at 10 frames/s, every stage, no OSC,
    with ``ndi`` appended: every frame it shows is the same known picture."""
    text = DEFAULT_SHOW.read_text()
    for old, new in (
        ('bundle = "../bundles/faces-256"', f'bundle = "{ROOT / "bundles" / "faces-256"}"'),
        ("fps = 60", "fps = 10"),
        ('quality = "adaptive"', 'quality = "full"'),
        ("enabled = true", "enabled = false"),
        ("hold = 3.0", "hold = 3600.0"),
    ):
        assert old in text
        text = text.replace(old, new, 1)
    path = tmp_path / "show.toml"
    path.write_text(text + ndi)
    return path


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else float(10 * np.log10(255**2 / error))


def mistaken(picture: np.ndarray) -> list[np.ndarray]:
    """What a wrong sender would deliver: shifted by a pixel either way, red and blue
    swapped, dimmed by a tenth."""
    dimmed = (picture.astype(np.float64) * 0.9).round().astype(np.uint8)
    shifted = [np.roll(picture, 1, axis=axis) for axis in (0, 1)]
    return [*shifted, picture[..., ::-1], dimmed]


def test_ndi_table(tmp_path: Path) -> None:
    ndi = '\n[ndi]\nname = "faces"\nsize = [1920, 1080]\ngroups = ["projection", " b "]\n'
    show = load_show(still_show(tmp_path, ndi))
    assert show.ndi == NdiSettings("faces", (1920, 1080), ("projection", "b"))
    assert load_show(still_show(tmp_path, '\n[ndi]\nname = "x"\n')).ndi == NdiSettings("x")
    assert load_show(still_show(tmp_path, "")).ndi is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("size = [2, 2]", "ndi.name: missing; expected a string"),
        ('name = ""', "ndi.name: expected 1 to 64 printable characters"),
        ('name = "a\\nb"', "ndi.name: expected 1 to 64 printable characters"),
        ('name = "x"\nsize = [1919, 1080]', "ndi.size: expected [width, height] in even pixels"),
        ('name = "x"\nsize = [7680, 4320]', "ndi.size: expected [width, height] in even pixels"),
        ('name = "x"\nsize = [0, 2]', "ndi.size: every size must be positive"),
        ('name = "x"\ngroups = ["a,b"]', 'ndi.groups: expected group names such as "projection"'),
        ('name = "x"\ngroups = []', "ndi.groups: expected 1 to 16 group names"),
        ('name = "x"\ngroup = ["a"]', "ndi.group: unknown key"),
    ],
)
def test_bad_ndi_table_is_one_line_naming_file_and_key(
    tmp_path: Path, table: str, message: str
) -> None:
    path = still_show(tmp_path, f"\n[ndi]\n{table}\n")
    with pytest.raises(UserError) as caught:
        load_show(path)
    text = str(caught.value)
    assert text.startswith(f"{path}:") and message in text and "\n" not in text


def test_frame_rate_is_the_shows_fps_as_a_fraction() -> None:
    assert frame_rate(60.0) == Fraction(60)
    assert frame_rate(29.97) == Fraction(2997, 100)
    assert frame_rate(59.94) == Fraction(2997, 50)


def test_show_with_ndi_plays_on_without_the_extra_and_says_why_once(tmp_path: Path) -> None:
    # cyndilib made unimportable, as where the extra is not installed; the show is real.
    code = (
        "import sys; sys.modules['cyndilib'] = None; from installation.cli import main; "
        f"sys.exit(main(['run', {str(still_show(tmp_path, NDI_TABLE))!r}, '--headless', "
        "'--duration', '1']))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert completed.returncode == 0, completed.stderr
    why = "[ndi]: no NDI output: cyndilib is not installed (pip install -e '.[ndi]')"
    assert completed.stderr.count(why) == 1, completed.stderr
    assert "frames shown" in completed.stderr and "Traceback" not in completed.stderr


def test_a_receiver_finds_the_show_by_name_and_gets_its_frames(tmp_path: Path) -> None:
    pytest.importorskip("cyndilib", reason="the optional extra ndi is not installed")
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-rn", "true"]).returncode != 0:
        pytest.skip("no private network namespace here (unshare -rn is not allowed)")
    show = still_show(tmp_path, NDI_TABLE)
    config = tmp_path / "ndi"
    config.mkdir()
    (config / "ndi-config.v1.json").write_text(json.dumps(NDI_CONFIG))
    helper = Path(__file__).with_name("ndi_netns.py")
    environment = {**os.environ, "NDI_CONFIG_DIR": str(config), "SDL_VIDEODRIVER": "dummy"}
    environment["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(helper.parent)])
    arguments = [str(show), "test-faces", str(tmp_path)]
    completed = subprocess.run(
        [unshare, "-rn", "sh", "-c", NAMESPACE, sys.executable, str(helper), *arguments],
        capture_output=True,
        text=True,
        timeout=180,
        env=environment,
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stderr
    results = json.loads(completed.stdout)
    log = results["show_log"]
    assert results["show_rc"] == 0, log
    assert "sending NDI source" in log and "Traceback" not in log, log

    received = results["show"]
    assert received["found"] is not None, f"listed: {received['listed']}; show log: {log}"
    assert received["found"].endswith(" (test-faces)")
    assert received["frames"] == FRAMES
    assert received["size"] == [256, 256], "the bundle's size"
    assert received["frame_rate"] == "10", "the show's frames per second"
    assert received["fourcc"] == "RGBX", "alpha off"
    _, bundle, conductor = load_parts(show)
    pipeline = Pipeline.load(bundle, OnnxRuntimeBackend(CPU))
    first, second = paint(pipeline, conductor.plans_at([0.0, 3600.0 + 5.0]))
    picture = np.load(tmp_path / "show.npy")[..., :3]
    assert psnr(picture, first) > FACE_DB
    for wrong in mistaken(first):
        assert psnr(wrong, first) < FACE_DB, "the check tells a wrong picture"
    assert psnr(second, first) < FACE_DB, "and another face"

    sent = results["pattern"]
    assert sent["found"].endswith(" (pattern)")
    assert (sent["size"], sent["frame_rate"], sent["fourcc"]) == ([*PATTERN_SIZE], "25", "RGBX")
    expected = fit(pattern(), PATTERN_SIZE)
    assert psnr(np.load(tmp_path / "pattern.npy")[..., :3], expected) > PATTERN_DB
    assert all(psnr(wrong, expected) < PATTERN_DB for wrong in mistaken(expected))
    offered, taken, dropped = sent["counts"]
    assert taken >= FRAMES and taken + dropped == offered and sent["failed"] == 0
    assert "frames delivered" in log
