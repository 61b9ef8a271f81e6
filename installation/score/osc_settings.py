"""The show's ``[osc]`` table: where the runtime listens, and whom it listens to.

By default only this machine can steer the show (127.0.0.1, port 9000): a gallery network is
shared with visitors' phones, so listening on other interfaces is something a show file must
ask for, and then it must also name the networks of its controllers in ``allow``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from installation.tomlfile import Section

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
DEFAULT_PORT = 9000
MAX_RATE = 100_000.0


@dataclass(frozen=True)
class OscSettings:
    """``port`` 0 takes any free port (for tests; the port is logged). ``max_rate`` is the
    number of messages per second one sender may send before the rest are dropped, so one
    runaway controller cannot starve the others or the show."""

    enabled: bool = True
    address: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    allow: tuple[Network, ...] = LOOPBACK
    max_rate: float = 1000.0
    #: Where the show sends its events (``installation.control.events``): (IP, port) pairs.
    send_to: tuple[tuple[str, int], ...] = ()
    #: The OSCQuery server's TCP port (``installation.control.oscquery``), None: off.
    query_port: int | None = None


def parse_osc(section: Section) -> OscSettings:
    enabled = section.get("enabled", bool, True)
    address = section.get("address", str, OscSettings.address)
    port = section.number(
        "port", 0, 65535, DEFAULT_PORT, kind=int, expected="1 to 65535 (or 0 for any free port)"
    )
    allow = allow_list(section, address)
    max_rate = section.number(
        "max_rate", 1.0, MAX_RATE, OscSettings.max_rate, unit="messages per second"
    )
    send_to = _targets(section)
    query_port = (
        section.number("query_port", 0, 65535, kind=int, expected="1 to 65535 (or 0: any free)")
        if section.has("query_port")
        else None
    )
    section.finish()
    return OscSettings(enabled, address, port, allow, max_rate, send_to, query_port)


def _targets(section: Section) -> tuple[tuple[str, int], ...]:
    """``send_to``: literal "IP:port" (IPv6 as "[::1]:7000"); names are refused, so that a
    show never waits on a name server or sends its events somewhere a name was changed to."""
    targets = []
    for value in section.get("send_to", list, []):
        target = _target(value) if isinstance(value, str) else None
        if target is None:
            raise section.error(
                "send_to",
                f'expected "IP:port" such as "192.168.1.20:7000" or "[::1]:7000", got {value!r}',
            )
        targets.append(target)
    return tuple(targets)


def _target(text: str) -> tuple[str, int] | None:
    host, _, port = text.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    try:
        ip = ipaddress.ip_address(host[1:-1] if bracketed else host)
        number = int(port)
    except ValueError:
        return None
    if (ip.version == 6) != bracketed or not 1 <= number <= 65535:
        return None
    return str(ip), number


def is_loopback(section: Section, address: str) -> bool:
    """Whether ``address`` (the table's ``address``) is this machine only; an error naming
    the key if it is not an IP address."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        raise section.error(
            "address", f'expected an IP address such as "127.0.0.1" or "0.0.0.0", got {address!r}'
        ) from None


def allow_list(section: Section, address: str) -> tuple[Network, ...]:
    """The table's ``allow``: this machine only by default, required when listening on
    ``address`` lets other machines in ([osc] and [web] alike)."""
    loopback = is_loopback(section, address)
    if section.has("allow"):
        return networks(section)
    if loopback:
        return LOOPBACK
    raise section.error(
        "allow",
        f"missing: listening on {address} lets other machines in, so list the networks of "
        'your controllers, e.g. allow = ["192.168.1.0/24"]',
    )


def networks(section: Section) -> tuple[Network, ...]:
    """The table's ``allow`` as written: one or more networks."""
    values = section.get("allow", list)
    if not values:
        raise section.error(
            "allow", "expected at least one network; to stop listening, set enabled = false"
        )
    networks = []
    for value in values:
        if not isinstance(value, str):
            raise section.error(
                "allow", f'expected networks such as "192.168.1.0/24", got {value!r}'
            )
        try:
            networks.append(ipaddress.ip_network(value, strict=True))
        except ValueError as exc:
            raise section.error("allow", f"{value!r} is not a network: {exc}") from None
    return tuple(networks)
