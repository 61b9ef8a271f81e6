"""The web remote end to end: the real aiohttp server, real HTTP clients (curl as a technician
types it, Python's http.client), the real conductor, and for the live tests the whole show of
``installation run`` (service, web, reloader) on the real headless display.

Security is tested from loopback on 127.0.0.1, and from "another machine" inside a private
network namespace (tests/web_netns.py), where the server sees clients with addresses that are
not loopback ones. Rates, logins and log lines follow a clock the tests move, so no verdict
depends on how fast this machine is.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from io import BytesIO
from pathlib import Path
from types import TracebackType

import numpy as np
import pygame
import pytest
from conftest import DEFAULT_BUNDLE, DEFAULT_SHOW, ROOT
from live import ProbeDisplay
from web_clients import TOKEN, Reply, curl, fetch, has_curl, still_sources

from installation.control import httpthread
from installation.control.web.security import COOKIE, SESSION_SECONDS, Gate
from installation.control.web.server import WebServer
from installation.engine.faults import Faults, FaultyPipeline
from installation.engine.ladder import BackendLadder, ladder_for
from installation.errors import UserError
from installation.player import RunningShow
from installation.score.conductor import Conductor
from installation.score.plan import FramePlan
from installation.score.trajectory import keyframe
from installation.score.web_settings import WebSettings
from installation.service.health import format_status
from installation.service.signals import RunSignals
from installation.session import load_parts

SHOW = f"""
bundle = "{DEFAULT_BUNDLE}"

[osc]
enabled = false

[web]
{{web}}

[[scenes]]
name = "a"
seed = 1
hold = 60.0
morph = 1.0
breathing = 0.0
transition = "cut"

