"""The OSC address space: one plain handler per address, called with the sender, the address
(pattern) as sent and the message's arguments, as python-osc's dispatcher would call it.

Handlers check their arguments and post to the conductor; they never touch the display, the
worker or the socket (replies go through ``reply``), so a handler cannot stall the picture.
``ADDRESSES`` is the one table of the namespace: the OSC server dispatches by it, the
OSCQuery server (``installation.control.oscquery``) describes it to controllers, and the
reference for show technicians, ``docs/osc.md``, agrees with it (a test checks addresses and
type tags both ways).

Trigger addresses (``/scene/next``, ``/scene/prev``, ``/show/reload``) accept an optional
0 or 1 and ignore 0, because a button on a control surface sends 1 when pressed and 0 when
released, and one press must not act twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from installation.control.osc.arguments import count, number, switch, whole
from installation.control.osc.patterns import AddressMap
from installation.control.osc.server import Client
from installation.score.conductor import Conductor, Status
from installation.score.scenes import (
    MAX_FADE,
    MAX_ROTATE,
    MAX_SECONDS,
    MAX_SEED,
    MAX_SPEED,
    MAX_TRANSLATE,
)

Reply = Callable[[Client, str, list[Any]], None]
#: An argument's range: lowest and highest, or ``SCENE_NAMES``, the show's scene names.
Range = tuple[float, float] | str
SCENE_NAMES = "scene names"
SWITCH = (0, 1)


@dataclass(frozen=True)
class Address:
    """One address: the ``AddressSpace`` method that handles it and what OSCQuery tells a
    controller about it (docs/osc.md agrees, a test checks): the OSC type tags a controller
    should send (an empty string: no arguments), each argument's range, one line on what it
    does, and how to read its current value from the conductor's ``Status`` (None: it cannot
    be read, only sent)."""

    method: str
    type: str
    description: str
    range: tuple[Range, ...] = ()
    value: Callable[[Status], tuple[Any, ...]] | None = None


#: The OSC namespace: every address, its handler and its OSCQuery facts.
ADDRESSES = {
    "/scene": Address(
        "scene",
        "s",
        "Change to this scene (by name; a number from 1 also works)",
        (SCENE_NAMES,),
        lambda status: (status.scene,),
    ),
    "/scene/next": Address("scene_next", "i", "Next scene in file order (0 is ignored)", (SWITCH,)),
    "/scene/prev": Address(
        "scene_prev", "i", "Previous scene in file order (0 is ignored)", (SWITCH,)
    ),
    "/face/next": Address(
        "face_next", "", "Morph at once to the next face (optional argument: seconds)"
    ),
    "/seed": Address(
        "seed",
        "h",
        "Start the scene over from this seed",
        ((0, MAX_SEED),),
        lambda status: (status.seed,),
    ),
    "/morph/speed": Address(
        "morph_speed",
        "f",
        "Pace of the scene (1 as written, 0 stops the walk)",
        ((0.0, MAX_SPEED),),
        lambda status: (status.speed,),
    ),
    "/morph": Address("morph", "f", "Seconds each morph takes", ((0.0, MAX_SECONDS),)),
    "/hold": Address("hold", "f", "Seconds each face is held", ((0.0, MAX_SECONDS),)),
    "/truncation": Address(
        "truncation",
        "f",
        "Pull towards the average face (1 none, 0 only the average)",
        ((0.0, 1.0),),
        lambda status: (status.truncation,),
    ),
    "/rotate": Address(
        "rotate", "f", "Turn the picture, degrees (StyleGAN3)", ((-MAX_ROTATE, MAX_ROTATE),)
    ),
    "/translate": Address(
        "translate",
        "ff",
        "Move the picture, x and y (StyleGAN3)",
        ((-MAX_TRANSLATE, MAX_TRANSLATE), (-MAX_TRANSLATE, MAX_TRANSLATE)),
    ),
    "/intensity": Address("intensity", "f", "Depth of the breathing", ((0.0, 1.0),)),
    "/beat": Address("beat", "f", "A swell of the breathing, one per beat", ((0.0, 1.0),)),
    "/blackout": Address(
        "blackout",
        "i",
        "1 fades to black, 0 back (optional second argument: seconds)",
        (SWITCH,),
        lambda status: (int(status.blackout),),
    ),
    "/fade": Address("fade", "f", "Seconds /blackout takes", ((0.0, MAX_FADE),)),
    "/freeze": Address(
        "freeze",
        "i",
        "1 stops the picture where it is, 0 goes on",
        (SWITCH,),
        lambda status: (int(status.frozen),),
    ),
    "/show/reload": Address(
        "show_reload", "i", "Read the show file again (0 is ignored)", (SWITCH,)
    ),
    "/ping": Address("ping", "", "Answered with /pong"),
    "/status": Address("status", "", "Answered with /status/reply"),
}


class AddressSpace:
    """The handlers, bound to the ``conductor`` they steer, a ``reload`` to request and a
    ``reply`` to answer through."""

    def __init__(self, conductor: Conductor, reload: Callable[[], None], reply: Reply) -> None:
        self.conductor = conductor
        self.reload = reload
        self.reply = reply

    def handlers(self) -> dict[str, Callable[..., None]]:
        return {address: getattr(self, entry.method) for address, entry in ADDRESSES.items()}

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
