"""What the web remote's buttons and sliders do: one conductor call each, as OSC makes them.

A POST to ``/api/...`` carries a small JSON object; its values are checked with the same
rules and limits as the OSC arguments (``installation.control.osc.arguments``,
``installation.score.scenes``), then handed to the same Conductor method, so the page can do
nothing a controller could not, and nothing here has logic of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from installation.control.osc.arguments import BadArguments, number, switch, whole
from installation.score.conductor import Conductor
from installation.score.scenes import MAX_SPEED

Body = dict[str, Any]
Action = Callable[[Conductor, Body], None]

#: The sliders' ranges, as the page draws them and the actions check them.
TRUNCATION = (0.0, 1.0)
MORPH_SPEED = (0.0, MAX_SPEED)
#: The highest scene number accepted (as OSC's /scene).
MAX_SCENE_NUMBER = 1_000_000


def _fields(body: Body, *keys: str) -> list[Any]:
    """The values of exactly ``keys`` in ``body``: a missing or an unknown key is refused, as
    a typo in a show file is."""
    if set(body) != set(keys):
        wanted = ", ".join(f'"{key}"' for key in keys) or "nothing"
        given = ", ".join(sorted(f'"{key}"'[:40] for key in body)) or "nothing"
        raise BadArguments(f"expected {wanted} in the JSON object, got {given}")
    return [body[key] for key in keys]


def scene(conductor: Conductor, body: Body) -> None:
    (value,) = _fields(body, "scene")
    if isinstance(value, str):
        conductor.go_to_scene(value)
    else:
        conductor.go_to_scene(whole(value, "scene number", 1, MAX_SCENE_NUMBER))


def scene_next(conductor: Conductor, body: Body) -> None:
    _fields(body)
    conductor.step_scene(1)


def scene_prev(conductor: Conductor, body: Body) -> None:
    _fields(body)
    conductor.step_scene(-1)


def face_next(conductor: Conductor, body: Body) -> None:
    _fields(body)
    conductor.next_face()


def face_prev(conductor: Conductor, body: Body) -> None:
    _fields(body)
    conductor.previous_face()


def blackout(conductor: Conductor, body: Body) -> None:
    (on,) = _fields(body, "on")
    conductor.blackout(switch(on, "on"))


def freeze(conductor: Conductor, body: Body) -> None:
    (on,) = _fields(body, "on")
    conductor.freeze(switch(on, "on"))


def truncation(conductor: Conductor, body: Body) -> None:
    (value,) = _fields(body, "value")
    conductor.set_truncation(number(value, "truncation", *TRUNCATION))


def morph_speed(conductor: Conductor, body: Body) -> None:
    (value,) = _fields(body, "value")
    conductor.set_pace(speed=number(value, "speed", *MORPH_SPEED))


ACTIONS: dict[str, Action] = {
    "/api/scene": scene,
    "/api/scene/next": scene_next,
    "/api/scene/prev": scene_prev,
    "/api/face/next": face_next,
    "/api/face/prev": face_prev,
    "/api/blackout": blackout,
    "/api/freeze": freeze,
    "/api/truncation": truncation,
    "/api/morph-speed": morph_speed,
}
