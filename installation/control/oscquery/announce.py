"""mDNS/DNS-SD announcement of the OSCQuery server (``_oscjson._tcp``) and the OSC server
(``_osc._udp``), with the ``zeroconf`` package, so show tools list the installation by name.

Announcing is a courtesy, never a condition of the show: it runs on a thread of its own
(zeroconf's probing takes a second or two), waits there until both servers are listening,
and a failure (no multicast on the interface, port 5353 refused) is one log line.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Callable

from zeroconf import InterfaceChoice, IPVersion, ServiceInfo, Zeroconf, get_all_addresses

from installation.errors import first_line

log = logging.getLogger(__name__)

OSCJSON = "_oscjson._tcp.local."
OSC = "_osc._udp.local."
#: How often the thread looks whether the OSC server has bound yet.
WAIT_STEP = 0.5
STOP_WAIT = 5.0


class Announcement:
    """Announces ``name`` for the servers listening on ``address`` (the show's ``[osc]
    address``): the OSCQuery server's TCP port and, once ``osc_port()`` is not None, the OSC
    server's UDP port; withdrawn by ``stop``."""

    def __init__(
        self, name: str, address: str, query_port: int, osc_port: Callable[[], int | None]
    ) -> None:
        self.name = name
        self.address = address
        self.query_port = query_port
        self.osc_port = osc_port
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._announce, name="mdns", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Withdraw both services (goodbye packets, so browsers drop them at once); waits at
        most ``STOP_WAIT`` s, the thread finishing alone after that."""
        self._halt.set()
        self._thread.join(STOP_WAIT)

    def _announce(self) -> None:
        """The whole life of the announcement on this thread, so ``stop`` never meets a
        Zeroconf still being made or registering: it is closed by whoever opened it."""
        osc_port = self.osc_port()
        while osc_port is None:
            if self._halt.wait(WAIT_STEP):
                return
            osc_port = self.osc_port()
        try:
            zeroconf = Zeroconf(interfaces=self._interfaces(), ip_version=self._ip_version())
        except Exception as exc:
            log.warning(
                "oscquery: cannot announce by mDNS on %s (%s); controllers can still be given "
                "the address by hand",
                self.address,
                first_line(exc),
            )
            return
        try:
            for kind, port in ((OSCJSON, self.query_port), (OSC, osc_port)):
                if self._halt.is_set():
                    break
                zeroconf.register_service(self._info(kind, port), allow_name_change=True)
            else:
                log.info("oscquery: announced %r as %s and %s", self.name, OSCJSON, OSC)
            self._halt.wait()
            zeroconf.unregister_all_services()
        except Exception as exc:  # what a closed socket raises varies by platform
            log.warning(
                "oscquery: the mDNS announcement failed (%s); controllers can still be given "
                "the address by hand",
                first_line(exc),
            )
        finally:
            zeroconf.close()

    def _info(self, kind: str, port: int) -> ServiceInfo:
        host = socket.gethostname().split(".")[0] or "installation"
        return ServiceInfo(
            kind,
            f"{self.name}.{kind}",
            port=port,
            parsed_addresses=self._addresses(),
            server=f"{host}.local.",
        )

    def _addresses(self) -> list[str]:
        ip = ipaddress.ip_address(self.address)
        if not ip.is_unspecified:
            return [str(ip)]
        return [a for a in get_all_addresses() if not ipaddress.ip_address(a).is_loopback]

    def _interfaces(self) -> InterfaceChoice | list[str]:
        ip = ipaddress.ip_address(self.address)
        return InterfaceChoice.All if ip.is_unspecified else [str(ip)]

    def _ip_version(self) -> IPVersion:
        """IPv4 for an IPv4 address; a specific IPv6 address alone; ``::``, which Linux's
        dual-stack sockets also reach by IPv4, both (announcing the IPv4 addresses)."""
        ip = ipaddress.ip_address(self.address)
        if ip.version == 4:
            return IPVersion.V4Only
        return IPVersion.All if ip.is_unspecified else IPVersion.V6Only
