"""The conductor's whole state as one value, and its bytes for the screens of a room.

Every frame is a pure function of (show, state, show time), so screens that share show time
and state show the same frame without a message per frame. The state is a ``Snapshot``: the
``State`` in force and the changes already scheduled for later show times (a cue takes
effect a little in the future, so that every screen of a room receives it before its frame).
A sync leader sends it whole at every change and as its heartbeat; a follower installs it.
Sending the state rather than the operations means a lost datagram, a late joiner or a
healed partition are all repaired by the next one, with no log to replay.

The bytes are zlib-compressed JSON with a type tag on each of our own frozen dataclasses
(a fixed list of them, read by their type hints) and numpy arrays as dtype, shape and the
index of their data (base64 of their zlib-compressed bytes: a W bundle's latent repeats one w
per layer) in a table of the snapshot's arrays, where each array is once however often it
appears (a transition's start pictures are in the state in force and in each change
scheduled after it); never pickle, since they come from the network. The score is not
sent: a follower has its own, from the same show and bundle (a W space's arrays are too big
for a datagram), and only the entropy that random scenes draw their seeds from travels with
the state. Whatever arrives is checked before anything uses it: a malformed, oversized or
unknown part raises ``SnapshotError`` with one line saying where.
"""

from __future__ import annotations

import base64
import binascii
import functools
import itertools
import json
import math
import types
import typing
import zlib
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any

import numpy as np

from installation.errors import UserError, first_line
from installation.score.breathing import MAX_BEATS, Modulation
from installation.score.cue import Cue, Entry, Score, Walk
from installation.score.easing import get_easing
from installation.score.plan import Deferred, Layer
from installation.score.ramp import Ramp
from installation.score.trajectory import TIME_LIMIT, Trajectory
from installation.score.wspace import View

#: Changes scheduled ahead at most; more in one delay's time go onto the last one's time, so
#: a controller flooding changes cannot make the state (or its datagram) grow.
MAX_PENDING = 256
#: The most bytes a snapshot's text may decompress to: far more than any state needs, far
#: less than a hostile datagram could ask memory for.
MAX_BYTES = 1 << 20
#: The most bytes its latents may decompress to, all together: a W bundle's latent repeats
#: one w per layer, so a datagram's worth of them grows the most (16 faces of 16 x 512 ws
#: in a transition, and a change pending with another: 1 MiB).
MAX_ARRAY_BYTES = 16 << 20
#: Seconds a received state may reach from this PC's present. A leader's changes take effect
#: within its delay (at most 2 s) and it settles its playlist every frame, so a real state is
#: seconds from the present; one further off would have this PC walk a playlist scene by
#: scene to reach the present (a hostile one: for ever, keeping every scene it begins).
MAX_REACH = 60.0
#: The array type a state may hold (latents: a transition's start pictures).
_DTYPE = "float32"
_FULL = Ramp.constant(1.0)


class SnapshotError(ValueError):
    """Bytes that are not a snapshot of this show: the message is one line saying why."""


