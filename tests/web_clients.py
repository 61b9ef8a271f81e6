"""Real HTTP clients for the web server's tests: curl (a subprocess, as a technician would type
it) and Python's http.client, both answering with status, headers and body."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from installation.control.web.logtail import LogTail
from installation.control.web.server import WebSources
from installation.output.thumbnail import Thumbnails

TOKEN = "gallery-token-0123456789"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # names in lower case; a repeated header keeps its last value
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)

    def as_record(self) -> dict[str, Any]:
        return {"status": self.status, "headers": self.headers, "body": self.text}


def has_curl() -> bool:
    return shutil.which("curl") is not None


def curl(url: str, *options: str, source: str | None = None) -> Reply:
    """``curl -s -i OPTIONS URL`` from ``source`` (an address of this machine), parsed."""
    where = ["--interface", source] if source else []
    done = subprocess.run(
        ["curl", "-s", "-i", "--max-time", "10", *where, *options, url],
        capture_output=True,
        check=True,
    )
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Reply(int(status_line.split()[1]), headers, body)


def fetch(
    host: str,
    port: int,
    path: str,
    method: str = "GET",
    body: bytes | dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One request with http.client (no redirects followed); a dict body is sent as JSON."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request(method, path, body=data, headers=headers or {})
        response = connection.getresponse()
        return Reply(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        connection.close()


def still_sources() -> WebSources:
    """What the web server reads of a show, for a server tested on its own with a real
    conductor: a show that plays and is healthy, with nothing on screen yet."""
    return WebSources(
        status=lambda: {"state": "playing"},
        health=lambda: (True, "ok"),
        metrics=lambda: (b"", "text/plain"),
        thumbnails=Thumbnails(lambda: None),
        log=LogTail(),
    )
