"""MIDI in: a controller's knobs and pads steering the show through the OSC addresses.

The ``[midi]`` table (``installation.score.midi_settings``) maps controller (CC) numbers to
OSC addresses that take one number and note numbers to triggers. A CC value 0 to 127 is
scaled across the address's range in the OSC table (``ADDRESSES``), and the value is handed
to the same handler an OSC message would reach, so MIDI moves what OSC moves, with the same
checks and the conductor's glide; the last change wins, whoever sent it. A note on sets off
a trigger, or toggles a switch (blackout, freeze) from the show's present state.

The input runs on its own thread and reads what arrived every few milliseconds; of the
changes of one controller in one read only the last is applied, so a fader swept fast costs
the conductor a few calls, not hundreds. Without mido and python-rtmidi (the ``midi`` extra),
without a MIDI system (no ALSA sequencer) or without a matching input, the show plays on and
the log says why, once; the thread looks again every few seconds, so a controller plugged in
later is found.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from installation.control.osc.addresses import ADDRESSES, AddressSpace
from installation.control.osc.arguments import BadArguments
from installation.errors import UserError
from installation.ratelog import RateLimitedLog
from installation.score.midi_settings import SWITCHES, MidiSettings

log = logging.getLogger(__name__)

#: Seconds between reads of the port, and between looks for a port that is not there.
POLL = 0.005
RETRY = 5.0
#: Who the handlers are told sent the message (they reply only to /ping and /status).
SENDER = ("midi", 0)
INSTALL = "pip install 'installation[midi]'"
#: Linux's MIDI system; without it rtmidi fails, printing to stderr each time it is asked.
SEQUENCER = Path("/dev/snd/seq")


class NoPort(Exception):
    """Why no MIDI input could be opened: one line for the log or the terminal."""


def scaled(name: str, value: int) -> float:
    """CC ``value`` (0 to 127) across the range of OSC address ``/name``: 0 is its lowest,
    127 its highest."""
    low, high = ADDRESSES["/" + name].range[0]  # type: ignore[misc]
    return low + (high - low) * value / 127


def actions(messages: list[Any], settings: MidiSettings) -> list[tuple[str, float | None]]:
    """What ``messages`` (mido Messages, in order) ask for: (address name, None) for each
    note on, in order, then (name, CC value scaled) for each controller moved, its last value."""
    faders, notes = dict(settings.cc), dict(settings.notes)
    triggers: list[tuple[str, float | None]] = []
    moved: dict[str, float] = {}
    for message in messages:
        if message.type == "control_change" and message.control in faders:
            name = faders[message.control]
            moved[name] = scaled(name, message.value)
        elif message.type == "note_on" and message.velocity > 0 and message.note in notes:
            triggers.append((notes[message.note], None))
    return [*triggers, *moved.items()]


@contextmanager
def open_input(pattern: str | None) -> Iterator[Any]:
    """The first MIDI input whose name contains ``pattern`` (any input when None), opened
    with mido's rtmidi backend; ``NoPort`` says why there is none."""
    try:
        import mido
    except ImportError:
        raise NoPort(f"mido and python-rtmidi are not installed ({INSTALL})") from None
    if sys.platform == "linux" and not SEQUENCER.exists():
        raise NoPort(f"no MIDI system on this machine (no ALSA sequencer, {SEQUENCER})")
    try:
        names = mido.get_input_names()
    except OSError as exc:  # rtmidi's SystemError: no ALSA sequencer (/dev/snd/seq)
        raise NoPort(f"no MIDI system on this machine ({exc})") from None
    found = [name for name in names if pattern is None or pattern in name]
    if not found:
        inputs = ", ".join(names) or "none"
        wanted = "no MIDI input" if pattern is None else f"no MIDI input contains {pattern!r}"
        raise NoPort(f"{wanted} (inputs: {inputs})")
    try:
        port = mido.open_input(found[0])
    except OSError as exc:  # unplugged between the listing and now
        raise NoPort(f"cannot open {found[0]!r}: {exc}") from None
    with port:
        yield port


class MidiInput:
    """The listener thread; ``start``/``stop`` around the show, ``update`` on a reload."""

    def __init__(self, settings: MidiSettings, space: AddressSpace) -> None:
        self.settings = settings
        self.space = space
        self.handlers = space.handlers()
        self.problems = RateLimitedLog(log)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="midi", daemon=True)
        self._missing: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)

    def update(self, settings: MidiSettings) -> None:
        """A reloaded ``[midi]``: new maps apply at the next read; a new ``port`` opens at
        the thread's next look for one."""
        self.settings = settings

    def _run(self) -> None:
        while not self._stop.is_set():
            pattern = self.settings.port
            try:
                with open_input(pattern) as port:
                    log.info("midi: listening to %r", port.name)
                    self._missing = None
                    self._listen(port, pattern)
            except NoPort as exc:
                if str(exc) != self._missing:
                    log.warning("midi: %s; the show plays without MIDI", exc)
                    self._missing = str(exc)
                self._stop.wait(RETRY)
            except Exception:  # the input outlives whatever one port or message does
                self.problems.warning("failed", "midi: the input failed", exc_info=True)
                self._stop.wait(RETRY)

    def _listen(self, port: Any, pattern: str | None) -> None:
        while not self._stop.wait(POLL) and self.settings.port == pattern:
            self.apply(actions(list(port.iter_pending()), self.settings))

    def apply(self, todo: list[tuple[str, float | None]]) -> None:
        """Hand each action to its OSC handler; a refusal is logged (at most every 10 s)."""
        for name, value in todo:
            address = "/" + name
            try:
                self.handlers[address](SENDER, address, *self._arguments(name, value))
            except (BadArguments, UserError) as exc:
                self.problems.warning("rejected", f"midi: {name} ignored: {exc}")

    def _arguments(self, name: str, value: float | None) -> tuple[Any, ...]:
        if value is not None:
            return (value,)
        if name in SWITCHES:
            read = ADDRESSES["/" + name].value
            assert read is not None, f"/{name} has no value to toggle"
            return (1 - read(self.space.conductor.status())[0],)
        return ()


def learn(pattern: str | None, write: Callable[[str], None] = print) -> None:
    """Print every message from the input until Ctrl-C: type, channel (1 to 16) and the
    numbers a ``[midi]`` map needs."""
    with open_input(pattern) as port:
        write(f"listening to {port.name!r}; press keys and move knobs, Ctrl-C to stop")
        for message in port:
            write(describe(message))


def describe(message: Any) -> str:
    """One line for a mido Message, e.g. ``control_change channel 1 control 7 value 64``."""
    fields = message.dict()
    fields.pop("time", None)
    kind = fields.pop("type")
    if "channel" in fields:
        fields["channel"] += 1
    return " ".join([kind, *(f"{key} {value}" for key, value in fields.items())])
