"""TOML text from Python values, for the property tests that feed the parsers random
documents: any key and string is quoted with escapes, so every drawn value can be written."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def quoted(text: str) -> str:
    """A TOML basic string: JSON's escapes, less its surrogate pairs, plus DEL's escape."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def key(name: str) -> str:
    """A key, bare where TOML allows it (so error lines can be placed), else quoted."""
    return name if _BARE.fullmatch(name) else quoted(name)


def literal(value: Any) -> str:
    """``value`` as a TOML value (inline tables and arrays for nested data)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return quoted(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(literal(item) for item in value) + "]"
    return "{" + ", ".join(f"{key(k)} = {literal(v)}" for k, v in value.items()) + "}"


def table(header: str, values: dict[str, Any]) -> str:
    """One table: its ``header`` line (none for the top level), then its keys."""
    lines = [header] if header else []
    lines += [f"{key(name)} = {literal(value)}" for name, value in values.items()]
    return "\n".join(lines) + "\n"


def dumps(document: dict[str, Any]) -> str:
    """Top-level values, then ``[table]`` and ``[[array]]`` sections, as manifests are written."""
    top = {}
    sections = []
    for name, value in document.items():
        if isinstance(value, dict):
            sections.append(table(f"[{key(name)}]", value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            sections += [table(f"[[{key(name)}]]", item) for item in value]
        else:
            top[name] = value
    return "\n".join([table("", top), *sections])
