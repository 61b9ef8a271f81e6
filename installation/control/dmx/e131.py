"""sACN (E1.31) input through the ``sacn`` library's packet parser and receiver handler.

The library's own receiver cannot be used whole on a gallery network: on Linux its socket binds
every interface whatever address it is given, it reads datagrams without the sender's address
(so no allow list or rate per sender can apply), and its thread is not a daemon. So the socket
and its thread are ours (``DmxReceiver``), and each packet that passes our checks goes to the
library's ``ReceiverHandler``, which keeps what E1.31 asks of a receiver: the highest priority
source wins, packets out of sequence are dropped, and only a changed universe is passed on.
The handler is given this receiver as its "socket", so it opens none of its own.

A source that ends its stream (the Stream_Terminated option bit) releases the show.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from sacn.messages.data_packet import DataPacket, calculate_multicast_addr
from sacn.receiving.receiver_handler import ReceiverHandler, ReceiverHandlerListener

from installation.control.dmx.receiver import DmxReceiver, Malformed
from installation.score.conductor import Conductor
from installation.score.dmx_settings import DmxSettings


class SacnReceiver(DmxReceiver, ReceiverHandlerListener):
    protocol = "sACN"

    def __init__(
        self,
        settings: DmxSettings,
        conductor: Conductor,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(settings, conductor, clock)
        self._handler = ReceiverHandler("", 0, self, socket=self)  # type: ignore[arg-type]

    def open(self) -> socket.socket:
        """Unicast: bound to ``[dmx] address``. Multicast: bound to the universe's group on
        this port (so only that group's packets arrive) and joined on ``[dmx] multicast``."""
        interface = self.settings.multicast
        if interface is None:
            return super().open()
        group = calculate_multicast_addr(self.settings.universe)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((group, self.settings.port))
            membership = socket.inet_aton(group) + socket.inet_aton(interface)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        except OSError:
            sock.close()
            raise
        return sock

    def packet(self, data: bytes, host: str) -> None:
        try:
            packet = DataPacket.make_data_packet(data)
        except (TypeError, ValueError) as exc:  # the library's verdict, or a bad source name
            raise Malformed(str(exc)) from None
        if (
            packet.universe != self.settings.universe
            or packet.dmxStartCode != 0  # per-channel priorities, text, ...: not levels
            or packet.option_PreviewData  # for a desk's visualiser, not the stage
        ):
            self.stats.ignored += 1
            return
        self.heard()
        if packet.option_StreamTerminated:
            self._handler.fire_timeout_callback_and_delete(packet.universe)
            self.released()
            return
        self._handler.on_data(data, time.time())

    # The handler's listener: called from ``packet``, on the receiving thread.

    def on_availability_change(self, universe: int, changed: str) -> None:
        """Unused: loss and release are judged by ``DmxReceiver`` with the show's ``loss``."""

    def on_dmx_data_change(self, packet: DataPacket) -> None:
        self.steering.apply(bytes(packet.dmxData))
