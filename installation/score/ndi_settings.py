"""The show's ``[ndi]`` table: the show as an NDI source for projection-mapping tools.

TouchDesigner, Resolume and MadMapper take video from other machines over NDI. A show with
an ``[ndi]`` table sends what its screen shows under ``name``; receivers list it as
``MACHINE (name)``. Reading the table never needs the NDI library: a show file stays valid on
a machine without the optional ``ndi`` extra, which then plays without sending
(installation.output.ndi says why, once).
"""

from __future__ import annotations

from dataclasses import dataclass

from installation.images import MAX_SIZE
from installation.tomlfile import Section

#: Receivers show the name in lists and menus; a longer one is cut off there.
MAX_NAME = 64
MAX_GROUPS = 16


@dataclass(frozen=True)
class NdiSettings:
    """``size`` (width, height): None sends at the bundle's size. ``groups``: the NDI groups
    the source is in; empty leaves it in NDI's default group, which every receiver sees."""

    name: str
    size: tuple[int, int] | None = None
    groups: tuple[str, ...] = ()


def parse_ndi(section: Section) -> NdiSettings:
    name = section.get("name", str)
    if not 0 < len(name) <= MAX_NAME or not name.isprintable() or name != name.strip():
        raise section.error(
            "name",
            f"expected 1 to {MAX_NAME} printable characters without spaces at either end, "
            f"got {name!r}",
        )
    size = _size(section) if section.has("size") else None
    groups = _groups(section) if section.has("groups") else ()
    section.finish()
    return NdiSettings(name, size, groups)


def _size(section: Section) -> tuple[int, int]:
    """``size = [width, height]``: even numbers, as NDI carries colour for pairs of pixels."""
    width, height = section.integers("size", length=2)
    if width > MAX_SIZE[0] or height > MAX_SIZE[1] or width % 2 or height % 2:
        raise section.error(
            "size",
            f"expected [width, height] in even pixels up to {MAX_SIZE[0]} x {MAX_SIZE[1]}, "
            f"got {[width, height]}",
        )
    return width, height


def _groups(section: Section) -> tuple[str, ...]:
    """``groups = ["projection"]``: NDI joins them with commas, so a name cannot hold one."""
    values = section.get("groups", list)
    if not 0 < len(values) <= MAX_GROUPS:
        raise section.error(
            "groups", f"expected 1 to {MAX_GROUPS} group names (leave it out for NDI's default)"
        )
    for value in values:
        if not isinstance(value, str) or not value.strip() or "," in value:
            raise section.error(
                "groups",
                f'expected group names such as "projection", without commas; got {value!r}',
            )
    return tuple(value.strip() for value in values)
