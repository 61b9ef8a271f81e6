"""Strict reading of the project's TOML files (show files, bundle manifests).

Both kinds of file are written by hand by artists and technicians, so every mistake must come
back as one line naming the file, the line and the key path: ``show.toml:12: scene.hold:
expected a number, got "four"``. A ``Section`` hands out values one key at a time, checks
their type, and at the end reports any key nobody asked for, which catches typos that would
otherwise be silently ignored.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from installation.errors import UserError, reason

T = TypeVar("T")

_MISSING: Any = object()

_TYPE_NAMES: dict[type, str] = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "a table",
}

#: The largest file read: a thousand scenes that each set every key make about 250 KiB.
MAX_BYTES = 1024 * 1024
#: The largest password or token file read (``Section.secret``).
SECRET_BYTES = 4096

#: How alike (``difflib`` ratio) an unknown key must be to a missing one to be named as its
#: likely misspelling: one slip in a short name; not ``input_name`` for ``output_name``.
_LOOKALIKE = 0.8

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ASSIGN = re.compile(r"^\s*([A-Za-z0-9_\-\"']+)\s*=")


@dataclass
class TomlDocument:
    """A parsed TOML file that remembers its text, so errors can point at a line."""

    path: Path
    text: str
    data: dict[str, Any]

    def line_of(self, keypath: tuple[str | int, ...]) -> int | None:
        """Best-effort line number of a key path such as ``("stages", 0, "file")``.

        Handles ``[table]`` and ``[[array-of-tables]]`` headers, which is how our files are
        written (an array of tables is placed at its first header); returns None when the key
        cannot be placed (inline tables, say).
        """
        table: tuple[str | int, ...] = ()
        array_counts: dict[tuple[str, ...], int] = {}
        for number, line in enumerate(self.text.splitlines(), start=1):
            header = _HEADER.match(line)
            if header:
                names = tuple(part.strip().strip("\"'") for part in header.group(2).split("."))
                if header.group(1) == "[[":
                    index = array_counts.get(names, -1) + 1
                    array_counts[names] = index
                    table = (*names, index)
                else:
                    table = names
                if keypath in (table, names):
                    return number
                continue
            assign = _ASSIGN.match(line)
            if assign and (*table, assign.group(1).strip("\"'")) == keypath[: len(table) + 1]:
                return number
        return None


def read_toml(path: Path, what: str) -> TomlDocument:
    """Read and parse ``path``; ``what`` names the kind of file for the error message."""
    raw = read_regular(path, what, MAX_BYTES)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: cannot read {what}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: invalid TOML: {exc}") from None
    return TomlDocument(path, text, data)


def read_regular(path: Path, what: str, limit: int) -> bytes:
    """The bytes of ``path``, when it is a regular file of at most ``limit`` bytes.

    Only a regular file is read. A FIFO put in a file's place would block the reading thread
    (a reload) until someone writes to it, a device could be read forever, and a huge file
    would take minutes and gigabytes to parse; each is one line instead. The file is opened
    without blocking and judged by what was opened, not by a look at the path beforehand that
    could already be out of date.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise UserError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read {what}: {reason(exc)}") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise UserError(f"{path}: is {_kind(mode)}, expected a {what}")
        with open(descriptor, "rb", closefd=False) as file:
            raw = file.read(limit + 1)
    except OSError as exc:
        raise UserError(f"{path}: cannot read {what}: {reason(exc)}") from None
    finally:
        os.close(descriptor)
    if len(raw) > limit:
        size = f"{limit // 1024} KiB" if limit >= 1024 else f"{limit} bytes"
        raise UserError(f"{path}: larger than {size}; a {what} is far smaller")
    return raw


def _fits(value: Any, kind: type) -> bool:
    """Whether ``value`` is of ``kind``, where an integer is also a number and a boolean is
    only ``bool`` (in Python it is an integer too)."""
    if isinstance(value, bool):
        return kind is bool
    return isinstance(value, kind) or (kind is float and isinstance(value, int))


def _kind(mode: int) -> str:
    """What a file that is not a regular file is, for an error message."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _range_text(low: float, high: float | None, low_open: bool, unit: str) -> str:
    """A range as an error message words it: "0 to 600 seconds", "more than 0 and at most
    240", "at least 1"."""
    if low_open:
        wanted = f"more than {_text(low)}" + ("" if high is None else f" and at most {_text(high)}")
    else:
        wanted = f"at least {_text(low)}" if high is None else f"{_text(low)} to {_text(high)}"
    return f"{wanted} {unit}" if unit else wanted


def _text(number: float) -> str:
    """A number as a message shows it: ``3`` for 3.0, an integer in full."""
    return f"{number:g}" if isinstance(number, float) else str(number)


def format_keypath(keypath: tuple[str | int, ...]) -> str:
    """``("stages", 0, "file")`` -> ``stages[0].file``."""
    text = ""
    for part in keypath:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{key_text(part)}" if text else key_text(part)
    return text


def key_text(key: str) -> str:
    """A key as TOML would write it: bare when it can be, else quoted with escapes, so a key
    holding a newline or a control character cannot break an error into two lines."""
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key)


