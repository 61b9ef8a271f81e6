"""The pace of a walk of faces: one rule (``scenes.check_pace``) for show files, reloads and
OSC, so that no hold, morph or speed that gets in can make the walk's arithmetic overflow.

The live test replays the attack that ended a show: ``/hold 0`` then ``/morph 5e-324``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import DEFAULT_BUNDLE
from live import LiveShow
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from installation.control.osc.addresses import AddressSpace
from installation.errors import UserError
from installation.score.conductor import Conductor
from installation.score.scenes import MAX_FPS, MIN_SECONDS, check_pace
from installation.score.show import load_show

SIZE = 100  # the default bundle's latent size
CLIENT = ("127.0.0.1", 9)

SHOW = f"""
bundle = "{DEFAULT_BUNDLE}"

[display]
mode = "headless"

[osc]
port = 0

[[scenes]]
name = "a"
seed = 1
hold = HOLD
morph = MORPH
speed = SPEED
"""


def write_show(tmp_path: Path, hold: str = "0.5", morph: str = "0.5", speed: str = "1") -> Path:
    path = tmp_path / "show.toml"
    text = SHOW.replace("HOLD", hold).replace("MORPH", morph).replace("SPEED", speed)
    path.write_text(text)
    return path


def test_the_frame_is_the_fastest_display_rate() -> None:
    assert MIN_SECONDS == 1 / MAX_FPS == 1 / 240


@pytest.mark.parametrize(
    ("hold", "morph", "speed", "key", "message"),
    [
        (0.0, 0.0, 1.0, "morph", "hold and morph are both 0"),
        (0.0, 5e-324, 1.0, "morph", "a morph of 4.94066e-324 s is shorter than one frame"),
        (1e-3, 5.0, 1.0, "hold", "use 0 or at least 0.00417 s"),
        (0.05, 0.0, 16.0, "hold", "at speed 16 is shorter than one frame (1/240 s) on screen"),
        (3.0, 0.2, 64.0, "morph", "at least 0.267 s or a lower speed"),
        (1e-3, 5.0, 0.0, "hold", "is shorter than one frame"),  # as it would be once resumed
    ],
)
def test_a_pace_below_a_frame_is_refused(
    hold: float, morph: float, speed: float, key: str, message: str
) -> None:
    problem = check_pace(hold, morph, speed)
    assert problem is not None and problem[0] == key and message in problem[1], problem


@pytest.mark.parametrize(
    ("hold", "morph", "speed"),
    [
        (0.0, MIN_SECONDS, 1.0),  # a continuous morph, one frame per face
        (MIN_SECONDS, 0.0, 0.5),  # a cut every frame, slowed down
        (3.0, 0.0, 1.0),  # cuts
        (0.0, 5.0, 16.0),
        (0.05, 0.0, 0.0),  # speed 0 stops the walk
    ],
)
def test_zero_means_what_it_says_and_a_frame_is_enough(
    hold: float, morph: float, speed: float
) -> None:
    assert check_pace(hold, morph, speed) is None


def test_show_files_refuse_a_pace_below_a_frame_at_its_line(tmp_path: Path) -> None:
    path = write_show(tmp_path, hold="0.0", morph="5e-324")
    with pytest.raises(UserError, match=rf"{path}:\d+: scenes\[0\]\.morph: a morph of .* one fr"):
        load_show(path)
    path = write_show(tmp_path, hold="0.01", speed="16")
    line = path.read_text().splitlines().index("hold = 0.01") + 1
    with pytest.raises(UserError, match=rf"{path}:{line}: scenes\[0\]\.hold: .* at speed 16"):
        load_show(path)
    load_show(write_show(tmp_path, hold="0.0", morph=f"{MIN_SECONDS!r}"))


def test_osc_handlers_refuse_by_the_same_rule_and_the_walk_goes_on(tmp_path: Path) -> None:
    conductor = Conductor(load_show(write_show(tmp_path, hold="0.01")), SIZE, "normal", 1)
    conductor.start(lambda: 2.0)
    osc = AddressSpace(conductor, lambda: None, lambda *reply: None)
    osc.hold(CLIENT, "/hold", 0.0)
    with pytest.raises(UserError, match=r"a morph of 4\.94066e-324 s is shorter than one frame"):
        osc.morph(CLIENT, "/morph", 5e-324)
    osc.hold(CLIENT, "/hold", 0.01)
    with pytest.raises(UserError, match=r"a hold of 0\.01 s at speed 16"):
        osc.morph_speed(CLIENT, "/morph/speed", 16.0)
    osc.morph_speed(CLIENT, "/morph/speed", 0.0)  # stops the walk
    osc.morph_speed(CLIENT, "/morph/speed", 2.0)
    (plan,) = conductor.plans_at([1e9])
    assert np.all(np.isfinite(plan.layers[0].latent))


def double(address: str, value: float) -> OscMessage:
    """A message with one 64-bit float (type tag ``d``): python-osc sends a Python float as
    32 bits, in which 5e-324 is 0."""
    builder = OscMessageBuilder(address)
    builder.add_arg(value, OscMessageBuilder.ARG_TYPE_DOUBLE)
    return builder.build()


def test_the_attack_is_refused_and_the_show_plays_on(tmp_path: Path) -> None:
    with LiveShow(write_show(tmp_path)) as live:
        live.client.send(double("/hold", 0.0))
        live.client.send(double("/morph", 5e-324))
        live.client.send(double("/morph", 0.0))  # hold 0 and morph 0
        live.wait_for(lambda: live.osc.stats.rejected == 2, "both bad paces refused")
        shown = live.display.presents[-1].frame.t
        live.wait_for(
            lambda: live.display.presents[-1].frame.t > shown + 3.0,
            "frames made for 3 s more of show time",
            timeout=30.0,
        )
    assert live.result is not None and live.result.restarts == 0