@dataclass(frozen=True)
class State:
    """Everything that decides the picture at a show time: the cue, the blackout level
    (``master``) and a lighting desk's dimmer under it, the default blackout fade, and the
    freeze (content time stands at ``frozen_at``; ``paused`` is the frozen seconds before)."""

    cue: Cue
    master: Ramp = _FULL
    dimmer: Ramp = _FULL
    blackout_seconds: float = 0.0
    frozen_at: float | None = None
    paused: float = 0.0

    def content(self, t: float) -> float:
        """Show time ``t`` without the frozen stretches: what cues count in."""
        if self.frozen_at is not None:
            t = min(t, self.frozen_at)
        return t - self.paused

    def governing(self, t: float) -> Cue:
        """The cue playing at show time ``t`` (a playlist may have moved on)."""
        return self.cue.governing(self.content(t))

    def brightness(self, t: float) -> float:
        """What the display multiplies the picture by at show time ``t``."""
        c = self.content(t)
        scene = self.cue.governing(c).brightness_at(c)
        return self.master.at(t) * self.dimmer.at(t) * scene

    def unfrozen(self, t: float) -> State:
        """The freeze ending at ``t``; content time counts on from where it stood."""
        assert self.frozen_at is not None
        return replace(self, frozen_at=None, paused=self.paused + t - self.frozen_at)

    def settled(self, t: float) -> State:
        """The same state as it stands at show time ``t`` for every time from ``t`` on: the
        playlist moved on, and a transition that is over let go of its start pictures
        (the biggest part of a snapshot, and of no use once it has ended)."""
        c = self.content(t)
        cue = self.cue.governing(c)
        if cue.entry is not None and cue.entry.progress(c) is None:
            cue = replace(cue, entry=None)
        return self if cue is self.cue else replace(self, cue=cue)

    def picture(self, t: float) -> bytes:
        """Bytes that are equal for two states exactly when they show the same from ``t``
        on: both settled at ``t``, and the default fade (not a picture) left out."""
        return encode_state(replace(self.settled(t), blackout_seconds=0.0))


@dataclass(frozen=True)
class Snapshot:
    """``current`` and the states that replace it at the show times of ``pending``,
    strictly increasing: the state at show time t is the last one scheduled at or before
    t. Immutable, so the conductor swaps it whole and hands it out without copying."""

    current: State
    pending: tuple[tuple[float, State], ...] = ()

    def at(self, t: float) -> State:
        state = self.current
        for when, later in self.pending:
            if when > t:
                break
            state = later
        return state

    @property
    def latest(self) -> State:
        """The state after every scheduled change: what a new change applies to."""
        return self.pending[-1][1] if self.pending else self.current

    def times(self) -> tuple[float, ...]:
        return tuple(when for when, _ in self.pending)

    def promoted(self, now: float) -> Snapshot:
        """The changes due at ``now`` made current."""
        due = sum(1 for when, _ in self.pending if when <= now)
        if not due:
            return self
        return Snapshot(self.pending[due - 1][1], self.pending[due:])

    def next_time(self, wanted: float) -> float:
        """When a change wanted at ``wanted`` can take effect: not before the last one
        scheduled (changes apply in order), and at its time once ``MAX_PENDING`` wait."""
        if not self.pending:
            return wanted
        last = self.pending[-1][0]
        return last if len(self.pending) >= MAX_PENDING else max(wanted, last)

    def then(self, at: float, state: State) -> Snapshot:
        """``state`` from ``at`` on (``at`` from ``next_time``)."""
        kept = self.pending[:-1] if self.pending and self.pending[-1][0] == at else self.pending
        return Snapshot(self.current, (*kept, (at, state)))


#: The types a snapshot may contain, by tag. Nothing else is ever built from the bytes.
_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (Snapshot, State, Cue, Walk, Trajectory, Ramp, Modulation, Entry, Layer, View)
}


def encode_state(state: State) -> bytes:
    """Canonical JSON bytes of one state (equal states, equal bytes): for comparisons."""
    return _dumps(_encode(state, State))


def encode(snapshot: Snapshot) -> bytes:
    """The bytes a sync leader sends: deterministic, so equal snapshots give equal bytes."""
    entropy = snapshot.current.cue.score.entropy
    tree = _encode(snapshot, Snapshot)
    table: dict[str, int] = {}
    _tabulate(tree, table)
    document = {"arrays": list(table), "entropy": entropy, "snapshot": tree}
    return zlib.compress(_dumps(document), 6)


def _tabulate(node: Any, table: dict[str, int]) -> None:
    """Replace the data of every array in the encoded ``node`` by its index in ``table``
    (data to index, in order of first appearance), so equal arrays are sent once."""
    if isinstance(node, list):
        for item in node:
            _tabulate(item, table)
    elif isinstance(node, dict):
        if node.get("@") == "ndarray":
            node["data"] = table.setdefault(node["data"], len(table))
            return
        for item in node.values():
            _tabulate(item, table)


