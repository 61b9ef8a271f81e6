"""MIDI in: the [midi] map read from real show files, real mido Messages turned into the same
calls OSC makes, a show without a MIDI port playing on, and (where the machine has an ALSA
sequencer) a real virtual port steering the real conductor."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
from conftest import DEFAULT_BUNDLE
from live import LiveShow
from mido import Message

from installation.cli import main
from installation.control.midi import actions, describe, scaled
from installation.control.osc.addresses import ADDRESSES
from installation.errors import UserError
from installation.score.midi_settings import FADERS, SWITCHES, TRIGGERS, MidiSettings, parse_midi
from installation.score.scenes import MAX_ROTATE, MAX_SPEED
from installation.tomlfile import Section, read_toml

SEQUENCER = Path("/dev/snd/seq")

SHOW = f"""
bundle = "{DEFAULT_BUNDLE}"

[display]
mode = "headless"

[osc]
port = 0

[midi]
{{midi}}
cc = {{ 7 = "truncation", 10 = "morph/speed" }}
notes = {{ 60 = "face/next", 62 = "blackout" }}

[[scenes]]
name = "a"
seed = 1
hold = 60.0
morph = 1.0
"""


def midi_table(tmp_path: Path, text: str) -> Section:
    path = tmp_path / "show.toml"
    path.write_text(f"[midi]\n{text}\n")
    return Section.root(read_toml(path, "show file")).table("midi")


def test_the_map_names_osc_addresses_of_the_right_kind() -> None:
    for name in FADERS:
        assert ADDRESSES["/" + name].type == "f", name
    for name in TRIGGERS + SWITCHES:
        assert "/" + name in ADDRESSES, name
    for name in SWITCHES:
        assert ADDRESSES["/" + name].value is not None, name


def test_parse_midi(tmp_path: Path) -> None:
    section = midi_table(
        tmp_path,
        'port = "nano"\ncc = { 7 = "truncation", 1 = "intensity" }\nnotes = { 60 = "blackout" }',
    )
    assert parse_midi(section) == MidiSettings(
        "nano", ((1, "intensity"), (7, "truncation")), ((60, "blackout"),)
    )


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('cc = { 128 = "truncation" }', "midi.cc.128: expected a MIDI number from 0 to 127"),
        ('cc = { x = "truncation" }', "midi.cc.x: expected a MIDI number"),
        ('cc = { 7 = "face/next" }', "midi.cc.7: expected one of truncation"),
        ('notes = { 60 = "truncation" }', "midi.notes.60: expected one of face/next"),
        ("notes = { 60 = 1 }", "midi.notes.60: expected a string"),
        ("chanel = 1", "midi.chanel: unknown key"),
    ],
)
def test_parse_midi_refuses_with_one_line(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_midi(midi_table(tmp_path, text))
    assert f"show.toml:2: {where}" in str(caught.value) and "\n" not in str(caught.value)


def test_controllers_scale_across_the_osc_range_and_notes_trigger() -> None:
    settings = MidiSettings(
        cc=((7, "truncation"), (8, "rotate"), (10, "morph/speed")),
        notes=((60, "face/next"), (62, "blackout")),
    )
    messages = [
        Message("control_change", channel=3, control=7, value=0),
        Message("note_on", note=60, velocity=90),
        Message("control_change", control=7, value=127),  # the last value of a sweep wins
        Message("control_change", control=8, value=0),
        Message("control_change", control=10, value=127),
        Message("note_on", note=62, velocity=0),  # a note off in disguise: no trigger
        Message("note_off", note=60),
        Message("control_change", control=99, value=5),  # not mapped
        Message("note_on", note=62, velocity=1),
    ]
    assert actions(messages, settings) == [
        ("face/next", None),  # notes in order, then each controller's last value
        ("blackout", None),
        ("truncation", 1.0),
        ("rotate", -MAX_ROTATE),
        ("morph/speed", MAX_SPEED),
    ]
    assert scaled("truncation", 64) == pytest.approx(64 / 127)
    assert describe(Message("control_change", channel=0, control=7, value=64)) == (
        "control_change channel 1 control 7 value 64"
    )


def test_a_show_without_its_port_plays_says_so_once_and_midi_moves_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("installation.control.midi.RETRY", 0.01)  # many looks for the port
    path = tmp_path / "show.toml"
    path.write_text(SHOW.replace("{midi}", 'port = "no-such-port"'))
    caplog.set_level(logging.INFO, "installation.control.midi")
    with LiveShow(path) as live:
        live.wait_for(lambda: any("midi:" in r.getMessage() for r in caplog.records), "the line")
        shown = len(live.display.presents)
        live.wait_for(lambda: len(live.display.presents) > shown + 20, "more frames")
        midi = live.control.midi
        assert midi is not None
        # What a port would hand over, through the same handlers as OSC.
        notes = [Message("note_on", note=62, velocity=100)]
        midi.apply(actions([Message("control_change", control=7, value=0), *notes], midi.settings))
        assert live.conductor.status().truncation == 0.0 and live.conductor.status().blackout
        midi.apply(actions(notes, midi.settings))
        assert not live.conductor.status().blackout  # a switch toggles
    lines = [r.getMessage() for r in caplog.records if r.name == "installation.control.midi"]
    assert len(lines) == 1 and "the show plays without MIDI" in lines[0], lines
    expected = "no MIDI system" if not SEQUENCER.exists() else "no MIDI input contains"
    assert expected in lines[0]


@pytest.mark.skipif(SEQUENCER.exists(), reason="this machine has a MIDI system (/dev/snd/seq)")
def test_midi_learn_without_a_port_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["midi-learn"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("installation: error: midi-learn: no MIDI system"), err


@pytest.mark.skipif(
    not SEQUENCER.exists() or not os.access(SEQUENCER, os.R_OK | os.W_OK),
    reason="no ALSA sequencer here (/dev/snd/seq): a virtual MIDI port needs one",
)
def test_a_virtual_port_steers_the_show(tmp_path: Path) -> None:
    import mido

    path = tmp_path / "show.toml"
    path.write_text(SHOW.replace("{midi}", 'port = "installation-test"'))
    with mido.open_output("installation-test", virtual=True) as port, LiveShow(path) as live:
        deadline = time.monotonic() + 10.0
        while live.conductor.status().truncation != 0.0:  # until the input has opened
            assert time.monotonic() < deadline, "the virtual port never reached the show"
            port.send(Message("control_change", control=7, value=0))
            time.sleep(0.1)
        port.send(Message("note_on", note=62, velocity=100))
        live.wait_for(lambda: live.conductor.status().blackout, "the blackout")
        port.send(Message("note_on", note=62, velocity=100))
        live.wait_for(lambda: not live.conductor.status().blackout, "the toggle back")
        port.send(Message("control_change", control=10, value=127))
        live.wait_for(lambda: live.conductor.status().speed == MAX_SPEED, "the speed")
