"""The OSC address space: one plain handler per address, called with the sender, the address
(pattern) as sent and the message's arguments, as python-osc's dispatcher would call it.

Handlers check their arguments and post to the conductor; they never touch the display, the
worker or the socket (replies go through ``reply``), so a handler cannot stall the picture.
The reference for show technicians is ``docs/osc.md``; a test checks that every address
there is mapped here and the other way round.

Trigger addresses (``/scene/next``, ``/scene/prev``, ``/show/reload``) accept an optional
0 or 1 and ignore 0, because a button on a control surface sends 1 when pressed and 0 when
released, and one press must not act twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from installation.control.osc.arguments import count, number, switch, whole
from installation.control.osc.patterns import AddressMap
from installation.control.osc.server import Client
from installation.score.conductor import Conductor
from installation.score.scenes import (
    MAX_FADE,
    MAX_ROTATE,
    MAX_SECONDS,
    MAX_SEED,
    MAX_SPEED,
    MAX_TRANSLATE,
)

Reply = Callable[[Client, str, list[Any]], None]

#: Every address and the method that handles it.
ADDRESSES = {
    "/scene": "scene",
    "/scene/next": "scene_next",
    "/scene/prev": "scene_prev",
    "/face/next": "face_next",
    "/seed": "seed",
    "/morph/speed": "morph_speed",
    "/morph": "morph",
    "/hold": "hold",
    "/truncation": "truncation",
    "/rotate": "rotate",
    "/translate": "translate",
    "/intensity": "intensity",
    "/beat": "beat",
    "/blackout": "blackout",
    "/fade": "fade",
    "/freeze": "freeze",
    "/show/reload": "show_reload",
    "/ping": "ping",
    "/status": "status",
}


class AddressSpace:
    """The handlers, bound to the ``conductor`` they steer, a ``reload`` to request and a
    ``reply`` to answer through."""

    def __init__(self, conductor: Conductor, reload: Callable[[], None], reply: Reply) -> None:
        self.conductor = conductor
        self.reload = reload
        self.reply = reply

    def handlers(self) -> dict[str, Callable[..., None]]:
        return {address: getattr(self, name) for address, name in ADDRESSES.items()}

    def dispatcher(self) -> AddressMap:
        """The address map for the server, which matches address patterns against it in
        linear time (python-osc's dispatcher backtracks) and schedules timed bundles itself,
        without sleeping in its thread as python-osc would."""
        return AddressMap(self.handlers().items())

    def scene(self, client: Client, address: str, *args: Any) -> None:
        count(args, 1, 1)
        value = args[0]
        if isinstance(value, str):
            self.conductor.go_to_scene(value)
        else:
            self.conductor.go_to_scene(whole(value, "scene number", 1, 1_000_000))

    def scene_next(self, client: Client, address: str, *args: Any) -> None:
        if _pressed(args):
            self.conductor.step_scene(1)

    def scene_prev(self, client: Client, address: str, *args: Any) -> None:
        if _pressed(args):
            self.conductor.step_scene(-1)

    def face_next(self, client: Client, address: str, *args: Any) -> None:
        count(args, 0, 1)
        seconds = number(args[0], "seconds", 0.0, MAX_SECONDS) if args else None
        self.conductor.next_face(seconds)

    def seed(self, client: Client, address: str, *args: Any) -> None:
        count(args, 1, 1)
        self.conductor.set_seed(whole(args[0], "seed", 0, MAX_SEED))

    def morph_speed(self, client: Client, address: str, *args: Any) -> None:
        count(args, 1, 1)
        self.conductor.set_pace(speed=number(args[0], "speed", 0.0, MAX_SPEED))

    def morph(self, client: Client, address: str, *args: Any) -> None:
        count(args, 1, 1)
        self.conductor.set_pace(morph=number(args[0], "morph seconds", 0.0, MAX_SECONDS))

    def hold(self, client: Client, address: str, *args: Any) -> None:
        count(args, 1, 1)
        self.conductor.set_pace(hold=number(args[0], "hold seconds", 0.0, MAX_SECONDS))

    def truncation(self, client: Client, address: str, *args: Any) -> None:
        count(args, 1, 1)
        self.conductor.set_truncation(number(args[0], "truncation", 0.0, 1.0))

    def rotate(self, client: Client, address: str, *args: Any) -> None:
        count(args, 1, 1)
        self.conductor.set_view(rotate=number(args[0], "degrees", -MAX_ROTATE, MAX_ROTATE))

    def translate(self, client: Client, address: str, *args: Any) -> None:
        count(args, 2, 2)
        x, y = (number(value, "translation", -MAX_TRANSLATE, MAX_TRANSLATE) for value in args)
        self.conductor.set_view(translate=(x, y))

    def intensity(self, client: Client, address: str, *args: Any) -> None:
        count(args, 1, 1)
        self.conductor.set_intensity(number(args[0], "intensity", 0.0, 1.0))

    def beat(self, client: Client, address: str, *args: Any) -> None:
        count(args, 0, 1)
        self.conductor.beat(number(args[0], "strength", 0.0, 1.0) if args else 1.0)

    def blackout(self, client: Client, address: str, *args: Any) -> None:
        count(args, 1, 2)
        seconds = number(args[1], "seconds", 0.0, MAX_FADE) if len(args) > 1 else None
        self.conductor.blackout(switch(args[0], "blackout"), seconds)

    def fade(self, client: Client, address: str, *args: Any) -> None:
        count(args, 1, 1)
        self.conductor.set_blackout_fade(number(args[0], "seconds", 0.0, MAX_FADE))

    def freeze(self, client: Client, address: str, *args: Any) -> None:
        count(args, 1, 1)
        self.conductor.freeze(switch(args[0], "freeze"))

    def show_reload(self, client: Client, address: str, *args: Any) -> None:
        if _pressed(args):
            self.reload()

    def ping(self, client: Client, address: str, *args: Any) -> None:
        self.reply(_reply_to(client, args), "/pong", [])

    def status(self, client: Client, address: str, *args: Any) -> None:
        target = _reply_to(client, args)
        status = self.conductor.status()
        self.reply(
            target,
            "/status/reply",
            [
                status.scene,
                status.number,
                round(status.frames_per_second, 2),
                round(status.uptime, 3),
                status.seed,
                int(status.blackout),
                int(status.frozen),
            ],
        )


def _pressed(args: tuple[Any, ...]) -> bool:
    count(args, 0, 1)
    return not args or switch(args[0], "trigger")


def _reply_to(client: Client, args: tuple[Any, ...]) -> Client:
    """The sender, or the sender's host at the port given as the one argument: tools such
    as ``oscsend`` send from a port they do not listen on."""
    count(args, 0, 1)
    return (client[0], whole(args[0], "reply port", 1, 65535)) if args else client
