"""Checking what an OSC message carries before anything acts on it.

Controllers differ in what they send for the same thing: a lighting desk sends ``1.0`` where
a script sends ``1``, a toggle sends OSC true. So numbers are accepted as integers or floats,
switches as 0/1 or true/false, whole numbers as floats without a fraction. Anything else
(the wrong type, a missing or extra argument, NaN, a value out of range) is refused with a
message naming what was expected, and the show does not change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from installation.ratelog import clipped


class BadArguments(ValueError):
    """The message's arguments do not fit its address; the text says what was expected."""


def count(args: Sequence[Any], low: int, high: int) -> None:
    if not low <= len(args) <= high:
        wanted = f"{low}" if low == high else f"{low} to {high}"
        raise BadArguments(f"expected {wanted} argument(s), got {len(args)}")


def number(value: Any, what: str, low: float, high: float) -> float:
    """An int or float in ``low..high``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadArguments(f"{what}: expected a number, got {clipped(value, 40)}")
    result = float(value)
    if not math.isfinite(result) or not low <= result <= high:
        raise BadArguments(f"{what}: expected {low:g} to {high:g}, got {clipped(value, 40)}")
    return result


def whole(value: Any, what: str, low: int, high: int) -> int:
    """An integer in ``low..high``; a float without a fraction counts."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadArguments(f"{what}: expected a whole number, got {clipped(value, 40)}")
    if not low <= value <= high:
        raise BadArguments(f"{what}: expected {low} to {high}, got {value}")
    return value


def switch(value: Any, what: str) -> bool:
    """On or off: OSC true/false, or the numbers 0 and 1."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    raise BadArguments(f"{what}: expected 0 or 1 (or OSC true/false), got {clipped(value, 40)}")
