"""The show's ``[dmx]`` table: the installation as a lighting fixture on sACN or Art-Net.

Off unless the table is there. Like ``[osc]`` it listens on this machine only unless the show
opens it, and then it must name the networks of its desks in ``allow``: a gallery network is
shared with visitors' phones, and DMX has no password.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from installation.score.osc_settings import LOOPBACK, Network, allow_list
from installation.tomlfile import Section

PROTOCOLS = ("sacn", "artnet")
#: The port each protocol's desks send to.
PORTS = {"sacn": 5568, "artnet": 6454}
#: sACN universes are 1 to 63999 (E1.31); Art-Net's 15-bit port-address is 0 to 32767.
UNIVERSES = {"sacn": (1, 63999), "artnet": (0, 32767)}
#: Channels the installation takes in the universe (installation.control.dmx.channels).
FOOTPRINT = 12


@dataclass(frozen=True)
class DmxSettings:
    """``universe`` is the sACN universe or the Art-Net port-address; ``start`` the first of
    the fixture's DMX channels (1 to 512); ``loss`` the seconds without a packet after which
    the show holds the last look and says so; ``max_rate`` packets per second one sender may
    send (desks send 44 a second at most; the rest are dropped)."""

    protocol: str = "sacn"
    universe: int = 1
    start: int = 1
    loss: float = 3.0
    address: str = "127.0.0.1"
    port: int = PORTS["sacn"]
    allow: tuple[Network, ...] = LOOPBACK
    max_rate: float = 200.0
    #: The interface address to join sACN's multicast group for the universe on (the socket
    #: then takes that group's packets only); None: unicast to ``address``.
    multicast: str | None = None


def parse_dmx(section: Section) -> DmxSettings:
    protocol = section.choice("protocol", PROTOCOLS)
    low, high = UNIVERSES[protocol]
    universe = section.number("universe", low, high, kind=int)
    start = section.number(
        "start",
        1,
        513 - FOOTPRINT,
        1,
        kind=int,
        expected=f"1 to {513 - FOOTPRINT} (the fixture takes {FOOTPRINT} channels)",
    )
    loss = section.number("loss", 0.1, 3600.0, DmxSettings.loss, unit="seconds")
    address = section.get("address", str, DmxSettings.address)
    port = section.number(
        "port",
        0,
        65535,
        PORTS[protocol],
        kind=int,
        expected="1 to 65535 (or 0 for any free port)",
    )
    if ":" in address:
        raise section.error("address", f"expected an IPv4 address (DMX is IPv4), got {address!r}")
    multicast = _multicast(section, protocol)
    # Multicast from other machines arrives on the interface named, so that decides too.
    allow = allow_list(section, address if multicast is None else multicast)
    max_rate = section.number(
        "max_rate", 1.0, 100_000.0, DmxSettings.max_rate, unit="packets per second"
    )
    section.finish()
    return DmxSettings(protocol, universe, start, loss, address, port, allow, max_rate, multicast)


def _multicast(section: Section, protocol: str) -> str | None:
    """``multicast = "192.168.1.10"``: join sACN's group for the universe on that interface."""
    if not section.has("multicast"):
        return None
    if protocol != "sacn":
        raise section.error(
            "multicast",
            "only sACN has multicast; Art-Net comes unicast or broadcast (for broadcast, "
            'listen on address = "0.0.0.0")',
        )
    interface = section.get("multicast", str)
    try:
        ipaddress.IPv4Address(interface)
    except ValueError:
        raise section.error(
            "multicast",
            f'expected the IPv4 address of an interface such as "192.168.1.10", got {interface!r}',
        ) from None
    return interface