@dataclass
class Section:
    """A view of one table of a document that hands out typed values and tracks their use."""

    doc: TomlDocument
    data: dict[str, Any]
    keypath: tuple[str | int, ...] = ()
    _used: set[str] = field(default_factory=set)

    @classmethod
    def root(cls, doc: TomlDocument) -> Section:
        return cls(doc, doc.data)

    def error(self, key: str | None, message: str) -> UserError:
        """A UserError for ``key`` of this table (or the table itself when key is None); a
        key that is not in the file (a missing one) is placed at its table's line."""
        keypath = self.keypath if key is None else (*self.keypath, key)
        line = self.doc.line_of(keypath) or self.doc.line_of(self.keypath)
        where = f"{self.doc.path}:{line}" if line else str(self.doc.path)
        name = format_keypath(keypath)
        return UserError(f"{where}: {name}: {message}" if name else f"{where}: {message}")

    def has(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str, kind: type[T], default: T = _MISSING) -> T:
        """The value of ``key`` checked to be of ``kind``; a missing key without a default
        is an error. Integers are accepted where numbers are expected, booleans never are."""
        self._used.add(key)
        if key not in self.data:
            if default is _MISSING:
                raise self.missing(key, kind, _TYPE_NAMES[kind])
            return default
        value = self.data[key]
        if not _fits(value, kind):
            raise self.error(key, f"expected {_TYPE_NAMES[kind]}, got {value!r}")
        return float(value) if kind is float else value  # type: ignore[return-value]

    def missing(self, key: str, kind: type, expected: str) -> UserError:
        """The error for a required ``key`` that is absent, naming a key of this table that
        looks like a misspelling of it: nobody has read it yet, it is spelled much the same
        and it holds a ``kind`` of value. Without the hint, ``ouput_name`` next to a missing
        ``output_name`` is easy to stare past."""
        unread = [
            other
            for other, value in self.data.items()
            if other not in self._used and _fits(value, kind)
        ]
        message = f"missing; expected {expected}"
        for other in difflib.get_close_matches(key, unread, n=1, cutoff=_LOOKALIKE):
            line = self.doc.line_of((*self.keypath, other))
            where = f" on line {line}" if line else ""
            message += f" (there is an unknown key {key_text(other)}{where}: a typo?)"
        return self.error(key, message)

    def number(
        self,
        key: str,
        low: float,
        high: float | None = None,
        default: float = _MISSING,
        *,
        low_open: bool = False,
        kind: type[float] | type[int] = float,
        unit: str = "",
        expected: str = "",
    ) -> Any:
        """The number at ``key`` within ``low..high`` (no upper bound when ``high`` is None;
        ``low`` itself excluded when ``low_open``), a ``kind`` of float or int. Every range in
        every file is checked here, so the messages read alike (``expected 0 to 600 seconds,
        got 1000``); ``expected`` words the range instead where a bound needs explaining."""
        value = self.get(key, kind, default)
        above = low < value if low_open else low <= value
        if not (math.isfinite(value) and above and (high is None or value <= high)):
            wanted = expected or _range_text(low, high, low_open, unit)
            raise self.error(key, f"expected {wanted}, got {_text(value)}")
        return value

    def numbers(self, key: str, length: int | None = None) -> tuple[float, ...]:
        """A list of numbers, optionally of a fixed length."""
        values = self.get(key, list)
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
            raise self.error(key, f"expected a list of numbers, got {values!r}")
        if length is not None and len(values) != length:
            raise self.error(key, f"expected {length} numbers, got {len(values)}")
        return tuple(float(v) for v in values)

    def integers(self, key: str, length: int | None = None) -> tuple[int, ...]:
        """A non-empty list of positive integers, such as a tensor shape, optionally of a
        fixed length."""
        values = self.get(key, list)
        if not values or any(isinstance(v, bool) or not isinstance(v, int) for v in values):
            raise self.error(key, f"expected a list of integers, got {values!r}")
        if length is not None and len(values) != length:
            raise self.error(key, f"expected {length} integers, got {len(values)}")
        if any(v <= 0 for v in values):
            raise self.error(key, f"every size must be positive, got {values!r}")
        return tuple(values)

    def choice(self, key: str, choices: tuple[str, ...], default: str = _MISSING) -> str:
        value = self.get(key, str, default)
        if value not in choices:
            raise self.error(key, f"expected one of {', '.join(choices)}; got {value!r}")
        return value

    def secret(self, key: str, file_key: str) -> str | None:
        """A password or token written at ``key``, or read once from the file named at
        ``file_key`` (relative to this file's folder, surrounding whitespace dropped), so that
        a show kept in git need not hold it; None when neither key is set."""
        if self.has(key) and self.has(file_key):
            raise self.error(file_key, f"give {key} or {file_key}, not both")
        if not self.has(file_key):
            return self.get(key, str, None)  # type: ignore[arg-type]
        path = self.doc.path.parent / self.get(file_key, str)
        try:
            text = read_regular(path, "secret file", SECRET_BYTES).decode("utf-8").strip()
        except UserError as exc:
            raise self.error(file_key, str(exc)) from None
        except UnicodeDecodeError:
            raise self.error(file_key, f"{path}: not UTF-8 text") from None
        if not text:
            raise self.error(file_key, f"{path}: is empty")
        return text

    def table(self, key: str) -> Section:
        return Section(self.doc, self.get(key, dict), (*self.keypath, key))

    def tables(self, key: str) -> list[Section]:
        """An array of tables (``[[key]]``)."""
        if key not in self.data:
            self._used.add(key)
            raise self.missing(key, list, f"one or more [[{key}]] tables")
        values = self.get(key, list)
        if not values or not all(isinstance(v, dict) for v in values):
            raise self.error(key, "expected one or more [[" + key + "]] tables")
        return [Section(self.doc, v, (*self.keypath, key, i)) for i, v in enumerate(values)]

    def finish(self) -> None:
        """Reject keys nobody read: in a hand-written file they are almost always typos."""
        for key in self.data:
            if key not in self._used:
                raise self.error(key, "unknown key")
