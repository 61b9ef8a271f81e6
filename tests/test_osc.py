"""OSC end to end: python-osc's UDP client over loopback steering the real headless runtime.

Every test starts the show with its OSC server on a free port, sends real datagrams, and
looks at what the display presented (read back from the screen) or at the server's counters.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import DEFAULT_BUNDLE, ROOT
from live import LiveShow
from pythonosc.osc_bundle_builder import OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from installation.control.osc.addresses import ADDRESSES
from installation.score.trajectory import keyframe

SHOW = f"""
bundle = "{DEFAULT_BUNDLE}"

[display]
mode = "headless"

[osc]
port = 0
{{osc}}

[[scenes]]
name = "a"
seed = 1
hold = 60.0
morph = 1.0
transition = "cut"

[[scenes]]
name = "b"
seed = 2
hold = 60.0
morph = 1.0
transition = "cut"
"""


def write_show(tmp_path: Path, osc: str = "") -> Path:
    path = tmp_path / "show.toml"
    path.write_text(SHOW.replace("{osc}", osc))
    return path


@pytest.fixture
def live(tmp_path: Path):
    with LiveShow(write_show(tmp_path)) as show:
        yield show


def shows_face(live: LiveShow, latent: np.ndarray, after: float) -> bool:
    expected = live.face(latent)
    return any(np.array_equal(p.frame.image, expected) for p in live.display.since(after))


def test_scene_change_and_seed(live: LiveShow) -> None:
    assert shows_face(live, keyframe(1, 0, 100), 0.0)
    sent = time.perf_counter()
    live.client.send_message("/scene", "b")
    live.wait_for(lambda: shows_face(live, keyframe(2, 0, 100), sent), "scene b's first face")
    assert live.conductor.status().scene == "b"
    sent = time.perf_counter()
    live.client.send_message("/scene", 1)
    live.wait_for(lambda: shows_face(live, keyframe(1, 0, 100), sent), "scene 1 again")
    sent = time.perf_counter()
    live.client.send_message("/seed", 12345)
    live.wait_for(lambda: shows_face(live, keyframe(12345, 0, 100), sent), "the new seed")
    assert live.osc.stats.messages == 3 and live.osc.stats.rejected == 0


def test_blackout_makes_frames_black(live: LiveShow) -> None:
    sent = time.perf_counter()
    live.client.send_message("/blackout", 1)
    live.wait_for(lambda: any(p.peak == 0 for p in live.display.since(sent)), "a black frame")
    first_black = next(p.at for p in live.display.since(sent) if p.peak == 0)
    live.wait_for(lambda: len(live.display.since(first_black)) > 10, "more pictures")
    black = live.display.since(first_black)
    assert all(p.peak == 0 for p in black), "the screen stays black"
    sent = time.perf_counter()
    live.client.send_message("/blackout", [0.0, 0.1])  # back over 0.1 s
    live.wait_for(
        lambda: any(p.brightness == 1.0 and p.peak > 100 for p in live.display.since(sent)),
        "the picture back",
    )


def test_status_and_ping_answer_the_sender(live: LiveShow) -> None:
    live.client.send_message("/ping", [])
    assert live.client.receive(2.0).startswith(b"/pong\x00")
    live.client.send_message("/status", [])
    reply = next(live.client.get_messages(2.0))
    assert reply.address == "/status/reply"
    scene, number, fps, uptime, seed, blackout, frozen = reply.params
    assert (scene, number, seed, blackout, frozen) == ("a", 1, 1, 0, 0)
    assert 30 < fps < 90 and uptime > 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(2.0)
        live.client.send_message("/ping", listener.getsockname()[1])
        assert listener.recv(64).startswith(b"/pong\x00"), "answered at the port asked for"


def test_patterns_and_bundles(live: LiveShow) -> None:
    live.client.send_message("/scene/n?xt", [])
    live.wait_for(lambda: live.conductor.status().scene == "b", "the next scene by pattern")
    bundle = OscBundleBuilder(time.time() + 0.4)
    for address, value in (("/seed", 77), ("/freeze", 1)):
        message = OscMessageBuilder(address)
        message.add_arg(value)
        bundle.add_content(message.build())
    sent = time.monotonic()
    live.client.send(bundle.build())
    live.wait_for(lambda: live.conductor.status().frozen, "the timed bundle")
    assert time.monotonic() - sent > 0.3, "a timed bundle waits for its time"
    assert live.conductor.status().seed == 77


def raw(live: LiveShow, data: bytes) -> None:
    assert live.osc.address is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(data, live.osc.address)


def message(address: str, *args: object) -> bytes:
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


def test_bad_input_is_counted_and_the_show_goes_on(live: LiveShow) -> None:
    good = message("/scene", "b")
    junk = [
        os.urandom(64),
        b"",
        b"/",
        good[:7],  # truncated inside the address
        good[:-3],  # truncated inside the argument
        b"#bundle\x00" + os.urandom(24),
        b"#bundle\x00" + bytes(8) + struct.pack(">i", 1000) + b"/x\x00\x00",
        b"/scene\x00\x00,z\x00\x00",  # unknown type tag
    ]
    for data in junk:
        raw(live, data)
    live.client.send_message("/nowhere", 1)
    bad_messages = [
        ("/scene", []),
        ("/scene", ["nobody"]),
        ("/scene", [9]),
        ("/seed", ["many"]),
        ("/seed", [-1]),
        ("/truncation", [1.5]),
        ("/intensity", [float("nan")]),
        ("/blackout", [2]),
        ("/hold", [1.0, 2.0]),
        ("/fade", [True]),
    ]
    for address, args in bad_messages:
        live.client.send_message(address, args)
    stats = live.osc.stats
    live.wait_for(lambda: stats.rejected == len(bad_messages), "every bad message")
    assert stats.malformed == len(junk) and stats.unknown == 1
    assert stats.messages == 0
    assert live.conductor.status().scene == "a", "nothing bad changed the show"
    sent = time.perf_counter()
    raw(live, good)
    live.wait_for(lambda: shows_face(live, keyframe(2, 0, 100), sent), "a good message after")


def test_random_bytes_never_stop_the_server(live: LiveShow) -> None:
    rng = np.random.default_rng(7)
    good = message("/truncation", 0.5)
    stats = live.osc.stats
    for sent in range(1, 501):
        data = bytearray(good)
        for _ in range(int(rng.integers(1, 4))):
            data[int(rng.integers(len(data)))] = int(rng.integers(256))
        raw(live, bytes(data[: int(rng.integers(1, len(data) + 1))]))
        if sent % 50 == 0:  # in step with the server, so the kernel's buffer never overflows
            live.wait_for(lambda sent=sent: stats.datagrams == sent, "the server to read them")
    live.client.send_message("/ping", [])
    assert live.client.receive(2.0).startswith(b"/pong"), "still answering"
    assert live.osc.stats.failed == 0


def test_flood_is_limited_and_the_display_keeps_its_rate(live: LiveShow) -> None:
    # The display's pace in the flood is compared with its pace just before, in the same run,
    # so a busy machine slows both alike; benchmarks/osc_flood.py measures the rates.
    quiet = time.perf_counter()
    time.sleep(0.5)
    start = time.perf_counter()
    while time.perf_counter() - start < 1.5:
        for _ in range(100):
            live.client.send_message("/intensity", 0.5)
    elapsed = time.perf_counter() - start
    quiet_pace = len(live.display.since(quiet)) - len(live.display.since(start))
    flood_pace = len(live.display.since(start)) * (start - quiet) / elapsed
    assert flood_pace > 0.6 * quiet_pace, "the display kept its rate"
    live.wait_for(lambda: live.osc.stats.over_rate > 0, "the rate limit: the test really floods")
    live.client.send_message("/ping", [])
    time.sleep(1.1)  # the sender's allowance refills
    live.client.send_message("/ping", [])
    assert live.client.receive(2.0).startswith(b"/pong")


def test_a_flood_of_64_kb_bundles_is_dropped_before_it_is_read(live: LiveShow) -> None:
    """Each costs a second of the default rate at the door (one message per 64 bytes), so
    all but about one a second are dropped unread, and the one let in is refused for its
    2,700 elements before python-osc parses it; another host's /status is answered."""
    assert live.osc.address is not None
    element = message("/intensity", 0.5)
    sized = struct.pack(">i", len(element)) + element
    bundle = b"#bundle\x00" + bytes(7) + b"\x01" + sized * (64_000 // len(sized))
    start = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flooder:
        flooder.bind(("127.0.0.2", 0))
        for _ in range(200):
            flooder.sendto(bundle, live.osc.address)
    live.client.send_message("/status", [])
    assert next(live.client.get_messages(2.0)).address == "/status/reply"
    stats = live.osc.stats
    assert stats.over_rate > 0 and stats.accepted == 1  # the /status
    assert stats.malformed <= 2 + time.monotonic() - start


def test_allowlist_drops_and_counts(tmp_path: Path) -> None:
    with LiveShow(write_show(tmp_path, 'allow = ["10.0.0.0/8"]')) as live:
        for _ in range(3):
            live.client.send_message("/blackout", 1)
        live.wait_for(lambda: live.osc.stats.refused == 3, "three refusals")
        time.sleep(0.1)
        assert live.display.presents[-1].brightness == 1.0
        assert live.osc.stats.messages == 0


def test_reload_over_osc_keeps_the_show_on_bad_edits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_show(tmp_path)
    with LiveShow(path) as live:
        path.write_text(path.read_text().replace('name = "a"', 'name = "dawn"'))
        live.client.send_message("/show/reload", [])
        live.wait_for(lambda: live.conductor.status().scene == "dawn", "the reloaded scene")
        path.write_text(path.read_text().replace("hold = 60.0", "hold = -1.0", 1))
        live.client.send_message("/show/reload", 1)
        live.wait_for(lambda: live.control.reloader.failures == 1, "the failed reload")
        live.client.send_message("/show/reload", 0)  # a button's release: ignored
        assert f"{path}:" in caplog.text and "scenes[0].hold: expected 0 to 3600" in caplog.text
        assert live.conductor.status().scene == "dawn"
        live.client.send_message("/ping", [])
        assert live.client.receive(2.0).startswith(b"/pong")
    assert live.control.reloader.reloads == 1


def test_docs_list_exactly_the_mapped_addresses() -> None:
    documented = set()
    reference = (ROOT / "docs" / "osc.md").read_text().split("\n## Addresses\n")[1]
    for line in reference.split("\n## ")[0].splitlines():
        if line.startswith("| `/"):
            documented.add(line.split("`")[1])
    assert documented == set(ADDRESSES)


def test_osc_can_be_turned_off(tmp_path: Path) -> None:
    with LiveShow(write_show(tmp_path, "enabled = false")) as live:
        assert live.control.osc is None
