"""Fixture files a lighting designer imports, written from the channel table: the Open Fixture
Library's JSON (which many desks and visualisers convert from) and QLC+'s .qxf.

Both come from ``channels.CHANNELS``, so the files, the receivers and docs/dmx.md cannot
disagree. Given the show's scene names, the scene channel lists each scene's band of values.
"""

from __future__ import annotations

import datetime
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from installation.control.dmx.channels import CHANNELS, HALF, Channel, scene_bands, slot_names
from installation.files import write_atomic

NAME = "GAN faces installation"
OFL_SCHEMA = (
    "https://raw.githubusercontent.com/OpenLightingProject/open-fixture-library/master/"
    "schemas/fixture.json"
)
QXF_NAMESPACE = "http://www.qlcplus.org/FixtureDefinition"
FORMATS = ("ofl", "qxf")


def write_fixture(kind: str, out: Path, scenes: list[str]) -> None:
    """Write the fixture as ``kind`` ("ofl" or "qxf") to ``out``, whole or not at all."""
    text = ofl_text(scenes) if kind == "ofl" else qxf_text(scenes)
    write_atomic(out, text.encode("utf-8"))


def ranges(channel: Channel, scenes: list[str]) -> list[tuple[int, int, str | None]]:
    """The coarse channel's ranges of values as (first, last, what it does; None: nothing)."""
    if channel.kind == "level":
        unit = f" {channel.unit}" if channel.unit else ""
        return [(0, 255, f"{channel.description}, {channel.low:g} to {channel.high:g}{unit}")]
    if channel.kind == "select":
        bands = scene_bands(len(scenes))
        return [(0, 0, None)] + [(a, b, name) for (a, b), name in zip(bands, scenes, strict=False)]
    return [(0, HALF, None), (HALF + 1, 255, channel.description)]


def ofl(scenes: list[str]) -> dict[str, Any]:
    today = datetime.date.today().isoformat()
    available: dict[str, Any] = {}
    for channel in CHANNELS:
        entry: dict[str, Any] = {}
        if channel.fine:
            entry["fineChannelAliases"] = [f"{channel.name} fine"]
            # OFL reads a 16-bit channel's dmxRange in 16-bit values unless told otherwise;
            # ``ranges`` gives the coarse channel's 8-bit values.
            entry["dmxValueResolution"] = "8bit"
        if channel.group == "Intensity":
            entry["capability"] = {"type": "Intensity"}
        else:
            entry["capabilities"] = [_ofl_capability(channel, *r) for r in ranges(channel, scenes)]
        available[channel.name] = entry
    return {
        "$schema": OFL_SCHEMA,
        "name": NAME,
        "categories": ["Other"],
        "meta": {
            "authors": ["installation dmx-fixture"],
            "createDate": today,
            "lastModifyDate": today,
        },
        "comment": "A screen of generated faces; see docs/dmx.md for what each channel does.",
        "availableChannels": available,
        "modes": [
            {
                "name": f"{len(slot_names())}-channel",
                "shortName": f"{len(slot_names())}ch",
                "channels": slot_names(),
            }
        ],
    }


def _ofl_capability(channel: Channel, first: int, last: int, what: str | None) -> dict[str, Any]:
    capability: dict[str, Any] = {"dmxRange": [first, last]}
    if what is None:
        capability["type"] = "NoFunction"
    elif channel.kind == "select":
        capability.update(type="Effect", effectName=what)
    else:
        capability.update(type="Generic", comment=what)
    return capability


def ofl_text(scenes: list[str]) -> str:
    return json.dumps(ofl(scenes), indent=2) + "\n"


def qxf_text(scenes: list[str]) -> str:
    ET.register_namespace("", QXF_NAMESPACE)
    root = _element("FixtureDefinition")
    creator = _child(root, "Creator")
    _child(creator, "Name", "installation dmx-fixture")
    _child(creator, "Version", "1")
    _child(creator, "Author", "installation")
    _child(root, "Manufacturer", "Generic")
    _child(root, "Model", NAME)
    _child(root, "Type", "Other")
    for channel in CHANNELS:
        _qxf_channel(root, channel, channel.name, 0, scenes)
        if channel.fine:
            _qxf_channel(root, channel, f"{channel.name} fine", 1, scenes)
    mode = _child(root, "Mode")
    mode.set("Name", f"{len(slot_names())}-channel")
    for number, name in enumerate(slot_names()):
        _child(mode, "Channel", name).set("Number", str(number))
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE FixtureDefinition>\n{body}\n'


def _qxf_channel(
    root: ET.Element, channel: Channel, name: str, byte: int, scenes: list[str]
) -> None:
    element = _child(root, "Channel")
    element.set("Name", name)
    group = _child(element, "Group", channel.group)
    group.set("Byte", str(byte))
    found = [(0, 255, f"{channel.name}, low byte")] if byte else ranges(channel, scenes)
    for first, last, what in found:
        capability = _child(element, "Capability", what or "Nothing")
        capability.set("Min", str(first))
        capability.set("Max", str(last))


def _element(tag: str) -> ET.Element:
    return ET.Element(f"{{{QXF_NAMESPACE}}}{tag}")


def _child(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    child = ET.SubElement(parent, f"{{{QXF_NAMESPACE}}}{tag}")
    if text is not None:
        child.text = text
    return child
