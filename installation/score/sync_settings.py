"""The show's ``[sync]`` table: many PCs playing one show in frame lockstep.

Off unless the table is there. Every PC of a room has the same show file but for ``rank``:
the PC with the lowest rank leads, and the others follow it (``installation.control.sync``).
The leader announces on an IPv4 multicast group that stays on the show network by default
(TTL 1: no router forwards it). ``allow`` names the networks of the PCs that may lead; any
sender may by default, since the group only reaches the show network.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from installation.score.osc_settings import Network, networks
from installation.tomlfile import Section

ANYONE: tuple[Network, ...] = (ipaddress.ip_network("0.0.0.0/0"),)
#: Heartbeats a leader may miss before a follower takes over: fewer would hand the lead around
#: on a single lost datagram or a busy second.
MIN_MISSED_BEATS = 4


@dataclass(frozen=True)
class SyncSettings:
    """``delay``: seconds between a change on the leader and the frame it takes effect on, so
    every PC has it in time; ``heartbeat``: seconds between the datagrams every PC sends;
    ``failover``: seconds of silence from the leader after which a follower takes over;
    ``interface``: the IPv4 address of the interface to use ("" lets the kernel choose)."""

    enabled: bool = True
    group: str = "239.255.70.16"
    port: int = 7016
    interface: str = ""
    ttl: int = 1
    rank: int = 0
    delay: float = 0.1
    heartbeat: float = 0.25
    failover: float = 2.0
    allow: tuple[Network, ...] = ANYONE

    @property
    def where(self) -> str:
        """The group as logs and the status show it: ``239.255.70.16:7016``."""
        return f"{self.group}:{self.port}"


def parse_sync(section: Section) -> SyncSettings:
    default = SyncSettings()
    enabled = section.get("enabled", bool, True)
    group = _group(section)
    port = section.number("port", 1, 65535, default.port, kind=int)
    interface = _interface(section)
    ttl = section.number("ttl", 1, 32, default.ttl, kind=int)
    rank = section.number(
        "rank", 0, 255, default.rank, kind=int, expected="0 to 255 (lower ranks lead first)"
    )
    delay = section.number("delay", 0.02, 2.0, default.delay, unit="seconds")
    heartbeat = section.number("heartbeat", 0.05, 2.0, default.heartbeat, unit="seconds")
    failover = section.number(
        "failover",
        MIN_MISSED_BEATS * heartbeat,
        60.0,
        max(default.failover, MIN_MISSED_BEATS * heartbeat),
        expected=f"{MIN_MISSED_BEATS} heartbeats ({MIN_MISSED_BEATS * heartbeat:g} s) to 60 "
        "seconds",
    )
    # The group reaches this PC from the whole show network, so a list is never required.
    allow = networks(section) if section.has("allow") else ANYONE
    section.finish()
    return SyncSettings(
        enabled, group, port, interface, ttl, rank, delay, heartbeat, failover, allow
    )


def _group(section: Section) -> str:
    text = section.get("group", str, SyncSettings.group)
    try:
        group = ipaddress.IPv4Address(text)
    except ValueError:
        group = None
    if group is None or not group.is_multicast:
        raise section.error(
            "group",
            f'expected an IPv4 multicast group such as "239.255.70.16" (224.0.0.0 to '
            f"239.255.255.255), got {text!r}",
        )
    return text


def _interface(section: Section) -> str:
    text = section.get("interface", str, "")
    if not text:
        return ""
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        raise section.error(
            "interface",
            f'expected the IPv4 address of an interface such as "192.168.1.10" (or "" to let '
            f"the system choose), got {text!r}",
        ) from None
    return text
