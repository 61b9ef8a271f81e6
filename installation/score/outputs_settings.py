"""The show's ``[[outputs]]``: several screens or projectors driven by one PC.

Each output is a window on one display (by SDL's index or its name), fullscreen or at a
rectangle, and shows the whole picture (``clone``), its slice of one wide canvas (``span``,
overlapping its neighbour by ``overlap`` pixels for edge blending), or its own stream of faces
(``stream``). Stream outputs need no second pipeline: the show becomes a one-row grid of
streams (``display.grid``), painted as one batch, and each output shows its cell of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from installation.tomlfile import Section, format_keypath

SHOWS = ("clone", "span", "stream")
#: Outputs of one PC, and so also its face streams (stream = 0 to MAX_OUTPUTS - 1).
MAX_OUTPUTS = 8
MAX_NAME = 64
#: The blend ramp's gamma: how a projector's light follows its pixel values.
DEFAULT_BLEND = 2.2


@dataclass(frozen=True)
class OutputSettings:
    """One ``[[outputs]]`` table. ``window`` (x, y, width, height) is relative to the
    display's top-left corner; None: fullscreen on it. ``overlap`` and ``blend`` are read for
    span outputs, ``stream`` for stream outputs. ``origin`` names the table in the show file
    ("show.toml:12: outputs[1]") for errors found only when the windows open; it is not
    compared, so an edit elsewhere in the file leaves the outputs equal for a reload."""

    name: str
    display: int | str = 0
    window: tuple[int, int, int, int] | None = None
    show: str = "clone"
    overlap: int = 0
    blend: float = DEFAULT_BLEND
    stream: int = 0
    #: The row of face streams this output's stream belongs to (at least ``stream`` + 1):
    #: in a room of PCs (``[sync]``) every PC must paint the same row, each showing its own.
    streams: int = 0
    origin: str = field(default="", compare=False)


def parse_outputs(
    sections: list[Section], layout: str, renderer: str
) -> tuple[OutputSettings, ...]:
    """The outputs in file order, for a show of this [display] ``layout`` and ``renderer``."""
    if len(sections) > MAX_OUTPUTS:
        raise sections[MAX_OUTPUTS].error(
            None, f"at most {MAX_OUTPUTS} outputs, got {len(sections)}"
        )
    if layout == "grid":
        raise sections[0].error(
            None,
            'cannot be combined with [display] layout = "grid": for a wall of different '
            'faces give each output show = "stream" and its own stream = 0, 1, ...',
        )
    if renderer == "gl":
        raise sections[0].error(
            None,
            'outputs are drawn with SDL\'s renderer; [display] renderer = "gl" draws one '
            'window: set renderer = "auto" or "sdl"',
        )
    outputs = tuple(_output(section, index) for index, section in enumerate(sections))
    _check_names(sections, outputs)
    _check_spans(sections, outputs)
    return outputs


def stream_grid(outputs: tuple[OutputSettings, ...]) -> tuple[int, int] | None:
    """The one-row grid of face streams the stream outputs show; None: they show none."""
    streams = [max(o.stream + 1, o.streams) for o in outputs if o.show == "stream"]
    return (1, max(streams)) if streams else None


def _output(section: Section, index: int) -> OutputSettings:
    name = section.get("name", str, f"output {index + 1}")
    if not 0 < len(name) <= MAX_NAME or not name.isprintable():
        raise section.error("name", f"expected 1 to {MAX_NAME} printable characters, got {name!r}")
    display = _display(section)
    window = _window(section) if section.has("window") else None
    show = section.choice("show", SHOWS, "clone")
    overlap, blend, stream, streams = 0, DEFAULT_BLEND, 0, 0
    read_with = (
        ("overlap", "span"),
        ("blend", "span"),
        ("stream", "stream"),
        ("streams", "stream"),
    )
    for key, wanted in read_with:
        if section.has(key) and show != wanted:
            raise section.error(key, f'only read with show = "{wanted}" (show is "{show}")')
    if show == "span":
        overlap = section.number(
            "overlap", 0, 4096, 0, kind=int, expected="0 to 4096 pixels shared with the next output"
        )
        blend = section.number("blend", 1.0, 4.0, DEFAULT_BLEND)
        if window is not None and overlap >= window[2]:
            raise section.error("overlap", f"must be less than the window's width {window[2]}")
    elif show == "stream":
        stream = section.number("stream", 0, MAX_OUTPUTS - 1, kind=int)
        streams = section.number(
            "streams",
            stream + 1,
            MAX_OUTPUTS,
            stream + 1,
            kind=int,
            expected=f"the row's number of face streams, {stream + 1} to {MAX_OUTPUTS}",
        )
    section.finish()
    line = section.doc.line_of(section.keypath)
    origin = f"{section.doc.path}:{line}" if line else str(section.doc.path)
    where = f"{origin}: {format_keypath(section.keypath)}"
    return OutputSettings(name, display, window, show, overlap, blend, stream, streams, where)


def _display(section: Section) -> int | str:
    """SDL's display index (0 is the first screen) or the name SDL gives the screen."""
    if isinstance(section.data.get("display"), str):
        name = section.get("display", str)
        if not name.strip():
            raise section.error("display", "expected a display index or name, got an empty name")
        return name
    return section.number(
        "display", 0, 15, 0, kind=int, expected="a display index 0 to 15 or a display name"
    )


def _window(section: Section) -> tuple[int, int, int, int]:
    """``[x, y, width, height]`` in pixels from the display's top-left corner."""
    values = section.get("window", list)
    if len(values) != 4 or any(isinstance(v, bool) or not isinstance(v, int) for v in values):
        raise section.error("window", f"expected [x, y, width, height] in pixels, got {values!r}")
    x, y, width, height = values
    if x < 0 or y < 0 or not (0 < width <= 16384 and 0 < height <= 16384):
        raise section.error(
            "window", f"expected x, y from 0 and a size of 1 to 16384 pixels, got {values!r}"
        )
    return x, y, width, height


def _check_names(sections: list[Section], outputs: tuple[OutputSettings, ...]) -> None:
    seen: set[str] = set()
    for section, output in zip(sections, outputs, strict=True):
        if output.name in seen:
            raise section.error("name", f"{output.name!r} names an earlier output too")
        seen.add(output.name)


def _check_spans(sections: list[Section], outputs: tuple[OutputSettings, ...]) -> None:
    """The last span output has no next output to share its overlap with."""
    spans = [i for i, output in enumerate(outputs) if output.show == "span"]
    if spans and outputs[spans[-1]].overlap:
        raise sections[spans[-1]].error(
            "overlap", "the last span output has no next span output to overlap: set 0"
        )
