"""The web server as another machine sees it: run by tests/test_web.py inside a private network
namespace (``unshare -rn``), where 10.9.0.1 and 10.9.1.1 are addresses of this namespace's own
interface but not loopback ones, so the server judges clients from them as it would a phone
on the gallery network. Nothing leaves the namespace: it has no other interface.

A real server on 10.9.0.1 (allow 10.9.0.0/24, a token) with a real conductor is driven by
curl from those addresses; each reply, and what the conductor then says, is printed as one
JSON object for the test to judge. The server's clock is one the scenario moves, so that a
wrong token's cost to the client's rate is seen without waiting.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from pathlib import Path
from typing import Any

from web_clients import TOKEN, curl, still_sources

from installation.control.web.security import COOKIE
from installation.control.web.server import WebServer
from installation.score.web_settings import WebSettings
from installation.session import load_parts

DEFAULT_SHOW = Path(__file__).resolve().parent.parent / "shows" / "default.toml"
INSIDE, OUTSIDE = "10.9.0.1", "10.9.1.1"


def main() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for address in (INSIDE, OUTSIDE):
        subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], check=True)
    _, _, conductor = load_parts(DEFAULT_SHOW)
    now = [0.0]
    allow = (ipaddress.ip_network("10.9.0.0/24"),)
    settings = WebSettings(True, INSIDE, 0, allow, TOKEN, 20.0)
    server = WebServer(settings, conductor, still_sources(), clock=lambda: now[0])
    server.start()
    assert server.address is not None
    base = f"http://{INSIDE}:{server.address[1]}"
    results: dict[str, Any] = {}

    def ask(name: str, path: str, *options: str, source: str = INSIDE) -> dict[str, Any]:
        results[name] = curl(base + path, *options, source=source).as_record()
        return results[name]

    bearer = ("-H", f"Authorization: Bearer {TOKEN}")
    blackout = ("-H", "Content-Type: application/json", "--data", '{"on": true}')
    ask("page", "/")
    ask("status", "/api/status")
    ask("login page", "/login")
    ask("style", "/static/style.css")
    csrf = json.loads(ask("bearer status", "/api/status", *bearer)["body"])["csrf"]
    ask("bearer post without csrf", "/api/blackout", *bearer, *blackout)
    ask("bearer post", "/api/blackout", *bearer, *blackout, "-H", f"X-CSRF-Token: {csrf}")
    results["blackout"] = conductor.status().blackout
    ask("wrong bearer", "/api/status", "-H", "Authorization: Bearer not-the-token-at-all")
    ask("right after a wrong token", "/login")
    now[0] += 10
    ask("wrong login", "/login", "--data", "token=not-the-token-at-all")
    now[0] += 10
    login = ask("login", "/login", "--data-urlencode", f"token={TOKEN}")
    session = login["headers"]["set-cookie"].split(";")[0]
    cookie = ("-H", f"Cookie: {session}")
    session_csrf = json.loads(ask("cookie status", "/api/status", *cookie)["body"])["csrf"]
    results["csrfs differ"] = session_csrf != csrf
    freeze = ("-H", "Content-Type: application/json", "--data", '{"on": true}')
    ask("cookie post without csrf", "/api/freeze", *cookie, *freeze)
    ask(
        "cookie post with the bearer csrf",
        "/api/freeze",
        *cookie,
        *freeze,
        "-H",
        f"X-CSRF-Token: {csrf}",
    )
    with_csrf = ("-H", f"X-CSRF-Token: {session_csrf}")
    ask(
        "cookie post from elsewhere",
        "/api/freeze",
        *cookie,
        *freeze,
        *with_csrf,
        "-H",
        "Origin: http://evil.example",
    )
    ask("cookie post", "/api/freeze", *cookie, *freeze, *with_csrf, "-H", f"Origin: {base}")
    results["frozen"] = conductor.status().frozen
    ask("logout", "/logout", "-X", "POST", *cookie, *with_csrf)
    ask("after logout", "/api/status", *cookie)
    ask("outsider", "/api/status", *bearer, source=OUTSIDE)
    results["cookie name"] = COOKIE
    server.stop()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