def decode(data: bytes, score: Score) -> Snapshot:
    """The snapshot in ``data`` for this PC's own ``score`` (with the sender's entropy);
    ``SnapshotError`` on anything malformed, oversized or not of this show's shape."""
    reader = _Reader(score)
    text = reader.inflate(data, "snapshot", MAX_BYTES)
    try:
        document = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise SnapshotError(f"snapshot is not JSON: {_short(exc)}") from None
    if not isinstance(document, dict) or set(document) != {"arrays", "entropy", "snapshot"}:
        raise SnapshotError("snapshot must be an object with arrays, entropy and snapshot")
    arrays = document["arrays"]
    if not isinstance(arrays, list) or not all(isinstance(data, str) for data in arrays):
        raise SnapshotError("snapshot arrays must be a list of base64 texts")
    reader.arrays = arrays
    entropy = document["entropy"]
    if type(entropy) is not int or not 0 <= entropy < 2**63:
        raise SnapshotError("snapshot entropy must be an integer from 0 to 2**63 - 1")
    reader.score = replace(score, entropy=entropy)
    snapshot = reader.value(document["snapshot"], Snapshot, "snapshot")
    assert isinstance(snapshot, Snapshot)
    return snapshot


def check_near(snapshot: Snapshot, now: float) -> None:
    """``SnapshotError`` unless every change of ``snapshot`` is due within ``MAX_REACH``
    seconds after show time ``now``, and no playlist in it ended more than that before its
    state takes effect: what decoding cannot check, as it does not know the present."""
    if any(at > now + MAX_REACH for at in snapshot.times()):
        raise SnapshotError(f"snapshot schedules a change over {MAX_REACH:g} s ahead")
    for at, state in ((now, snapshot.current), *snapshot.pending):
        end = state.cue.end
        if end is not None and state.content(max(at, now)) > end + MAX_REACH:
            raise SnapshotError(f"snapshot plays a scene that ended over {MAX_REACH:g} s ago")


