"""/rotate and /translate over real UDP (python-osc's client over loopback) into a live
headless show: hostile values are refused like every address's, in one rate-limited line,
the view stays finite, and a bundle without an input transform refuses both cleanly."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from conftest import DEFAULT_BUNDLE
from live import LiveShow
from pythonosc.osc_message_builder import OscMessageBuilder
from wspace_bundle import write_w_bundle

SHOW = """bundle = "{bundle}"

[display]
mode = "headless"

[osc]
port = 0

[[scenes]]
name = "one"
seed = 5
hold = 60.0
morph = 1.0
"""

HOSTILE = [
    ("/rotate", [math.nan]),
    ("/rotate", [math.inf]),
    ("/rotate", [-3e38]),
    ("/rotate", [2**62]),
    ("/rotate", [361.0]),
    ("/rotate", ["90"]),
    ("/rotate", [True]),
    ("/rotate", []),
    ("/rotate", [1.0, 2.0]),
    ("/translate", [0.5]),
    ("/translate", [0.5, math.nan]),
    ("/translate", [-math.inf, 0.0]),
    ("/translate", [1e9, 0.0]),
    ("/translate", ["a", "b"]),
    ("/translate", [b"\x00\x01", 0.0]),
]


def view(live: LiveShow) -> np.ndarray:
    """The view (degrees, x, y) the show would draw now: the layer's last three values."""
    (plan,) = live.conductor.plans_at([live.conductor.status().uptime])
    return plan.layers[0].latent[-3:]


def test_hostile_views_are_refused_and_a_good_one_glides(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bundle = write_w_bundle(tmp_path / "bundle", transform=True)
    show = tmp_path / "show.toml"
    show.write_text(SHOW.format(bundle=bundle))
    with LiveShow(show) as live:
        for address, args in HOSTILE:
            live.client.send_message(address, args)
        huge = OscMessageBuilder("/translate")  # doubles, beyond what a float32 holds
        huge.add_arg(1e300, OscMessageBuilder.ARG_TYPE_DOUBLE)
        huge.add_arg(0.0, OscMessageBuilder.ARG_TYPE_DOUBLE)
        live.client.send(huge.build())
        stats = live.osc.stats
        live.wait_for(lambda: stats.rejected == len(HOSTILE) + 1, "every hostile message")
        assert stats.messages == 0 and stats.failed == 0
        np.testing.assert_array_equal(view(live), [0.0, 0.0, 0.0])
        live.client.send_message("/rotate", -360.0)
        live.client.send_message("/translate", [10, -10.0])
        live.wait_for(lambda: stats.messages == 2, "the good messages")
        live.wait_for(lambda: np.allclose(view(live), [-360.0, 10.0, -10.0]), "the glide")
        assert live.display.presents[-1].peak > 0, "still a picture"
    refusals = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert len(refusals) == 1, "one line, the rest counted"
    assert refusals[0].startswith("osc: '/rotate' from 127.0.0.1")
    assert "degrees: expected -360 to 360, got nan" in refusals[0]


def test_a_bundle_without_an_input_transform_refuses_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    show = tmp_path / "show.toml"
    show.write_text(SHOW.format(bundle=DEFAULT_BUNDLE))
    with LiveShow(show) as live:
        live.client.send_message("/translate", [0.1, 0.2])
        live.client.send_message("/rotate", 10.0)
        live.wait_for(lambda: live.osc.stats.rejected == 2, "both refusals")
        live.client.send_message("/ping", [])
        assert live.client.receive(2.0).startswith(b"/pong")
    (line,) = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert "osc: '/translate' from 127.0.0.1" in line
    assert "ignored: this bundle has no input transform" in line
