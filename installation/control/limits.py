"""Who may talk to the show, and how fast: the allow list and the rate, shared by the OSC server,
the web server and the DMX receivers, and the tally of what became of what they received.

Both face the same gallery network with the same risk: a host that is not a controller, or a
controller gone mad, must cost the show as little as possible. Each check is cheap and runs
before anything reads what the sender sent.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import fields

from installation.score.osc_settings import Network


class Tally:
    """Counters of what became of a receiver's input (a dataclass of ints, written only by
    its thread), with the one-line summary each logs at stop."""

    def summary(self) -> str:
        return ", ".join(f"{f.name} {getattr(self, f.name)}" for f in fields(self))


class TokenBucket:
    """A token bucket: ``rate`` tokens a second, holding at most one second's worth.

    A datagram is paid for whole or not at all. One that costs more than a second's worth
    (a 64 KB bundle) passes only with a full bucket and leaves it in debt, so it is allowed,
    but at most at the sender's rate in bytes.
    """

    def __init__(self, rate: float, now: float) -> None:
        self.tokens = rate
        self.updated = now

    def spend(self, cost: float, rate: float, now: float) -> bool:
        self.tokens = min(rate, self.tokens + (now - self.updated) * rate)
        self.updated = now
        if self.tokens < min(cost, rate):
            return False
        self.tokens -= cost
        return True

    def drain(self, cost: float) -> None:
        """Empty the bucket and leave it ``cost`` in debt: what a wrong password costs."""
        self.tokens = min(self.tokens, 0.0) - cost


class SenderRates:
    """One ``TokenBucket`` per sender, for the ``limit`` most recent senders (the least recent
    is forgotten first), so a flood of spoofed addresses cannot grow it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def bucket(self, host: str, rate: float, now: float) -> TokenBucket:
        bucket = self._buckets.get(host)
        if bucket is None:
            bucket = self._buckets[host] = TokenBucket(rate, now)
            if len(self._buckets) > self.limit:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(host)
        return bucket

    def spend(self, host: str, cost: float, rate: float, now: float) -> bool:
        return self.bucket(host, rate, now).spend(cost, rate, now)


def in_networks(host: str, networks: tuple[Network, ...]) -> bool:
    """Whether ``host`` (an address as a socket reports it) is in one of ``networks``; an
    IPv4 sender on a dual-stack socket counts as its IPv4 address."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)