def _dumps(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def _short(exc: BaseException) -> str:
    return first_line(exc)[:120]


# Encoding: by the type hints of our dataclasses, so every number goes out as its declared
# type and equal states give equal text whichever path made them.


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _arms(hint: Any) -> tuple[Any, bool]:
    """The type a union hint stands for apart from None, and whether None is allowed. The
    only other union in a state is a latent's ``np.ndarray | Deferred``: an array."""
    if typing.get_origin(hint) not in (typing.Union, types.UnionType):
        return hint, False
    args = typing.get_args(hint)
    rest = [arg for arg in args if arg is not type(None)]
    if set(rest) == {np.ndarray, Deferred}:
        return np.ndarray, len(rest) < len(args)
    (only,) = rest
    return only, True


def _encode(value: Any, hint: Any) -> Any:
    hint, optional = _arms(hint)
    if value is None and optional:
        return None
    if hint is float:
        return float(value)
    if hint is int:
        return int(value)
    if hint is str:
        return str(value)
    if hint is np.ndarray:
        array = value.get() if isinstance(value, Deferred) else np.asarray(value)
        array = np.ascontiguousarray(array)
        return {
            "@": "ndarray",
            "dtype": array.dtype.name,
            "shape": list(array.shape),
            "data": base64.b64encode(zlib.compress(array.tobytes(), 6)).decode(),
        }
    if typing.get_origin(hint) is tuple:
        return [
            _encode(item, arg) for item, arg in zip(value, _items(hint, len(value)), strict=True)
        ]
    assert is_dataclass(hint) and _TYPES.get(hint.__name__) is hint, f"not a state type: {hint}"
    hints = _hints(hint)
    encoded = {"@": hint.__name__}
    for field in fields(hint):
        if hints[field.name] is not Score:
            encoded[field.name] = _encode(getattr(value, field.name), hints[field.name])
    return encoded


def _items(hint: Any, length: int) -> tuple[Any, ...]:
    """The hint of each item of a tuple of ``length`` items."""
    args = typing.get_args(hint)
    if len(args) == 2 and args[1] is Ellipsis:
        return (args[0],) * length
    return args


# Decoding: the same hints say what each value must be; then each type's own rules.


class _Reader:
    """Builds a state from decoded JSON for ``score``; the bytes its latents inflate to
    are counted against ``MAX_ARRAY_BYTES`` in all."""

    def __init__(self, score: Score) -> None:
        self.score = score
        self.array_bytes = MAX_ARRAY_BYTES
        #: The snapshot's table of array data, which arrays name by index.
        self.arrays: list[str] = []

    @staticmethod
    def inflate(data: bytes, where: str, limit: int) -> bytes:
        """``data`` decompressed: one whole zlib stream of at most ``limit`` bytes."""
        inflater = zlib.decompressobj()
        try:
            raw = inflater.decompress(data, limit + 1)
        except zlib.error as exc:
            raise SnapshotError(f"{where} is not zlib data: {exc}") from None
        if len(raw) > limit:
            raise SnapshotError(f"{where} is over {limit} bytes decompressed")
        if not inflater.eof or inflater.unused_data:
            raise SnapshotError(f"{where} is not one whole zlib stream")
        return raw

    def value(self, value: Any, hint: Any, where: str) -> Any:
        hint, optional = _arms(hint)
        if value is None:
            if optional:
                return None
            raise SnapshotError(f"{where}: missing")
        if hint is float:
            # Bounded, not only finite: times and speeds multiply (a walk's speed integral),
            # and an overflow to inf would fail every frame the worker makes from then on.
            if type(value) not in (int, float) or not abs(value) <= TIME_LIMIT:
                raise SnapshotError(f"{where}: expected a number of at most {TIME_LIMIT:g}")
            return float(value)
        if hint is int:
            if type(value) is not int or not -(2**63) <= value < 2**63:
                raise SnapshotError(f"{where}: expected a 64-bit integer")
            return value
        if hint is str:
            if type(value) is not str:
                raise SnapshotError(f"{where}: expected str")
            return value
        if hint is np.ndarray:
            return self.array(value, where)
        if typing.get_origin(hint) is tuple:
            if not isinstance(value, list):
                raise SnapshotError(f"{where}: expected a list")
            args = _items(hint, len(value))
            if len(args) != len(value):
                raise SnapshotError(f"{where}: expected {len(args)} items")
            return tuple(
                self.value(item, arg, f"{where}[{i}]")
                for i, (item, arg) in enumerate(zip(value, args, strict=True))
            )
        return self.object(value, hint, where)

    def object(self, value: Any, cls: type, where: str) -> Any:
        if not isinstance(value, dict):
            raise SnapshotError(f"{where}: expected an object")
        tag = value.get("@")
        if tag != cls.__name__:
            known = "unexpected" if isinstance(tag, str) and tag in _TYPES else "unknown"
            raise SnapshotError(f"{where}: {known} type {str(tag)[:40]!r}")
        hints = _hints(cls)
        wanted = {field.name for field in fields(cls) if hints[field.name] is not Score}
        if set(value) - {"@"} != wanted:
            odd = ", ".join(sorted((set(value) - {"@"}) ^ wanted))[:80]
            raise SnapshotError(f"{where}: fields {odd} do not fit {tag}")
        arguments = {
            name: self.value(value[name], hints[name], f"{where}.{name}") for name in wanted
        }
        arguments.update({name: self.score for name, hint in hints.items() if hint is Score})
        try:
            built = cls(**arguments)
        except UserError as exc:  # a trajectory checks its own values
            raise SnapshotError(f"{where}: {_short(exc)}") from None
        problem = _CHECKS[cls](built, self.score) if cls in _CHECKS else None
        if problem:
            raise SnapshotError(f"{where}: {problem}")
        return built

    def array(self, value: Any, where: str) -> np.ndarray:
        if not isinstance(value, dict) or set(value) != {"@", "dtype", "shape", "data"}:
            raise SnapshotError(f"{where}: expected an array")
        dtype, shape, data = value["dtype"], value["shape"], value["data"]
        if value["@"] != "ndarray" or dtype != _DTYPE:
            raise SnapshotError(f"{where}: arrays must be {_DTYPE}")
        if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
            raise SnapshotError(f"{where}: bad array shape")
        if type(data) is not int or not 0 <= data < len(self.arrays):
            raise SnapshotError(f"{where}: array data must be an index of the arrays")
        try:
            packed = base64.b64decode(self.arrays[data], validate=True)
        except (binascii.Error, ValueError):
            raise SnapshotError(f"{where}: array data is not base64") from None
        size = math.prod(shape) * np.dtype(dtype).itemsize if len(shape) <= 2 else -1
        if not 0 <= size <= self.array_bytes:
            raise SnapshotError(f"{where}: array shape {shape[:3]} is too big")
        raw = self.inflate(packed, where, size)
        if len(raw) != size:
            raise SnapshotError(f"{where}: array data does not fit its shape")
        self.array_bytes -= size
        array = np.frombuffer(raw, dtype=dtype).reshape(shape)
        if not np.all(np.isfinite(array)):
            raise SnapshotError(f"{where}: array holds values that are not finite")
        return array


# Each type's rules for a state that arrived from elsewhere: what the type's own code
# assumes of the values (indices within the show, sizes of the bundle), as one line.


def _check_cue(cue: Cue, score: Score) -> str | None:
    scenes = len(score.scenes)
    if not 0 <= cue.index < scenes:
        return f"scene index {cue.index} is not one of this show's {scenes}"
    if cue.next_index is not None and not 0 <= cue.next_index < scenes:
        return f"next scene index {cue.next_index} is not one of this show's {scenes}"
    if cue.serial < 0 or not 0 <= cue.seed < 2**63:
        return "serial and seed must not be negative"
    return None


def _check_trajectory(trajectory: Trajectory, score: Score) -> str | None:
    if (trajectory.latent_size, trajectory.distribution) != (
        score.latent_size,
        score.distribution,
    ):
        return "the latent size or distribution is not this bundle's"
    return None


def _check_entry(entry: Entry, score: Score) -> str | None:
    if entry.kind not in ("morph", "crossfade") or not entry.seconds > 0:
        return "a transition must be a morph or a crossfade of some seconds"
    if len(entry.sources) != score.streams:
        return f"a transition needs one start picture per face stream ({score.streams})"
    try:
        get_easing(entry.easing)
    except UserError as exc:
        return _short(exc)
    return None


def _check_layer(layer: Layer, score: Score) -> str | None:
    size = score.latent_size if score.wspace is None else score.wspace.size
    value = layer.value
    if not isinstance(value, np.ndarray) or value.shape != (size,) or value.dtype != np.float32:
        return f"a latent must be {size} float32 values"
    if layer.stages is not None and layer.stages < 1:
        return "a layer runs at least one stage"
    return None


def _check_modulation(modulation: Modulation, score: Score) -> str | None:
    return f"at most {MAX_BEATS} beats" if len(modulation.beats) > MAX_BEATS else None


def _check_snapshot(snapshot: Snapshot, score: Score) -> str | None:
    times = snapshot.times()
    if len(times) > MAX_PENDING:
        return f"at most {MAX_PENDING} scheduled changes"
    if any(b <= a for a, b in itertools.pairwise(times)):
        return "scheduled changes must be in increasing show time"
    return None


_CHECKS: dict[type, typing.Callable[[Any, Score], str | None]] = {
    Cue: _check_cue,
    Trajectory: _check_trajectory,
    Entry: _check_entry,
    Layer: _check_layer,
    Modulation: _check_modulation,
    Snapshot: _check_snapshot,
}
