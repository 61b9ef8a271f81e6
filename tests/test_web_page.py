"""The remote page in a real browser: Debian's Chromium, headless, driving the real server.

Chromium is steered over the DevTools protocol with aiohttp's websocket client (no driver
download, no new dependency). The show is built as ``installation run`` builds it (monitor,
health record, web server on a free loopback port) and plays headless on a thread. The test
loads the page at a phone's size, takes a screenshot, presses buttons with real mouse events,
and checks what the conductor did and what the thumbnail <img> shows: the scene's face, then
black after the blackout button.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import numpy as np
import pygame
import pytest
from conftest import DEFAULT_BUNDLE
from live import ProbeDisplay

from installation.player import RunningShow
from installation.score.trajectory import keyframe
from installation.service.signals import RunSignals
from installation.session import open_show

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: A common phone's CSS viewport.
PHONE = (412, 915)

pytestmark = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK),
    reason="Chromium is not installed (Debian: apt install chromium; scripts/bootstrap.sh --test)",
)

SHOW = f"""
title = "Web remote test"
bundle = "{DEFAULT_BUNDLE}"

[display]
mode = "headless"

[engine]
quality = "full"  # every frame at the bundle's full size, as the test's reference faces

[osc]
enabled = false

[web]
enabled = true
port = 0

[[scenes]]
name = "first"
seed = 1
hold = 3600.0  # one face all along, however slowly the test runs
morph = 1.0
transition = "cut"

[[scenes]]
name = "second"
seed = 2
hold = 3600.0
morph = 1.0
transition = "cut"
"""


#: Runs before the page's own scripts: records what the server's Content-Security-Policy
#: blocked, so a policy too strict for the page fails the test.
CSP_WATCH = (
    "window.violations = []; document.addEventListener('securitypolicyviolation',"
    " (e) => window.violations.push(`${e.violatedDirective} ${e.blockedURI}`));"
)


class Chromium:
    """Headless Chromium with one page, steered over the DevTools protocol.

    Chromium picks a free debugging port and writes it to DevToolsActivePort in its profile,
    so nothing here guesses a port; the profile is a temporary folder, removed afterwards.
    """

    def __init__(self, size: tuple[int, int], mobile: bool) -> None:
        self.size = size
        self.mobile = mobile
        self._ids = itertools.count(1)

    async def __aenter__(self) -> Chromium:
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-")
        args = [
            CHROMIUM,
            "--headless=new",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={self._profile.name}",
            f"--window-size={self.size[0]},{self.size[1]}",
            "--no-first-run",
            "--disable-gpu",
            "--disable-dev-shm-usage",  # containers' /dev/shm is often too small for it
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--mute-audio",
            "about:blank",
        ]
        if os.geteuid() == 0:  # Chromium's sandbox refuses root; CI containers run as root
            args.insert(1, "--no-sandbox")
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        port = await self._debugging_port(Path(self._profile.name) / "DevToolsActivePort")
        self._http = aiohttp.ClientSession()
        async with self._http.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json(content_type=None)
        page = next(target for target in targets if target["type"] == "page")
        self._socket = await self._http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        await self.call(
            "Emulation.setDeviceMetricsOverride",
            width=self.size[0],
            height=self.size[1],
            deviceScaleFactor=1,
            mobile=self.mobile,
        )
        return self

    async def _debugging_port(self, port_file: Path) -> int:
        deadline = time.monotonic() + 30
        while not port_file.is_file() or len(port_file.read_text().splitlines()) < 2:
            if self._process.poll() is not None or time.monotonic() > deadline:
                self._process.kill()
                error = self._process.communicate()[1].decode(errors="replace")
                raise RuntimeError(f"Chromium did not start: {error[-800:]}")
            await asyncio.sleep(0.05)
        return int(port_file.read_text().splitlines()[0])

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._socket.close()
        await self._http.close()
        self._process.terminate()
        try:
            self._process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.communicate()
        self._profile.cleanup()

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; events that arrive meanwhile are not needed and skipped."""
        ident = next(self._ids)
        await self._socket.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads((await self._socket.receive(timeout=30)).data)
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    async def evaluate(self, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, what: str, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := await self.evaluate(expression)):
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.05)
        return value

    async def open(self, url: str) -> None:
        await self.call("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'", f"{url} to load")

    async def screenshot(self) -> bytes:
        """The viewport as PNG."""
        return base64.b64decode((await self.call("Page.captureScreenshot", format="png"))["data"])

    async def click(self, selector: str) -> None:
        """A real left click (pressed and released) in the middle of the element."""
        x, y = await self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            await self.call(
                "Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1
            )

    async def image(self, selector: str) -> np.ndarray | None:
        """What the <img> at ``selector`` shows, decoded by the browser, as H x W x 3 uint8
        RGB at the image's own size, or None while it has no picture loaded (read through a
        canvas, as the page's CSP lets no script fetch the blob: URL the page made from the
        JPEG it received)."""
        shown = await self.evaluate(
            f"(() => {{ const image = document.querySelector({json.dumps(selector)});"
            " if (!image.complete || !image.naturalWidth) return null;"
            " const canvas = document.createElement('canvas');"
            " canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;"
            " const context = canvas.getContext('2d'); context.drawImage(image, 0, 0);"
            " const rgba = context.getImageData(0, 0, canvas.width, canvas.height).data;"
            " let text = ''; for (let i = 0; i < rgba.length; i += 8192)"
            " text += String.fromCharCode(...rgba.subarray(i, i + 8192));"
            " return [canvas.width, canvas.height, btoa(text)]; })()"
        )
        if shown is None:
            return None
        width, height, encoded = shown
        rgba = np.frombuffer(base64.b64decode(encoded), np.uint8).reshape(height, width, 4)
        return rgba[:, :, :3]


