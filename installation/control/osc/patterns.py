"""OSC 1.0 address patterns, matched against the show's fixed address table in linear time.

python-osc turns a pattern into a regular expression, and Python's regular expressions
backtrack: ``/***************************!`` held the OSC thread, and with it the GIL, the
picture and the watchdog, for 49 seconds. Here a pattern is split into its ``/``-separated
parts, each part is compared with the same part of every address by carrying the *set* of
positions the pattern can have reached in the address (``*`` adds every later position at
once, a ``{a,b}`` every position one of its strings ends at), never by trying alternatives
one after another. A part costs at most its number of items times the address part's length,
so no input can take more than a fraction of a millisecond against the table.

Patterns from the network are also capped (length, number of wildcard items, brace strings)
before any matching: no controller needs more, and a refused pattern costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

#: Characters in an address pattern; the longest address has 12.
MAX_PATTERN = 256
#: ``*``, ``?``, ``[...]`` and ``{...}`` items in one pattern.
MAX_ITEMS = 16
#: Strings inside all of a pattern's ``{...}`` together.
MAX_CHOICES = 32

_SPECIAL = frozenset("*?[]{}")


@dataclass(frozen=True)
class _Item:
    """One step of a pattern part: a literal character, ``?``, ``*``, a ``[...]`` set of
    characters (``ranges`` of first and last character, ``negated`` for ``[!...]``) or a
    ``{...}`` list of ``choices``."""

    kind: str
    char: str = ""
    ranges: tuple[tuple[str, str], ...] = ()
    negated: bool = False
    choices: tuple[str, ...] = ()

    def accepts(self, char: str) -> bool:
        if self.kind == "?":
            return True
        if self.kind == "[":
            inside = any(low <= char <= high for low, high in self.ranges)
            return inside != self.negated
        return char == self.char


class PatternError(ValueError):
    """The pattern is over a cap or not well-formed; the text says which."""


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is refused (too long, too complex, an unclosed ``[`` or ``{``), or
    None; cheap, and safe on any string."""
    if not is_pattern(pattern) and pattern.startswith("/") and len(pattern) <= MAX_PATTERN:
        return None  # a plain address, as nearly every message has: nothing to compile
    try:
        _compile(pattern)
    except PatternError as exc:
        return str(exc)
    return None


def is_pattern(address: str) -> bool:
    """Whether ``address`` has any wildcard: a plain address is one dictionary lookup."""
    return not _SPECIAL.isdisjoint(address)


class AddressMap:
    """Handlers by address; ``match`` gives those whose address a pattern reaches, in the
    order they were added."""

    def __init__(self, handlers: Iterable[tuple[str, Callable[..., None]]]) -> None:
        self.handlers = dict(handlers)
        self._parts = {address: address.split("/")[1:] for address in self.handlers}

    def match(self, pattern: str) -> list[Callable[..., None]]:
        """The handlers ``pattern`` reaches, none if it reaches none or is refused by
        ``pattern_problem`` (the server checks that first, to say why)."""
        if not is_pattern(pattern):
            handler = self.handlers.get(pattern)
            return [] if handler is None else [handler]
        try:
            parts = _compile(pattern)
        except PatternError:
            return []
        return [
            self.handlers[address]
            for address, names in self._parts.items()
            if len(names) == len(parts) and all(map(_matches, parts, names))
        ]


def _matches(items: list[_Item], text: str) -> bool:
    """Whether one compiled pattern part matches all of ``text``: the set of positions in
    ``text`` the items so far can have reached, advanced one item at a time."""
    reached = {0}
    end = len(text)
    for item in items:
        if item.kind == "*":
            reached = set(range(min(reached), end + 1))
        elif item.kind == "{":
            reached = {
                at + len(choice)
                for at in reached
                for choice in item.choices
                if text.startswith(choice, at)
            }
        else:
            reached = {at + 1 for at in reached if at < end and item.accepts(text[at])}
        if not reached:
            return False
    return end in reached


def _compile(pattern: str) -> list[list[_Item]]:
    if len(pattern) > MAX_PATTERN:
        raise PatternError(f"address pattern longer than {MAX_PATTERN} characters")
    if not pattern.startswith("/"):
        raise PatternError("address pattern not starting with /")
    parts = [_compile_part(part) for part in pattern.split("/")[1:]]
    items = [item for part in parts for item in part if item.kind != "c"]
    if len(items) > MAX_ITEMS:
        raise PatternError(f"address pattern with more than {MAX_ITEMS} wildcard items")
    if sum(len(item.choices) for item in items) > MAX_CHOICES:
        raise PatternError(f"address pattern with more than {MAX_CHOICES} strings in {{}}")
    return parts


def _compile_part(part: str) -> list[_Item]:
    items: list[_Item] = []
    at = 0
    while at < len(part):
        char = part[at]
        if char in "[{":
            close = part.find("]" if char == "[" else "}", at + 1)
            if close < 0:
                raise PatternError(f"address pattern with an unclosed {char}")
            inside = part[at + 1 : close]
            items.append(_bracket(inside) if char == "[" else _Item("{", choices=_braces(inside)))
            at = close + 1
            continue
        if char in "]}":
            raise PatternError(f"address pattern with a {char} that closes nothing")
        if char in "*?":
            if not (char == "*" and items and items[-1].kind == "*"):  # ** is *
                items.append(_Item(char))
        else:
            items.append(_Item("c", char))
        at += 1
    return items


def _bracket(inside: str) -> _Item:
    """``[abc]``, ``[a-z]``, ``[!a-z]``; a ``-`` first or last stands for itself."""
    negated = inside.startswith("!")
    chars = inside[1:] if negated else inside
    ranges = []
    at = 0
    while at < len(chars):
        if at + 2 < len(chars) and chars[at + 1] == "-":
            ranges.append((chars[at], chars[at + 2]))
            at += 3
        else:
            ranges.append((chars[at], chars[at]))
            at += 1
    return _Item("[", ranges=tuple(ranges), negated=negated)


def _braces(inside: str) -> tuple[str, ...]:
    """``{next,prev}``: the strings, taken literally."""
    return tuple(dict.fromkeys(inside.split(",")))
