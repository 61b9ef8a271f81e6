"""Strict reading of the project's TOML files (show files, bundle manifests).

Both kinds of file are written by hand by artists and technicians, so every mistake must come
back as one line naming the file, the line and the key path: ``show.toml:12: scene.hold:
expected a number, got "four"``. A ``Section`` hands out values one key at a time, checks
their type, and at the end reports any key nobody asked for, which catches typos that would
otherwise be silently ignored.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from installation.errors import UserError

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

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?")
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
        written; returns None when the key cannot be placed (inline tables, say).
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
                if table == keypath:
                    return number
                continue
            assign = _ASSIGN.match(line)
            if assign and (*table, assign.group(1).strip("\"'")) == keypath[: len(table) + 1]:
                return number
        return None


def read_toml(path: Path, what: str) -> TomlDocument:
    """Read and parse ``path``; ``what`` names the kind of file for the error message."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, expected a {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read {what}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: invalid TOML: {exc}") from None
    return TomlDocument(path, text, data)


def format_keypath(keypath: tuple[str | int, ...]) -> str:
    """``("stages", 0, "file")`` -> ``stages[0].file``."""
    text = ""
    for part in keypath:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


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
        """A UserError for ``key`` of this table (or the table itself when key is None)."""
        keypath = self.keypath if key is None else (*self.keypath, key)
        line = self.doc.line_of(keypath)
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
                raise self.error(key, f"missing; expected {_TYPE_NAMES[kind]}")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)  # type: ignore[return-value]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise self.error(key, f"expected {_TYPE_NAMES[kind]}, got {value!r}")
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

    def table(self, key: str) -> Section:
        return Section(self.doc, self.get(key, dict), (*self.keypath, key))

    def tables(self, key: str) -> list[Section]:
        """An array of tables (``[[key]]``)."""
        if key not in self.data:
            self._used.add(key)
            raise self.error(key, f"missing; expected one or more [[{key}]] tables")
        values = self.get(key, list)
        if not values or not all(isinstance(v, dict) for v in values):
            raise self.error(key, "expected one or more [[" + key + "]] tables")
        return [Section(self.doc, v, (*self.keypath, key, i)) for i, v in enumerate(values)]

    def finish(self) -> None:
        """Reject keys nobody read: in a hand-written file they are almost always typos."""
        for key in self.data:
            if key not in self._used:
                raise self.error(key, "unknown key")