def picture(data: bytes, hint: str) -> np.ndarray:
    """An encoded image (PNG) as H x W x 3 uint8 RGB, decoded by pygame."""
    surface = pygame.image.load(BytesIO(data), hint)
    width, height = surface.get_size()
    return np.frombuffer(pygame.image.tobytes(surface, "RGB"), np.uint8).reshape(height, width, 3)


class WebShow:
    """The show ``installation run`` plays (health record, monitor, web server), headless, on
    a thread; ``url`` is its page on the free port the server took."""

    def __init__(self, path: Path) -> None:
        show, ladder, conductor = open_show(path)
        self.display = ProbeDisplay()
        self.conductor = conductor
        self.pipeline = ladder.pipeline
        self.running = RunningShow.for_show(show, ladder, conductor, self.display, RunSignals())
        self._thread = threading.Thread(target=self.running.play, name="show")

    def __enter__(self) -> WebShow:
        self._thread.start()
        deadline = time.monotonic() + 30
        while len(self.display.presents) < 5 or self.web_address is None:
            assert self._thread.is_alive(), "the show ended during start-up"
            assert time.monotonic() < deadline, "the show did not start with its web server"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.display.quit.set()
        self._thread.join(20)

    @property
    def web_address(self) -> tuple[str, int] | None:
        control = self.running.control
        return None if control is None or control.web is None else control.web.address

    @property
    def url(self) -> str:
        assert self.web_address is not None
        host, port = self.web_address
        return f"http://{host}:{port}/"


@pytest.fixture
def web_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebShow]:
    for name in ("RUNTIME_DIRECTORY", "NOTIFY_SOCKET", "WATCHDOG_USEC"):  # not systemd's
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # its health record stays here
    path = tmp_path / "show.toml"
    path.write_text(SHOW)
    with WebShow(path) as live:
        yield live


def test_page_in_chromium_changes_scene_and_shows_the_face(web_show: WebShow) -> None:
    faces = web_show.pipeline.run(np.stack([keyframe(1, 0, 100), keyframe(2, 0, 100)]))
    asyncio.run(drive_page(web_show, faces[0], faces[1]))


async def shows(browser: Chromium, expected: np.ndarray, what: str) -> None:
    """Wait until the page's thumbnail is ``expected`` to within JPEG's error (a few levels
    on average; another face, or black, differs by tens)."""
    deadline = time.monotonic() + 30
    while True:
        thumbnail = await browser.image("#thumbnail")
        if thumbnail is None:
            assert time.monotonic() < deadline, "the page never showed a thumbnail"
            await asyncio.sleep(0.05)
            continue
        assert thumbnail.shape == expected.shape, "the frame's own size (under 480 px wide)"
        difference = np.abs(thumbnail.astype(int) - expected.astype(int)).mean()
        if difference < 6:
            return
        assert time.monotonic() < deadline, f"the thumbnail never showed {what} ({difference:.1f})"
        await asyncio.sleep(0.2)


async def drive_page(live: WebShow, first_face: np.ndarray, second_face: np.ndarray) -> None:
    assert np.abs(first_face.astype(int) - second_face.astype(int)).mean() > 20
    async with Chromium(PHONE, mobile=True) as browser:
        await browser.call("Page.enable")
        await browser.call("Page.addScriptToEvaluateOnNewDocument", source=CSP_WATCH)
        await browser.open(live.url)
        await browser.wait_for(
            "document.querySelectorAll('#scenes button').length === 2", "the scene buttons"
        )
        await shows(browser, first_face, "the first scene's face")
        screen = picture(await browser.screenshot(), "page.png")
        assert screen.shape == (PHONE[1], PHONE[0], 3)
        assert screen.std() > 20, "the screenshot is blank"
        assert await browser.evaluate("document.getElementById('title').textContent") == (
            "Web remote test"
        )

        await browser.click('#scenes button[data-scene="second"]')
        await browser.wait_for(
            "document.querySelector('#scenes button[aria-pressed=\"true\"]')"
            "?.dataset.scene === 'second'",
            "the page to mark the second scene as playing",
        )
        assert live.conductor.status().scene == "second"
        await shows(browser, second_face, "the second scene's face")

        await browser.click("#blackout")
        await browser.wait_for(
            "document.getElementById('blackout').getAttribute('aria-pressed') === 'true'",
            "the blackout button to show it is on",
        )
        assert live.conductor.status().blackout
        await shows(browser, np.zeros_like(second_face), "black")
        assert await browser.evaluate("document.getElementById('error').hidden")
        assert await browser.evaluate("window.violations") == [], "the page keeps to its CSP"
