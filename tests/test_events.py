"""Outbound events end to end: a real python-osc server on 127.0.0.1 hears the real headless
show, steered over OSC, tell of its scenes, faces, blackouts and heartbeat."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import DEFAULT_BUNDLE, brisk_conductor
from live import LiveShow
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer

from installation.control.events import EventSender
from installation.errors import UserError
from installation.score.osc_settings import parse_osc
from installation.tomlfile import Section, read_toml

SHOW = f"""
bundle = "{DEFAULT_BUNDLE}"

[display]
mode = "headless"

[osc]
port = 0
send_to = {{targets}}

[[scenes]]
name = "a"
seed = 1
hold = 0.3
morph = 0.2
transition = "cut"

[[scenes]]
name = "b"
seed = 2
hold = 60.0
morph = 1.0
transition = "cut"
"""


class Receiver:
    """A python-osc server on a free port of 127.0.0.1 keeping every message it hears."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, tuple[object, ...]]] = []
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(lambda address, *args: self.heard.append((address, args)))
        self.server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def args(self, address: str) -> list[tuple[object, ...]]:
        return [args for heard, args in list(self.heard) if heard == address]


def closed_port() -> int:
    """A UDP port on 127.0.0.1 that nothing listens on (bound, then let go)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_events_reach_a_real_receiver(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    dead = closed_port()
    caplog.set_level(logging.INFO, "installation.control.events")
    with Receiver() as receiver:
        path = tmp_path / "show.toml"
        targets = f'["127.0.0.1:{receiver.port}", "127.0.0.1:{dead}"]'
        path.write_text(SHOW.replace("{targets}", targets))
        with LiveShow(path) as live:
            live.wait_for(lambda: receiver.args("/installation/scene"), "the first scene")
            assert receiver.args("/installation/scene")[0] == ("a", 1)
            # Past face 2, not face 2 itself: a look delayed beyond a 0.3 s hold (a loaded
            # machine) skips that face. Each face once, in order.
            live.wait_for(
                lambda: any(i >= 2 for _, i in receiver.args("/installation/face")), "face 2+"
            )
            indices = [index for seed, index in receiver.args("/installation/face")]
            assert (
                indices == sorted(set(indices)) and receiver.args("/installation/face")[0][0] == 1
            )

            live.client.send_message("/scene", "b")
            live.wait_for(lambda: ("b", 2) in receiver.args("/installation/scene"), "scene b")
            live.wait_for(lambda: (2, 0) in receiver.args("/installation/face"), "b's face")

            live.client.send_message("/blackout", 1)
            live.wait_for(lambda: (1,) in receiver.args("/installation/blackout"), "blackout")
            live.client.send_message("/blackout", 0)
            live.wait_for(lambda: receiver.args("/installation/blackout")[-1] == (0,), "lit")
            assert receiver.args("/installation/blackout") == [(0,), (1,), (0,)]

            live.wait_for(lambda: len(receiver.args("/installation/heartbeat")) >= 3, "beats")
            (fps,) = receiver.args("/installation/heartbeat")[-1]
            assert isinstance(fps, float) and fps > 0
            assert live.display.presents[-1].at > live.display.presents[0].at  # still playing
    refused = [
        r for r in caplog.records if r.levelno == logging.WARNING and str(dead) in r.msg % r.args
    ]
    assert len(refused) == 1, [r.getMessage() for r in refused]
    assert "refused" in refused[0].getMessage().lower()


def osc_table(tmp_path: Path, line: str) -> Section:
    path = tmp_path / "show.toml"
    path.write_text(f"[osc]\n{line}\n")
    return Section.root(read_toml(path, "show file")).table("osc")


def test_send_to_takes_literal_addresses(tmp_path: Path) -> None:
    settings = parse_osc(osc_table(tmp_path, 'send_to = ["192.168.1.20:7000", "[::1]:9"]'))
    assert settings.send_to == (("192.168.1.20", 7000), ("::1", 9))


@pytest.mark.parametrize(
    "value", ['"mixer.local:7000"', '"192.168.1.20"', '"10.0.0.1:0"', '"::1:7000"', "7000"]
)
def test_send_to_refuses_what_is_not_ip_and_port(tmp_path: Path, value: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_osc(osc_table(tmp_path, f"send_to = [{value}]"))
    text = str(caught.value)
    assert "show.toml:2: osc.send_to: expected" in text and "\n" not in text


def test_a_reload_moves_the_events_to_new_targets() -> None:
    _, conductor = brisk_conductor(60.0, 1.0)
    conductor.start(time.monotonic)
    with Receiver() as first, Receiver() as second:
        sender = EventSender(conductor, (("127.0.0.1", first.port),))
        sender.start()
        try:
            wait_until(lambda: first.args("/installation/scene"), "the first target")
            sender.update((("127.0.0.1", second.port), ("::1", closed_port())))
            wait_until(lambda: second.args("/installation/scene"), "the new target")
            conductor.blackout(True)
            wait_until(lambda: (1,) in second.args("/installation/blackout"), "the blackout")
            assert (1,) not in first.args("/installation/blackout")  # dropped: hears no more
        finally:
            sender.stop()


def wait_until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 5.0
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