[[scenes]]
name = "b"
seed = 2
hold = 60.0
morph = 1.0
breathing = 0.0
transition = "cut"
"""
WEB = "enabled = true\nport = 0"


def write_show(folder: Path, web: str = WEB) -> Path:
    path = folder / "show.toml"
    path.write_text(SHOW.replace("{web}", web))
    return path


def wait_for(condition: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    """Poll ``condition`` until true, ten times a second (within the servers' default rate);
    a deadline only against hanging, never a verdict."""
    done = threading.Event()
    for _ in range(int(timeout / 0.1)):
        if condition():
            return
        done.wait(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class WebShow:
    """The show of ``installation run`` (RunningShow.for_show: service, web, reloader) playing
    on a thread on the real headless display; ``pause`` (given) holds inference in its tracks
    when set: the real worker then hangs inside the real pipeline."""

    def __init__(self, path: Path, pause: threading.Event | None = None) -> None:
        show, bundle, conductor = load_parts(path)
        pipeline = ladder_for(bundle, "onnxruntime-cpu", None, None, Faults()).start()
        self.faulty: FaultyPipeline | None = None
        if pause is not None:  # hangs from the first frame after ``pause`` is set
            self.faulty = FaultyPipeline(
                pipeline, Faults(hang_at=1.0), lambda: 2.0 * pause.is_set()
            )
            pipeline = self.faulty
        self.display = ProbeDisplay()
        self.running = RunningShow.for_show(
            show, BackendLadder.holding(pipeline), conductor, self.display, RunSignals()
        )
        self.conductor: Conductor = conductor
        self._csrf: str | None = None
        self._thread = threading.Thread(target=self.running.play, args=(120.0,), name="show")

    @property
    def web(self) -> WebServer | None:
        assert self.running.control is not None
        return self.running.control.web

    @property
    def port(self) -> int:
        assert self.web is not None and self.web.address is not None
        return self.web.address[1]

    def get(self, path: str, **options: object) -> Reply:
        return fetch("127.0.0.1", self.port, path, **options)  # type: ignore[arg-type]

    def post(self, path: str, body: dict[str, object] | None = None) -> Reply:
        csrf = self.get("/api/status").json()["csrf"] if self._csrf is None else self._csrf
        self._csrf = csrf  # one per server for this machine: asked once
        return fetch("127.0.0.1", self.port, path, "POST", body or {}, {"X-CSRF-Token": csrf})

    def __enter__(self) -> WebShow:
        self._thread.start()
        wait_for(lambda: len(self.display.presents) > 5, "the first frames")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.faulty is not None:
            self.faulty.release()
        self.display.quit.set()
        self._thread.join(10.0)


@pytest.fixture(autouse=True)
def status_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The health record of live shows goes to the test's folder."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[WebShow]:
    with WebShow(write_show(tmp_path)) as show:
        wait_for(lambda: show.web is not None and show.web.address is not None, "listening")
        yield show


def face_ahead(conductor: Conductor, seed: int, ahead: float = 3.0) -> int:
    """Which face of ``seed`` the conductor plans ``ahead`` s from now (after the morph of a
    move: 1 s in the live show)."""
    [plan] = conductor.plans_at([conductor.status().uptime + ahead])
    assert isinstance(plan, FramePlan)
    latent = plan.dominant.latent
    for index in range(4):
        if np.allclose(latent, keyframe(seed, index, latent.size)):
            return index
    raise AssertionError("the planned latent is none of the first faces")


def test_every_action_moves_the_conductor_of_a_running_show(live: WebShow) -> None:
    conductor = live.conductor
    steps: list[tuple[str, dict[str, object], Callable[[], object], object]] = [
        ("/api/scene", {"scene": "b"}, lambda: conductor.status().scene, "b"),
        ("/api/scene", {"scene": 1}, lambda: conductor.status().scene, "a"),
        ("/api/scene/next", {}, lambda: conductor.status().scene, "b"),
        ("/api/scene/prev", {}, lambda: conductor.status().scene, "a"),
        ("/api/face/next", {}, lambda: face_ahead(conductor, 1), 1),
        ("/api/face/prev", {}, lambda: face_ahead(conductor, 1), 0),
        ("/api/blackout", {"on": True}, lambda: conductor.status().blackout, True),
        ("/api/blackout", {"on": False}, lambda: conductor.status().blackout, False),
        ("/api/freeze", {"on": True}, lambda: conductor.status().frozen, True),
        ("/api/freeze", {"on": False}, lambda: conductor.status().frozen, False),
        ("/api/truncation", {"value": 0.5}, lambda: conductor.status().truncation, 0.5),
        ("/api/morph-speed", {"value": 2}, lambda: conductor.status().speed, 2.0),
    ]
    for path, body, read, expected in steps:
        assert read() != expected, f"{path} {body}: already so before"
        reply = live.post(path, body)
        assert reply.status == 200, reply.text
        assert reply.json()["ok"] is True
        assert read() == expected, f"{path} {body}"
    assert reply.json()["status"]["controls"]["morph_speed"]["value"] == 2.0
    refused = live.post("/api/face/prev")  # at the first face of the scene
    assert refused.status == 400
    assert refused.json() == {"error": "this is the scene's first face: there is none before it"}
    refused = live.post("/api/scene", {"scene": "z"})
    assert refused.json() == {"error": "no scene is called 'z'; scenes: a, b"}
    assert live.post("/api/truncation", {"value": 1.5}).status == 400
    assert conductor.status().truncation == 0.5


def test_previous_face_goes_back_to_the_last_face_reached() -> None:
    show, bundle, _ = load_parts(DEFAULT_SHOW)
    scene = replace(show.scenes[0], hold=1.0, morph=2.0, breathing=0.0, seed=1)
    conductor = Conductor(replace(show, scenes=(scene,)), bundle.latent_size, "normal")
    now = [0.5]
    conductor.start(lambda: now[0])
    with pytest.raises(UserError, match="first face"):
        conductor.previous_face()  # holding face 0
    now[0] = 4.0  # morphing from face 1 to face 2 (faces every 3 s: 1 s held, 2 s morph)
    conductor.previous_face()  # back to face 1, the one being left, reached 2 s later
    assert face_ahead(conductor, 1, 2.5) == 1
    now[0] = 6.5  # holding face 1
    conductor.previous_face()
    assert face_ahead(conductor, 1, 2.5) == 0
    now[0] = 9.0
    with pytest.raises(UserError, match="first face"):
        conductor.previous_face()


def test_status_health_metrics_log_and_thumbnail_of_a_running_show(live: WebShow) -> None:
    wait_for(lambda: live.get("/api/status").json().get("state") == "playing", "a record")
    status = live.get("/api/status").json()
    for key in (
        *("state", "title", "show", "scene", "backend", "fps", "frames", "hours"),
        *("restarts", "last_error", "uptime", "stages", "osc", "web"),
    ):
        assert key in status, key
    assert status["web"]["state"] == "listening"
    assert status["web"]["address"] == f"127.0.0.1:{live.port}"
    assert status["web"]["thumbnail_interval"] == 0.5
    assert status["osc"] == {"state": "off"}
    assert (status["scenes"], status["scene"], status["scene_number"]) == (["a", "b"], "a", 1)
    assert (status["blackout"], status["frozen"]) == (False, False)
    assert status["controls"]["truncation"] == {"value": 1.0, "min": 0.0, "max": 1.0}
    assert status["controls"]["morph_speed"] == {"value": 1.0, "min": 0.0, "max": 16.0}
    assert len(status["csrf"]) > 20
    wait_for(lambda: live.get("/api/status").json()["health"]["ok"], "a healthy show")
    wait_for(lambda: live.get("/healthz").status == 200, "a healthy show")
    assert live.get("/healthz").text == "ok\n"
    metrics = live.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=")
    assert 'installation_backend_info{backend="onnxruntime-cpu"} 1.0' in metrics.text
    assert "installation_frames_shown_total" in metrics.text

    thumbnail = live.get("/api/thumbnail.jpg")
    assert thumbnail.status == 200 and thumbnail.headers["content-type"] == "image/jpeg"
    picture = pygame.image.load(BytesIO(thumbnail.body), "thumbnail.jpg")
    assert picture.get_size() in ((256, 256), (64, 64)), "a frame at its size (the bundle's)"
    assert pygame.surfarray.array3d(picture).max() > 50, "a face, not a black picture"

    assert live.get("/nothing").status == 404  # a warning, which the log tail keeps
    lines = live.get("/api/log").json()["lines"]
    assert any("web: 404 not found: '/nothing'" in line for line in lines)
    assert len(lines) <= 50


def test_healthz_says_503_while_the_worker_is_stuck(tmp_path: Path) -> None:
    pause = threading.Event()
    with WebShow(write_show(tmp_path), pause) as live:
        live.running.service.settings.stall_limit = 0.5
        wait_for(lambda: live.get("/healthz").status == 200, "a healthy show", 15)
        pause.set()  # the worker hangs in its next frame; the display holds the picture
        wait_for(lambda: live.get("/healthz").status == 503, "a stuck worker", 15)
        reply = live.get("/healthz")
        assert reply.text.count("\n") == 1 and len(reply.text) > 2
        assert live.get("/api/status").json()["health"]["ok"] is False
        shown = len(live.display.presents)
        wait_for(lambda: len(live.display.presents) > shown + 5, "the display going on")


def test_the_show_plays_on_when_the_port_is_taken(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with WebShow(write_show(tmp_path, f"enabled = true\nport = {port}")) as live:
            shown = len(live.display.presents)
            wait_for(lambda: len(live.display.presents) > shown + 30, "frames going on")
            assert live.web is not None and live.web.address is None
            state = live.running.describe()["web"]
            assert state == {"state": "not listening", "address": f"127.0.0.1:{port}"}
            wait_for(lambda: "pid" in live.running.status_record(), "a health record")
            report = format_status(live.running.status_record())
            assert f"web         NOT LISTENING on 127.0.0.1:{port}" in report
    assert f"web: cannot listen on 127.0.0.1:{port}" in caplog.text


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_reload_applies_new_web_settings(tmp_path: Path) -> None:
    path = write_show(tmp_path)
    with WebShow(path) as live:
        wait_for(lambda: live.web is not None and live.web.address is not None, "listening")
        assert live.running.control is not None
        reloader = live.running.control.reloader

        def reload(web: str) -> None:
            done = reloader.reloads
            path.write_text(SHOW.replace("{web}", web))
            reloader.request()
            wait_for(lambda: reloader.reloads == done + 1, "the reload")

        first = live.web
        reload(f'{WEB}\nallow = ["10.0.0.0/8"]')  # the same server, a new allow list
        assert live.web is first
        assert live.get("/api/status").status == 403
        port = free_port()
        reload(f"enabled = true\nport = {port}")  # a new server, where the show says
        assert live.web is not first and first.address is None
        assert live.port == port and live.get("/api/status").status == 200
        reload("enabled = false")
        assert live.web is None
        with pytest.raises(ConnectionRefusedError):
            fetch("127.0.0.1", port, "/healthz")


# The server on its own, with a real conductor, on a clock the tests move.


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[WebServer, str, Clock]]]:
    """Start a server with the given settings; its base URL and clock."""
    servers: list[WebServer] = []

    def start(**settings: object) -> tuple[WebServer, str, Clock]:
        _, _, conductor = load_parts(DEFAULT_SHOW)
        clock = Clock()
        web = replace(WebSettings(enabled=True, port=0), **settings)  # type: ignore[arg-type]
        server = WebServer(web, conductor, still_sources(), clock)
        server.start()
        servers.append(server)
        assert server.address is not None
        return server, f"http://127.0.0.1:{server.address[1]}", clock

    yield start
    for server in servers:
        server.stop()


needs_curl = pytest.mark.skipif(not has_curl(), reason="curl is not installed")
JSON = ("-H", "Content-Type: application/json")


@needs_curl
def test_curl_4xx_paths_are_one_line_and_logged_once_per_kind(
    serve: Callable[..., tuple[WebServer, str, Clock]], caplog: pytest.LogCaptureFixture
) -> None:
    _, base, clock = serve()
    csrf = ("-H", f"X-CSRF-Token: {curl(base + '/api/status').json()['csrf']}")
    cases = [
        (curl(base + "/nothing"), 404, "not found: '/nothing'"),
        (curl(base + "/nothing/else"), 404, "not found: '/nothing/else'"),
        (curl(base + "/api/scene"), 405, "method not allowed: GET '/api/scene'"),
        (curl(base + "/api/scene", *csrf, "--data", "x" * 2000), 413, "request body over 1024"),
        (curl(base + "/api/scene", *csrf, *JSON, "--data", "{"), 400, "the body is not JSON"),
        (curl(base + "/api/scene", *csrf, *JSON, "--data", "[1]"), 400, "expected a JSON object"),
        (
            curl(base + "/api/scene", *csrf, *JSON, "--data", '{"scene": 1, "x": 2}'),
            400,
            'expected "scene" in the JSON object, got "scene", "x"',
        ),
        (
            curl(base + "/api/truncation", *csrf, *JSON, "--data", '{"value": "high"}'),
            400,
            "truncation: expected a number, got 'high'",
        ),
        (curl(base + "/api/freeze", *JSON, "--data", '{"on": 1}'), 403, "X-CSRF-Token"),
    ]
    for reply, status, line in cases:
        assert reply.status == status, reply.text
        body = (
            reply.json()["error"]
            if reply.headers["content-type"].startswith("application/json")
            else reply.text
        )
        assert line in body
        assert "\n" not in body.rstrip("\n")
    big = ("-H", "X-Big: " + "a" * 9000)  # aiohttp refuses it before any handler
    assert [curl(base + "/api/status", *big).status for _ in range(2)] == [400, 400]
    logged = [r.getMessage() for r in caplog.records if r.name.endswith("web.server")]
    assert len([m for m in logged if "web: 404" in m]) == 1, "once per 10 s per kind"
    assert len([m for m in logged if "web: 400 malformed request" in m]) == 1
    assert "Traceback" not in caplog.text
    clock.now += 10
    curl(base + "/nothing")
    logged = [r.getMessage() for r in caplog.records if "web: 404" in r.getMessage()]
    assert len(logged) == 2 and "(1 similar in the last 10 s not logged)" in logged[1]


@needs_curl
def test_curl_rate_limit_per_client(serve: Callable[..., tuple[WebServer, str, Clock]]) -> None:
    _, base, clock = serve(max_rate=2.0)
    replies = [curl(base + "/healthz") for _ in range(3)]
    assert [r.status for r in replies] == [200, 200, 429]
    assert replies[2].headers["retry-after"] == "1"
    assert replies[2].text == (
        "too many requests: more than 2 a second from 127.0.0.1 (web.max_rate)\n"
    )
    clock.now += 0.5  # one request's worth back
    assert [curl(base + "/healthz").status for _ in range(2)] == [200, 429]


@needs_curl
def test_curl_the_allow_list_comes_first(
    serve: Callable[..., tuple[WebServer, str, Clock]],
) -> None:
    _, base, _ = serve(allow=(ipaddress.ip_network("10.0.0.0/8"),), max_rate=1.0)
    for _ in range(3):  # refused before the rate is charged
        reply = curl(base + "/api/status")
        assert reply.status == 403
        assert reply.json() == {"error": "forbidden: 127.0.0.1 is not in the show's web.allow"}


@needs_curl
def test_curl_csrf_and_origin_on_loopback(
    serve: Callable[..., tuple[WebServer, str, Clock]],
) -> None:
    server, base, _ = serve()
    csrf = curl(base + "/api/status").json()["csrf"]
    blackout = (*JSON, "--data", '{"on": true}')
    with_csrf = ("-H", f"X-CSRF-Token: {csrf}")
    assert curl(base + "/api/blackout", *blackout).status == 403
    assert curl(base + "/api/blackout", *blackout, "-H", "X-CSRF-Token: guess").status == 403
    evil = curl(base + "/api/blackout", *blackout, *with_csrf, "-H", "Origin: http://evil.example")
    assert evil.status == 403 and "not from this page" in evil.json()["error"]
    referer = ("-H", "Referer: http://evil.example/page")
    assert curl(base + "/api/blackout", *blackout, *with_csrf, *referer).status == 403
    assert not server.conductor.status().blackout
    own = curl(base + "/api/blackout", *blackout, *with_csrf, "-H", f"Origin: {base}")
    assert own.status == 200 and server.conductor.status().blackout


@needs_curl
def test_curl_token_rebinding_and_sessions_on_loopback(
    serve: Callable[..., tuple[WebServer, str, Clock]],
) -> None:
    _, base, clock = serve(token=TOKEN)
    port = base.rsplit(":", 1)[1]
    # A name that resolves here (DNS rebinding) is not this machine: it needs the token.
    rebound = ("-H", f"Host: gallery.example:{port}")
    assert curl(base + "/api/status", *rebound).status == 401
    assert curl(base + "/", *rebound).headers["location"] == "/login"
    evil = ("-H", "Origin: http://gallery.example", "--data", "{}")
    assert curl(base + "/api/face/next", *rebound, *evil).status == 401, "who, before CSRF"
    bearer = ("-H", f"Authorization: Bearer {TOKEN}")
    assert curl(base + "/api/status", *rebound, *bearer).status == 200
    assert curl(base + "/api/status", "-H", "Authorization: Bearer wrong-token").status == 401
    clock.now += 10  # a wrong token cost a second of the client's rate
    login = curl(base + "/login", "--data-urlencode", f"token={TOKEN}")
    assert login.status == 303
    cookie = ("-H", f"Cookie: {login.headers['set-cookie'].split(';')[0]}")
    assert login.headers["set-cookie"].startswith(f"{COOKIE}=")
    plain = curl(base + "/api/status").json()["csrf"]
    session = curl(base + "/api/status", *cookie).json()["csrf"]
    assert session != plain
    clock.now += SESSION_SECONDS  # the login has expired: loopback still gets in, without it
    assert curl(base + "/api/status", *cookie).json()["csrf"] == plain


def test_a_connection_without_a_request_is_closed_and_asyncio_is_rate_limited(
    serve: Callable[..., tuple[WebServer, str, Clock]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(httpthread, "IDLE", 0.2)
    server, _, _ = serve()
    assert server.address is not None
    with socket.create_connection(server.address, timeout=20) as slow:
        slow.sendall(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never ends
        assert slow.recv(1024) == b"", "closed by the server, not by the 20 s timeout here"
    assert server._loop is not None
    for _ in range(3):  # as asyncio reports an accept() out of file descriptors
        error = OSError(24, "Too many open files")
        context = {"message": "socket.accept() out of system resource", "exception": error}
        server._loop.call_soon_threadsafe(server._loop.call_exception_handler, context)
    handled = threading.Event()
    server._loop.call_soon_threadsafe(handled.set)  # after the three, in order
    assert handled.wait(10)
    logged = [m for r in caplog.records if "out of system" in (m := r.getMessage())]
    assert logged == [
        "web: socket.accept() out of system resource (OSError: [Errno 24] Too many open files)"
    ]


def test_the_gate_judges_real_addresses() -> None:
    gate = Gate(WebSettings(enabled=True))
    assert gate.identify("::ffff:127.0.0.1", "localhost:8080", None, None) is not None
    assert gate.identify("::1", "[::1]:8080", None, None) is not None
    assert gate.identify("127.0.0.1", "127.0.0.1", None, None) is not None
    assert gate.identify("127.0.0.1", "gallery.example", None, None) is None
    assert gate.identify("127.0.0.1", "[bad", None, None) is None
    assert gate.identify("192.168.1.20", "localhost", None, None) is None
    assert gate.identify("::ffff:192.168.1.20", "localhost", None, None) is None


def test_from_another_machine_the_token_login_and_csrf_are_needed() -> None:
    if not has_curl():
        pytest.skip("curl is not installed")
    try:
        subprocess.run(["unshare", "-rn", "ip", "link", "set", "lo", "up"], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"no private network namespace here (unshare -rn, ip): {exc}")
    done = subprocess.run(
        ["unshare", "-rn", sys.executable, str(ROOT / "tests" / "web_netns.py")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.splitlines()[-1])

    def status(name: str) -> int:
        return int(results[name]["status"])

    assert status("page") == 303 and results["page"]["headers"]["location"] == "/login"
    assert status("status") == 401
    assert status("login page") == 200 and status("style") == 200
    assert status("bearer status") == 200
    assert status("bearer post without csrf") == 403
    assert status("bearer post") == 200 and results["blackout"] is True
    assert status("wrong bearer") == 401
    assert status("right after a wrong token") == 429
    assert status("wrong login") == 401
    assert status("login") == 303
    cookie = results["login"]["headers"]["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=43200" in cookie
    assert status("cookie status") == 200 and results["csrfs differ"]
    assert status("cookie post without csrf") == 403
    assert status("cookie post with the bearer csrf") == 403
    assert status("cookie post from elsewhere") == 403
    assert status("cookie post") == 200 and results["frozen"] is True
    assert status("logout") == 303 and status("after logout") == 401
    assert status("outsider") == 403
    assert json.loads(results["outsider"]["body"]) == {
        "error": "forbidden: 10.9.1.1 is not in the show's web.allow"
    }
