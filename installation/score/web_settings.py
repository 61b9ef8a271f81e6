"""The show's ``[web]`` table: the status page, remote control and metrics over HTTP.

Off by default. When on, it listens on this machine only (127.0.0.1, port 8080) unless the show
opens it; then it must also name the networks allowed in and a token, because a gallery
network is shared with visitors' phones and HTTP pages are easy to find. The token may live in
a file of its own (``token_file``), so that a show kept in git does not carry it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from installation.score.osc_settings import LOOPBACK, Network, allow_list, is_loopback
from installation.tomlfile import Section

DEFAULT_PORT = 8080
#: The highest ``max_rate`` accepted; the page itself makes about four requests a second.
MAX_RATE = 10_000.0
MIN_TOKEN = 16
MAX_TOKEN = 256


@dataclass(frozen=True)
class WebSettings:
    """``port`` 0 takes any free port (for tests; the log names it). ``token`` None: only
    loopback clients get in. ``max_rate``: requests per second one client may make, with a
    burst of one second's worth."""

    enabled: bool = False
    address: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    allow: tuple[Network, ...] = LOOPBACK
    token: str | None = field(default=None, repr=False)
    max_rate: float = 20.0

    @property
    def listening(self) -> tuple[bool, str, int]:
        """What takes a new server to change: the rest applies to a running one."""
        return self.enabled, self.address, self.port


def parse_web(section: Section) -> WebSettings:
    """``[web]``; ``token_file`` is relative to the show's folder."""
    default = WebSettings()
    enabled = section.get("enabled", bool, default.enabled)
    address = section.get("address", str, default.address)
    port = section.number(
        "port",
        0,
        65535,
        DEFAULT_PORT,
        kind=int,
        expected="1 to 65535 (or 0 for any free port)",
    )
    allow = allow_list(section, address)
    token = _token(section)
    if token is None and not is_loopback(section, address):
        raise section.error(
            "token",
            f"missing: listening on {address} lets other machines in, so set token (at least "
            f"{MIN_TOKEN} characters) or token_file",
        )
    max_rate = section.number(
        "max_rate", 1.0, MAX_RATE, default.max_rate, unit="requests per second"
    )
    section.finish()
    return WebSettings(enabled, address, port, allow, token, max_rate)


def _token(section: Section) -> str | None:
    token = section.secret("token", "token_file")
    if token is None:
        return None
    key = "token_file" if section.has("token_file") else "token"
    if not MIN_TOKEN <= len(token) <= MAX_TOKEN:
        raise section.error(
            key, f"the token must be {MIN_TOKEN} to {MAX_TOKEN} characters, got {len(token)}"
        )
    if not all("!" <= c <= "~" for c in token):
        raise section.error(
            key, "the token must be printable ASCII without spaces (it travels in a header)"
        )
    return token
