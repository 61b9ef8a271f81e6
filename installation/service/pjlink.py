"""A small PJLink class 1 client: enough to switch a projector on and off and ask its state.

PJLink is the projector makers' common protocol on TCP port 4352: the projector greets with
``PJLINK 0`` (no password) or ``PJLINK 1 <random>``, then answers one command per line, each
line ending in a carriage return. With a password, the first command is prefixed with the MD5
of the random and the password, in hex. It is written here rather than taken from a library
because it is this small, and because every wait in it must be bounded: a projector that is
unplugged or asleep on the network must cost the service a few seconds, never a hung thread.
"""

from __future__ import annotations

import hashlib
import socket
import time

from installation.ratelog import clipped

TIMEOUT = 5.0
#: Lines are at most 136 bytes in class 1 (and 2); more is not a projector talking.
MAX_LINE = 256

#: The projector's answers that are errors, and what they mean.
ERRORS = {
    "ERR1": "the projector does not know the command",
    "ERR2": "the projector refused the parameter",
    "ERR3": "the projector cannot do it now (warming up or cooling down?)",
    "ERR4": "the projector reports a failure (lamp, fan, cover, temperature?)",
    "ERRA": "the projector refused the password (pjlink_password)",
}
#: ``POWR ?`` answers.
POWER_STATES = {"0": "off", "1": "on", "2": "cooling down", "3": "warming up"}


class PjlinkError(Exception):
    """A command that did not succeed; ``kind`` is one of a fixed set (``connect``,
    ``timeout``, ``protocol``, ``password`` or an ``ERRORS`` code), for logging each kind
    of failure once."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Projector:
    """One projector at ``host``:``port``; each command opens its own connection, so a
    projector that closed an idle one (they do, after 30 s) is never a problem."""

    def __init__(
        self, host: str, port: int, password: str | None, timeout: float = TIMEOUT
    ) -> None:
        self.host = host
        self.port = port
        self.password = password
        self.timeout = timeout

    @property
    def where(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def power(self, on: bool) -> None:
        """Switch the projector on or off; raises PjlinkError unless it answers OK."""
        answer = self.command("POWR", "1" if on else "0")
        if answer != "OK":
            raise PjlinkError("protocol", f"{self.where}: unexpected answer {clipped(answer)}")

    def power_state(self) -> str:
        """``off``, ``on``, ``cooling down`` or ``warming up``."""
        answer = self.command("POWR", "?")
        if answer not in POWER_STATES:
            raise PjlinkError("protocol", f"{self.where}: unexpected power state {clipped(answer)}")
        return POWER_STATES[answer]

    def command(self, body: str, parameter: str) -> str:
        """Send ``%1BODY PARAMETER`` and return what follows ``%1BODY=`` in the answer."""
        deadline = time.monotonic() + self.timeout
        try:
            with socket.create_connection((self.host, self.port), self.timeout) as connection:
                prefix = self._greeting(_read_line(connection, deadline))
                connection.sendall(f"{prefix}%1{body} {parameter}\r".encode("ascii"))
                answer = _read_line(connection, deadline)
        except TimeoutError:
            raise PjlinkError("timeout", f"{self.where}: no answer in {self.timeout:g} s") from None
        except OSError as exc:
            raise PjlinkError("connect", f"{self.where}: {exc.strerror or exc}") from None
        except PjlinkError as exc:
            raise PjlinkError(exc.kind, f"{self.where}: {exc}") from None
        if answer.upper() == "PJLINK ERRA":
            raise PjlinkError("ERRA", f"{self.where}: {ERRORS['ERRA']}")
        expected = f"%1{body}="
        if not answer.upper().startswith(expected):
            raise PjlinkError("protocol", f"{self.where}: unexpected answer {clipped(answer)}")
        value = answer[len(expected) :]
        if value.upper() in ERRORS:
            code = value.upper()
            raise PjlinkError(code, f"{self.where}: {code}: {ERRORS[code]}")
        return value

    def _greeting(self, line: str) -> str:
        """What goes before the command: nothing without a password, else the digest."""
        if line == "PJLINK 0":
            return ""
        words = line.split(" ")
        if len(words) != 3 or words[:2] != ["PJLINK", "1"] or not words[2].isascii():
            raise PjlinkError("protocol", f"not a PJLink greeting: {clipped(line)}")
        if self.password is None:
            raise PjlinkError("password", "the projector asks for a password (pjlink_password)")
        digest = hashlib.md5((words[2] + self.password).encode("ascii"), usedforsecurity=False)
        return digest.hexdigest()


def _read_line(connection: socket.socket, deadline: float) -> str:
    """One line up to its carriage return, within ``deadline`` whatever the peer sends."""
    data = b""
    while not data.endswith(b"\r"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        connection.settimeout(left)
        chunk = connection.recv(1)
        if not chunk:
            raise PjlinkError("protocol", "the projector closed the connection")
        data += chunk
        if len(data) > MAX_LINE:
            raise PjlinkError("protocol", f"a line longer than {MAX_LINE} bytes")
    return data[:-1].decode("ascii", errors="replace")
