"""The OSC namespace as OSCQuery describes it: JSON nodes built from the one table,
``installation.control.osc.addresses.ADDRESSES``, and the conductor's state now.

Built afresh for every request from ``Conductor.status()`` (a few assignments under its lock)
and the scene names, so a reloaded show's scenes appear at once and nothing is cached that
could go stale.
"""

from __future__ import annotations

from typing import Any

from installation.control.osc.addresses import ADDRESSES, SCENE_NAMES, Address
from installation.score.conductor import Status

Node = dict[str, Any]

#: OSCQuery's ACCESS values.
NO_VALUE, READ, WRITE, READ_WRITE = 0, 1, 2, 3
#: The attributes a query may ask for by name (``/scene?VALUE``).
ATTRIBUTES = ("FULL_PATH", "CONTENTS", "TYPE", "RANGE", "ACCESS", "DESCRIPTION", "VALUE")
ROOT_DESCRIPTION = "GAN faces installation: scenes, faces, pace, blackout"


def tree(status: Status, scenes: list[str]) -> Node:
    """The root node with every address below it. An address may also be a container
    (``/scene`` holds ``/scene/next``), as OSCQuery allows."""
    root: Node = {"FULL_PATH": "/", "ACCESS": NO_VALUE, "DESCRIPTION": ROOT_DESCRIPTION}
    for address, entry in ADDRESSES.items():
        node = root
        path = ""
        for part in address.strip("/").split("/"):
            path += "/" + part
            contents = node.setdefault("CONTENTS", {})
            node = contents.setdefault(part, {"FULL_PATH": path, "ACCESS": NO_VALUE})
        node.update(method(entry, status, scenes))
    return root


def method(entry: Address, status: Status, scenes: list[str]) -> Node:
    """An address's own attributes. One without arguments has no TYPE, RANGE or VALUE
    (OSCQuery's way of saying a trigger)."""
    node: Node = {
        "ACCESS": WRITE if entry.value is None else READ_WRITE,
        "DESCRIPTION": entry.description,
    }
    if entry.type:
        node["TYPE"] = entry.type
        node["RANGE"] = [_range(bounds, scenes) for bounds in entry.range]
    if entry.value is not None:
        node["VALUE"] = list(entry.value(status))
    return node


def find(root: Node, path: str) -> Node | None:
    """The node at ``path`` (``/`` or ``/a/b``, a trailing slash allowed), None if none."""
    node = root
    for part in path.strip("/").split("/") if path.strip("/") else ():
        node = node.get("CONTENTS", {}).get(part)
        if node is None:
            return None
    return node


def values(status: Status) -> dict[str, tuple[Any, ...]]:
    """Every readable address's value now: what LISTEN pushes when it changes."""
    return {
        address: entry.value(status)
        for address, entry in ADDRESSES.items()
        if entry.value is not None
    }


def _range(bounds: tuple[float, float] | str, scenes: list[str]) -> Node:
    if bounds == SCENE_NAMES:
        return {"VALS": list(scenes)}
    assert not isinstance(bounds, str)
    return {"MIN": bounds[0], "MAX": bounds[1]}
