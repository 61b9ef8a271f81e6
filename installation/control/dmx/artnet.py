"""Art-Net's ArtDmx packet, read by our own small parser.

The Art-Net receivers on PyPI bring their own socket and thread (stupidArtnet, python-artnet)
or event loop (aioartnet), where the checks every input of the show makes before reading a
packet (allow list, rate per sender, bad packets counted) would have to be bolted on from
outside. The one packet a fixture needs is an 18-byte header before the channel data, so it is
read here, strictly: anything that is not exactly an ArtDmx packet of Art-Net 14 or later is
counted and dropped by the receiver.
"""

from __future__ import annotations

from installation.control.dmx.receiver import DmxReceiver, Malformed

ID = b"Art-Net\x00"
OP_DMX = 0x5000
MIN_VERSION = 14
HEADER = 18


def art_dmx(data: bytes, universe: int) -> bytes | None:
    """The channel data of the ArtDmx packet ``data`` if it is for port-address ``universe``;
    None for another universe or another kind of Art-Net packet (ArtPoll, ArtSync, ...);
    ``Malformed`` if it is not Art-Net, or an ArtDmx packet that breaks the specification."""
    if len(data) < 10 or not data.startswith(ID):
        raise Malformed("not Art-Net (no Art-Net ID)")
    if int.from_bytes(data[8:10], "little") != OP_DMX:
        return None
    if len(data) < HEADER:
        raise Malformed(f"ArtDmx of {len(data)} bytes, shorter than its {HEADER}-byte header")
    version = int.from_bytes(data[10:12], "big")
    if version < MIN_VERSION:
        raise Malformed(f"Art-Net protocol version {version}, older than {MIN_VERSION}")
    if data[15] & 0x80:
        raise Malformed("port-address beyond 15 bits")
    length = int.from_bytes(data[16:18], "big")
    if not 2 <= length <= 512 or length % 2:
        raise Malformed(f"data length {length}: must be even, 2 to 512")
    if len(data) < HEADER + length:
        raise Malformed(f"data length {length} but {len(data) - HEADER} bytes of data")
    if data[14] | data[15] << 8 != universe:
        return None
    return data[HEADER : HEADER + length]


def art_dmx_packet(universe: int, channels: bytes, sequence: int = 0) -> bytes:
    """An ArtDmx packet, as a desk sends it (channels padded to an even length); for the
    benchmark and tests, which must send what a desk would."""
    if len(channels) % 2:
        channels += b"\x00"
    return b"".join(
        (
            ID,
            OP_DMX.to_bytes(2, "little"),
            MIN_VERSION.to_bytes(2, "big"),
            bytes((sequence & 0xFF, 0, universe & 0xFF, universe >> 8)),
            len(channels).to_bytes(2, "big"),
            channels,
        )
    )


class ArtNetReceiver(DmxReceiver):
    protocol = "Art-Net"

    def packet(self, data: bytes, host: str) -> None:
        channels = art_dmx(data, self.settings.universe)
        if channels is None:
            self.stats.ignored += 1
            return
        self.heard()
        self.steering.apply(channels)
