"""The one message of the sync protocol: a heartbeat, as OSC over UDP multicast.

Every PC sends ``/installation/sync/beat`` every ``heartbeat`` seconds, and the leader also at
once after each change. The arguments, in order: the show's identity (s), the sender's
instance id (s, random per process), its rank (i), its term (i), whether it leads (i: 0 no,
1 yes, 2 alone: it heard no other PC when it took over, see ``election``), the epoch of its
show time (d, wall-clock seconds), the version of its state (i) and the state (b: an encoded
conductor snapshot from the leader, an empty blob from a follower).

One message carries everything a follower needs, so a lost datagram, a late joiner or a
healed partition is repaired by the next heartbeat. It is OSC so that the traffic reads in any
OSC monitor on the show network.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pythonosc.osc_message import OscMessage
from pythonosc.parsing import osc_types

from installation.ratelog import clipped

ADDRESS = "/installation/sync/beat"
TYPE_TAGS = ",ssiiidib"
#: The largest datagram sent: one UDP datagram over IPv4 holds 65507 bytes; the margin keeps
#: the OSC framing and a VLAN tag or two clear of it.
MAX_DATAGRAM = 60_000
MAX_RANK = 255
#: The largest term or version a beat carries (an OSC int32).
MAX_INT = 2**31 - 1
_IDENTITY = re.compile(r"[0-9a-f]{64}")
_INSTANCE = re.compile(r"[0-9a-f]{1,32}")
#: Where a beat's instance id begins: after the address, the type tags and the identity.
_INSTANCE_AT = sum(len(osc_types.write_string(text)) for text in (ADDRESS, TYPE_TAGS, "0" * 64))


class Malformed(ValueError):
    """A datagram that is not a well-formed beat; the message says why."""


@dataclass(frozen=True)
class Beat:
    """One heartbeat as sent; ``term`` counts the leaders the room has had (a takeover makes a
    new one), ``version`` the changes its leader made."""

    identity: str
    instance: str
    rank: int
    term: int
    leading: bool
    epoch: float
    version: int
    state: bytes = b""
    #: Leading a room of one (``Election.alone``); only with ``leading``.
    alone: bool = False


def encode_beat(beat: Beat) -> bytes:
    """The datagram of ``beat``, written with python-osc's writers of OSC types. Its message
    builder refuses an empty blob, which OSC 1.0 allows (a size of 0 and no bytes): that is
    what a follower sends, so the message is put together here."""
    return b"".join(
        (
            osc_types.write_string(ADDRESS),
            osc_types.write_string(TYPE_TAGS),
            osc_types.write_string(beat.identity),
            osc_types.write_string(beat.instance),
            osc_types.write_int(beat.rank),
            osc_types.write_int(beat.term),
            osc_types.write_int(int(beat.leading) + int(beat.alone)),
            osc_types.write_double(beat.epoch),
            osc_types.write_int(beat.version),
            osc_types.write_blob(beat.state) if beat.state else osc_types.write_int(0),
        )
    )


def sent_by(data: bytes, instance: str) -> bool:
    """Whether ``data`` is a beat of ``instance``, read from its bytes without parsing them:
    a PC hears its own beats on the group, and knows them before its allow list (which may
    leave its own address out) or the parser (its own state is the largest datagram) looks."""
    mine = osc_types.write_string(instance)
    return data[_INSTANCE_AT : _INSTANCE_AT + len(mine)] == mine


def decode_beat(data: bytes) -> Beat:
    """The beat in ``data``; ``Malformed`` with one short reason for anything else."""
    try:
        address, index = osc_types.get_string(data, 0)
        if address != ADDRESS:
            raise Malformed(f"address {clipped(address)} is not {ADDRESS}")
        tags, _ = osc_types.get_string(data, index)
        if tags != TYPE_TAGS:
            raise Malformed(f"expected the arguments {TYPE_TAGS[1:]}, got {clipped(tags[1:])}")
        params = OscMessage(data).params
    except Malformed:
        raise
    except Exception as exc:  # python-osc raises several types for broken datagrams
        raise Malformed(f"not an OSC message ({type(exc).__name__})") from None
    identity, instance, rank, term, leading, epoch, version, state = params
    if not _IDENTITY.fullmatch(identity):
        raise Malformed("identity is not a sha256 in hex")
    if not _INSTANCE.fullmatch(instance):
        raise Malformed("instance id is not 1 to 32 hex digits")
    if not 0 <= rank <= MAX_RANK:
        raise Malformed(f"rank {rank} is not 0 to {MAX_RANK}")
    if not (0 <= term <= MAX_INT and 0 <= version <= MAX_INT and leading in (0, 1, 2)):
        raise Malformed("term, version or leading out of range")
    if not math.isfinite(epoch):
        raise Malformed("epoch is not a finite number")
    if state and not leading:
        raise Malformed("a follower's beat carries a state")
    return Beat(identity, instance, rank, term, leading > 0, epoch, version, state, leading == 2)
