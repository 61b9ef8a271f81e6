"""The show's ``[midi]`` table: which MIDI input steers the show, and what each key and knob does.

A MIDI controller has no addresses of its own, only note and controller numbers, so the show
file maps them to OSC addresses (without the leading slash): a controller (CC) moves a
parameter across its OSC range, a note sets off a trigger. ``installation midi-learn`` prints
what a controller sends, so a technician can write the map.
"""

from __future__ import annotations

from dataclasses import dataclass

from installation.tomlfile import Section

#: Parameters a controller (CC 0 to 127) can move: OSC addresses taking one number, scaled
#: across that address's range (a test checks them against the OSC table).
FADERS = ("truncation", "intensity", "morph/speed", "morph", "hold", "rotate", "fade")
#: What a note can set off: triggers act on note on; switches (blackout, freeze) toggle.
TRIGGERS = ("face/next", "scene/next", "scene/prev", "show/reload", "beat")
SWITCHES = ("blackout", "freeze")


@dataclass(frozen=True)
class MidiSettings:
    """``port`` picks the first input whose name contains it (None: the first input);
    ``cc`` and ``notes`` map numbers to parameters (OSC addresses without the slash)."""

    port: str | None = None
    cc: tuple[tuple[int, str], ...] = ()
    notes: tuple[tuple[int, str], ...] = ()


def parse_midi(section: Section) -> MidiSettings:
    port = section.get("port", str, None)  # type: ignore[arg-type]
    cc = _map(section, "cc", FADERS)
    notes = _map(section, "notes", TRIGGERS + SWITCHES)
    section.finish()
    return MidiSettings(port, cc, notes)


def _map(section: Section, key: str, names: tuple[str, ...]) -> tuple[tuple[int, str], ...]:
    """``key = { 1 = "intensity", ... }``: numbers 0 to 127 and names from ``names``."""
    if not section.has(key):
        return ()
    table = section.table(key)
    pairs = []
    for number in table.data:
        name = table.get(number, str)
        if not number.isdigit() or not 0 <= int(number) <= 127:
            raise table.error(number, f"expected a MIDI number from 0 to 127, got {number!r}")
        if name not in names:
            raise table.error(number, f"expected one of {', '.join(names)}; got {name!r}")
        pairs.append((int(number), name))
    return tuple(sorted(pairs))
