"""A small TOML writer for bundle manifests, which people read and edit by hand.

Manifests hold only strings, numbers, lists of numbers, tables and arrays of tables, so this
writes exactly those, and writes shapes and ranges inline (``[3, 64, 64]``) as a person would.
JSON's string escapes are a subset of TOML's basic-string escapes, so strings go through json.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def dumps(document: Mapping[str, Any]) -> str:
    """Top-level scalars first, then ``[table]`` sections, then ``[[array]]`` tables."""
    lines = _assignments(document)
    for key, value in document.items():
        if isinstance(value, Mapping):
            lines += ["", f"[{key}]", *_assignments(value)]
        elif _is_table_array(value):
            for table in value:
                lines += ["", f"[[{key}]]", *_assignments(table)]
    return "\n".join(lines) + "\n"


def _assignments(table: Mapping[str, Any]) -> list[str]:
    return [
        f"{key} = {_literal(value)}"
        for key, value in table.items()
        if not isinstance(value, Mapping) and not _is_table_array(value)
    ]


def _is_table_array(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to a manifest")
