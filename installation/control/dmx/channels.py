"""The fixture's DMX channels: ONE table that the receivers, the fixture files and docs/dmx.md
all follow, and the steering that turns a desk's universe into conductor calls.

A channel acts only when what it means changes (a level's value, a switch crossing 50 %, the
scene band, a trigger's rising edge), so a desk that keeps sending a whole universe 44 times a
second does not fight OSC or the web remote over the same parameter: the last one to move it
wins. The first universe after start only records where the desk's faders are, because a desk
that boots with its faders at zero must not black out a gallery. Levels post to the same
conductor calls as OSC, within the same limits, and glide as OSC changes do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from installation.errors import UserError
from installation.ratelog import RateLimitedLog
from installation.score.conductor import Conductor
from installation.score.dmx_settings import FOOTPRINT
from installation.score.scenes import MAX_SPEED

log = logging.getLogger(__name__)

#: The longest hold a desk can set: 8 bits over an hour would be 14 s steps.
MAX_HOLD = 60.0
#: Switches and triggers are on above 50 %.
HALF = 127


@dataclass(frozen=True)
class Channel:
    """One function of the fixture. ``kind`` is "level" (``low`` to ``high`` across the
    channel's range), "switch" (on above 50 %), "select" (a band of values per scene, 0 for
    none) or "trigger" (acts as the value rises through 50 %); ``fine`` adds a second channel
    for the low byte (16 bits, for slow fades); ``call`` posts a meaning to the conductor."""

    name: str
    kind: str
    #: What a desk files it under (the fixture files' channel group).
    group: str
    description: str
    call: Callable[[Conductor, object], None]
    fine: bool = False
    low: float = 0.0
    high: float = 1.0
    unit: str = ""

    @property
    def width(self) -> int:
        return 2 if self.fine else 1


def _scene(conductor: Conductor, index: object) -> None:
    assert isinstance(index, int)
    conductor.go_to_scene(index + 1)


def _face_next(conductor: Conductor, pressed: object) -> None:
    conductor.next_face()


#: The channel map, in DMX order from the fixture's start address.
CHANNELS: tuple[Channel, ...] = (
    Channel(
        "Master dimmer",
        "level",
        "Intensity",
        "brightness of the picture, under the blackout",
        lambda c, v: c.set_master(float(v)),  # type: ignore[arg-type]
        fine=True,
    ),
    Channel(
        "Blackout",
        "switch",
        "Shutter",
        "fades to black over the /fade time",
        lambda c, v: c.blackout(bool(v)),
    ),
    Channel(
        "Scene",
        "select",
        "Effect",
        "scene select: equal bands of 1 to 255, one per scene in show order; 0 leaves it",
        _scene,
    ),
    Channel(
        "Morph speed",
        "level",
        "Speed",
        "pace multiplier, as /morph/speed",
        lambda c, v: c.set_pace(speed=float(v)),  # type: ignore[arg-type]
        fine=True,
        high=MAX_SPEED,
        unit="x",
    ),
    Channel(
        "Hold",
        "level",
        "Speed",
        "seconds each face is held, as /hold",
        lambda c, v: c.set_pace(hold=float(v)),  # type: ignore[arg-type]
        high=MAX_HOLD,
        unit="s",
    ),
    Channel(
        "Truncation",
        "level",
        "Effect",
        "how far faces stray from the average face, as /truncation",
        lambda c, v: c.set_truncation(float(v)),  # type: ignore[arg-type]
        fine=True,
    ),
    Channel(
        "Intensity",
        "level",
        "Effect",
        "depth of the breathing, as /intensity",
        lambda c, v: c.set_intensity(float(v)),  # type: ignore[arg-type]
    ),
    Channel(
        "Freeze",
        "switch",
        "Maintenance",
        "stops faces where they are",
        lambda c, v: c.freeze(bool(v)),
    ),
    Channel("Face next", "trigger", "Effect", "moves on to the next face as it rises", _face_next),
)


def slot_names() -> list[str]:
    """Every DMX channel the fixture takes, in order: a fine channel follows its coarse one."""
    names = []
    for channel in CHANNELS:
        names.append(channel.name)
        if channel.fine:
            names.append(f"{channel.name} fine")
    return names


assert len(slot_names()) == FOOTPRINT, "dmx_settings.FOOTPRINT must match the table"


def scene_band(value: int, scenes: int) -> int | None:
    """The scene (index from 0) that DMX ``value`` selects among ``scenes``: 1 to 255 in equal
    bands, in show order; None for 0. Beyond 255 scenes, the first 255 can be chosen."""
    if value == 0 or scenes == 0:
        return None
    return (value - 1) * min(scenes, 255) // 255


def scene_bands(scenes: int) -> list[tuple[int, int]]:
    """The DMX values (first, last) of each of the first 255 of ``scenes`` scenes."""
    bands: list[tuple[int, int]] = []
    for value in range(1, 256):
        index = scene_band(value, scenes)
        if index is not None and index == len(bands):
            bands.append((value, value))
        elif index is not None:
            bands[index] = (bands[index][0], value)
    return bands


def meaning(channel: Channel, raw: int, scenes: int) -> Hashable:
    """What ``raw`` (8 or 16 bits) means on ``channel``; a change of meaning is what acts."""
    if channel.kind == "level":
        top = 65535 if channel.fine else 255
        return channel.low + (channel.high - channel.low) * raw / top
    if channel.kind == "select":
        return scene_band(raw, scenes)
    return raw > HALF


class DmxSteering:
    """Reads the fixture's channels from each universe at ``start`` (1-based) and posts what
    changed to ``conductor``; runs on the receiving thread only."""

    def __init__(self, conductor: Conductor, start: int, problems: RateLimitedLog) -> None:
        self.conductor = conductor
        self.start = start
        self.problems = problems
        #: Channel changes posted, and those the conductor refused (counted, logged).
        self.changes = 0
        self.rejected = 0
        self._slots: bytes | None = None

    def apply(self, universe: bytes) -> None:
        """Act on the channels whose meaning changed since the last universe; a universe
        shorter than the fixture's channels leaves the missing ones as they were."""
        begin = self.start - 1
        received = universe[begin : begin + FOOTPRINT]
        before = self._slots or bytes(FOOTPRINT)
        slots = received + before[len(received) :]
        scenes = len(self.conductor.scene_names())
        if self._slots is not None:
            # Both universes are read with today's scenes: a reload that changes the number
            # of scenes moves the bands under a fader that stands still, and must not cut.
            olds = _read(self._slots, scenes)
            for channel, old, new in zip(CHANNELS, olds, _read(slots, scenes), strict=True):
                if new != old:
                    self._act(channel, old, new)
        self._slots = slots

    def release(self) -> None:
        """The desk let go: the show's own values glide back, and a blackout or freeze the
        desk holds ends. The desk's faders are remembered, so only a fader it moves again
        takes its parameter back."""
        self.conductor.restore()
        if self._holds("Blackout"):
            self.conductor.blackout(False)
        if self._holds("Freeze"):
            self.conductor.freeze(False)
        log.info("dmx: the desk released the show; its own values glide back")

    def _holds(self, name: str) -> bool:
        index = [channel.name for channel in CHANNELS].index(name)
        return self._slots is not None and bool(_read(self._slots, 0)[index])

    def _act(self, channel: Channel, old: Hashable, new: Hashable) -> None:
        if channel.kind == "trigger" and not (new and not old):
            return
        if new is None:
            return
        try:
            channel.call(self.conductor, new)
        except UserError as exc:
            self.rejected += 1
            self.problems.warning("rejected", f"dmx: {channel.name} ignored: {exc}")
        else:
            self.changes += 1


def _read(slots: bytes, scenes: int) -> list[Hashable]:
    """Each channel's meaning, the scene channel's among ``scenes`` scenes."""
    meanings: list[Hashable] = []
    index = 0
    for channel in CHANNELS:
        raw = slots[index]
        if channel.fine:
            raw = raw << 8 | slots[index + 1]
        meanings.append(meaning(channel, raw, scenes))
        index += channel.width
    return meanings
