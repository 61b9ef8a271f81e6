"""The installation as a lighting fixture: real Art-Net datagrams and the ``sacn`` library's
own sender over loopback (and multicast inside a private network namespace, dmx_netns.py)
steering the real conductor and the real headless show; loss, release, bad packets; the
fixture files generated from the one channel table.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import sacn
from conftest import DEFAULT_BUNDLE, MULTICAST_NETNS, ROOT
from hypothesis import given, settings
from hypothesis import strategies as st
from live import LiveShow
from sacn.messages.data_packet import DataPacket

from installation.cli import main
from installation.control.dmx import dmx_receiver
from installation.control.dmx.artnet import ArtNetReceiver, art_dmx, art_dmx_packet
from installation.control.dmx.channels import CHANNELS, DmxSteering, scene_bands, slot_names
from installation.control.dmx.fixture import QXF_NAMESPACE
from installation.control.dmx.receiver import DmxReceiver, Malformed
from installation.errors import UserError
from installation.ratelog import RateLimitedLog
from installation.score.conductor import Conductor
from installation.score.show import load_show
from installation.session import load_parts

SHOW = f"""
bundle = "{DEFAULT_BUNDLE}"

[display]
mode = "headless"

[osc]
enabled = false

[dmx]
{{dmx}}

[[scenes]]
name = "a"
seed = 1
hold = 60.0
morph = 1.0
truncation = 0.7
transition = "cut"

[[scenes]]
name = "b"
seed = 2
hold = 60.0
morph = 1.0
truncation = 0.7
transition = "cut"
"""
ARTNET = 'protocol = "artnet"\nuniverse = 5\nstart = 101\nport = 0\nmax_rate = 100000'
SLOT = {name: index for index, name in enumerate(slot_names())}


def write_show(folder: Path, dmx: str) -> Path:
    path = folder / "show.toml"
    path.write_text(SHOW.replace("{dmx}", dmx))
    return path


def universe(start: int = 1, **raw: int) -> bytes:
    """512 channels, zero but for the fixture's ``raw`` values (name with _ for space; a
    16-bit channel's value fills its fine channel too)."""
    data = bytearray(512)
    for key, value in raw.items():
        name = key.replace("_", " ").capitalize()
        slot = start - 1 + SLOT[name]
        if f"{name} fine" in SLOT:
            data[slot : slot + 2] = value.to_bytes(2, "big")
        else:
            data[slot] = value
    return bytes(data)


def wait_for(condition, what: str, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def started(show: Path) -> Conductor:
    _, _, conductor = load_parts(show)
    clock = time.monotonic
    begin = clock()
    conductor.start(lambda: clock() - begin)
    return conductor


@pytest.fixture
def receiver(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[DmxReceiver]:
    """A started receiver for the show with ``[dmx]`` as the test's parameter says."""
    conductor = started(write_show(tmp_path, request.param))
    dmx = load_show(tmp_path / "show.toml").dmx
    assert dmx is not None
    found = dmx_receiver(dmx, conductor)
    found.start()
    assert found.wait_bound(5.0)
    yield found
    found.stop()


def send(receiver: DmxReceiver, *packets: bytes) -> None:
    """Art-Net datagrams to ``receiver``, paced by its count, so the kernel drops none."""
    address = receiver.address
    assert address is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for packet in packets:
            before = receiver.stats.packets
            sock.sendto(packet, address)
            wait_for(lambda before=before: receiver.stats.packets > before, "the packet")


# The channel table and its files.


def test_the_table_fills_its_footprint_and_scene_bands_split_the_range() -> None:
    assert slot_names()[:3] == ["Master dimmer", "Master dimmer fine", "Blackout"]
    assert len(CHANNELS) == 9 and len(slot_names()) == 12
    assert scene_bands(2) == [(1, 128), (129, 255)]
    assert scene_bands(3) == [(1, 85), (86, 170), (171, 255)]
    bands = scene_bands(300)
    assert len(bands) == 255 and bands[-1] == (255, 255), "the first 255 of more scenes"


@pytest.mark.parametrize("kind", ["ofl", "qxf"])
def test_fixture_files_parse_and_list_exactly_the_table(tmp_path: Path, kind: str) -> None:
    show = write_show(tmp_path, ARTNET)
    out = tmp_path / f"fixture.{kind}"
    assert main(["dmx-fixture", "--format", kind, "--out", str(out), str(show)]) == 0
    if kind == "ofl":
        fixture = json.loads(out.read_text())
        assert {"name", "categories", "meta", "availableChannels", "modes"} <= set(fixture)
        assert set(fixture["meta"]) == {"authors", "createDate", "lastModifyDate"}
        for name, entry in fixture["availableChannels"].items():
            # OFL's own check: capabilities cover the channel's values in order, read at the
            # channel's resolution (16 bits for a channel with a fine alias, unless told).
            ranges = [c["dmxRange"] for c in entry.get("capabilities", [])]
            fine = "fineChannelAliases" in entry
            resolution = entry.get("dmxValueResolution", "16bit" if fine else "8bit")
            top = 255 if resolution == "8bit" else 65535
            assert not ranges or (ranges[0][0] == 0 and ranges[-1][1] == top), name
            assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges)), name
        (mode,) = fixture["modes"]
        assert mode["channels"] == slot_names()
        assert set(fixture["availableChannels"]) == {c.name for c in CHANNELS}
        scene = fixture["availableChannels"]["Scene"]["capabilities"]
        assert [(c["dmxRange"], c.get("effectName")) for c in scene] == [
            ([0, 0], None),
            ([1, 128], "a"),
            ([129, 255], "b"),
        ]
        return
    root = ET.parse(out).getroot()
    ns = {"q": QXF_NAMESPACE}
    (mode,) = root.findall("q:Mode", ns)
    listed = mode.findall("q:Channel", ns)
    assert [c.text for c in listed] == slot_names()
    assert [c.get("Number") for c in listed] == [str(n) for n in range(len(slot_names()))]
    assert [c.get("Name") for c in root.findall("q:Channel", ns)] == slot_names()


def test_the_docs_list_exactly_the_table() -> None:
    text = (ROOT / "docs" / "dmx.md").read_text()
    rows = re.findall(r"^\| (\d+) \| ([^|]+) \|", text, re.MULTILINE)
    assert [int(number) for number, _ in rows] == list(range(1, len(slot_names()) + 1))
    assert [name.strip() for _, name in rows] == slot_names()


def test_a_reload_that_moves_the_scene_bands_does_not_cut(tmp_path: Path) -> None:
    conductor = started(write_show(tmp_path, ARTNET))
    steering = DmxSteering(conductor, 1, RateLimitedLog(logging.getLogger(__name__)))
    steering.apply(universe())
    steering.apply(universe(scene=200))
    assert conductor.status().scene == "b"
    path = write_show(tmp_path, ARTNET)
    with path.open("a") as file:
        file.write('\n[[scenes]]\nname = "c"\nseed = 3\ntransition = "cut"\n')
    conductor.replace_show(load_show(path))
    assert len(conductor.scene_names()) == 3, "200 is in the band of c now"
    steering.apply(universe(scene=200))
    assert conductor.status().scene == "b", "a fader standing still does not cut"
    steering.apply(universe(scene=60))
    assert conductor.status().scene == "a"
    steering.apply(universe(scene=200))
    assert conductor.status().scene == "c"


def test_a_fixture_that_cannot_be_written_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "missing" / "f.json"
    show = str(write_show(tmp_path, ARTNET))
    assert main(["dmx-fixture", "--format", "ofl", "--out", str(out), show]) == 2
    error = capsys.readouterr().err
    assert (
        error
        == f"installation: error: {out}: cannot write the fixture: No such file or directory\n"
    )


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        ('protocol = "dmx512"\nuniverse = 1', "protocol", "expected one of sacn, artnet"),
        ('protocol = "sacn"\nuniverse = 0', "universe", "expected 1 to 63999"),
        ('protocol = "artnet"\nuniverse = 32768', "universe", "expected 0 to 32767"),
        ('protocol = "sacn"\nuniverse = 1\nstart = 502', "start", "the fixture takes 12"),
        ('protocol = "sacn"\nuniverse = 1\naddress = "0.0.0.0"', "allow", "missing"),
        ('protocol = "artnet"\nuniverse = 1\nmulticast = "127.0.0.1"', "multicast", "only sACN"),
        ('protocol = "sacn"\nuniverse = 1\nloss = 0', "loss", "expected 0.1 to 3600"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, table: str, key: str, message: str) -> None:
    with pytest.raises(UserError) as caught:
        load_show(write_show(tmp_path, table))
    text = str(caught.value)
    assert f"dmx.{key}" in text and message in text and "\n" not in text


def test_the_artnet_parser_takes_only_artdmx_for_its_universe() -> None:
    good = art_dmx_packet(5, bytes(range(12)))
    assert art_dmx(good, 5) == bytes(range(12))
    assert art_dmx(good, 6) is None, "another universe"
    assert art_dmx(b"Art-Net\x00" + (0x2000).to_bytes(2, "little") + bytes(4), 5) is None
    broken = {
        b"Art-Nex\x00" + good[8:]: "not Art-Net",
        good[:16]: "shorter than its",
        good[:10] + (13).to_bytes(2, "big") + good[12:]: "version 13",
        good[:16] + (3).to_bytes(2, "big") + good[18:]: "must be even",
        good[:16] + (514).to_bytes(2, "big") + good[18:]: "must be even, 2 to 512",
        good[:-2]: "bytes of data",
        good[:15] + b"\x80" + good[16:]: "beyond 15 bits",
    }
    for data, why in broken.items():
        with pytest.raises(Malformed, match=why):
            art_dmx(data, 5)


# Art-Net into a live headless show.


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveShow]:
    with LiveShow(write_show(tmp_path_factory.mktemp("dmx"), ARTNET), seconds=120.0) as show:
        assert show.control.dmx is not None and show.control.dmx.wait_bound(5.0)
        yield show


def test_artnet_channels_move_the_live_show_only_when_they_change(live: LiveShow) -> None:
    dmx = live.control.dmx
    assert dmx is not None
    send(dmx, art_dmx_packet(5, universe(101)))  # a desk with every fader down
    assert live.conductor.status().truncation == pytest.approx(0.7), "the first only listens"
    assert not live.conductor.status().blackout and dmx.steering.changes == 0
    send(dmx, art_dmx_packet(5, universe(101, truncation=0x8000)))
    assert live.conductor.status().truncation == pytest.approx(0x8000 / 65535)
    send(dmx, art_dmx_packet(5, universe(101, truncation=0x8000, scene=200)))
    assert live.conductor.status().scene == "b"
    changes = dmx.steering.changes
    send(dmx, art_dmx_packet(5, universe(101, truncation=0x8000, scene=201)))  # same band
    assert dmx.steering.changes == changes, "a move within a scene's band does nothing"
    sent = time.perf_counter()
    send(dmx, art_dmx_packet(5, universe(101, truncation=0x8000, scene=201, blackout=255)))
    live.wait_for(
        lambda: any(p.peak == 0 for p in live.display.since(sent)), "a black frame on screen"
    )
    sent = time.perf_counter()
    send(dmx, art_dmx_packet(5, universe(101, master_dimmer=0x8000)))
    assert not live.conductor.status().blackout
    live.wait_for(
        lambda: any(abs(p.brightness - 0.5) < 0.01 for p in live.display.since(sent)),
        "the picture at half brightness",
    )
    assert dmx.steering.rejected == 0


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=600),
            st.tuples(st.integers(0, 529), st.integers(0, 255), st.integers(0, 600)).map(
                lambda m: _mutated(*m)
            ),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_fuzzed_packets_are_counted_and_the_show_plays_on(live: LiveShow, packets: list) -> None:
    dmx = live.control.dmx
    assert dmx is not None
    before = dmx.stats.packets
    presents = len(live.display.presents)
    send(dmx, *packets)
    stats = dmx.stats
    assert stats.packets == before + len(packets)
    assert stats.packets == sum(
        (stats.refused, stats.over_rate, stats.malformed, stats.ignored, stats.accepted)
    )
    assert stats.failed == 0
    live.wait_for(lambda: len(live.display.presents) > presents, "the display to go on")
    assert live.result is None, "the show is still playing"


def _mutated(index: int, value: int, cut: int) -> bytes:
    data = bytearray(art_dmx_packet(5, universe(101, truncation=0x4000)))
    data[index] = value
    return bytes(data[:cut])


# sACN from the sacn library's sender; loss and release on the real conductor.


@pytest.mark.parametrize(
    "receiver", ['protocol = "sacn"\nuniverse = 3\nloss = 60\nmax_rate = 100000'], indirect=True
)
def test_sacn_unicast_steers_and_a_release_restores_the_show(receiver: DmxReceiver) -> None:
    conductor = receiver.steering.conductor
    sender = sacn.sACNsender(bind_address="127.0.0.1", bind_port=0, universeDiscovery=False)
    sender.start()
    try:
        sender.activate_output(3)
        sender[3].multicast = False
        sender[3].destination = "127.0.0.1"
        sender[3].dmx_data = universe()
        wait_for(lambda: receiver.stats.accepted > 0, "the first packet")
        sender[3].dmx_data = universe(truncation=0x2000, morph_speed=0x8000, freeze=255)
        wait_for(lambda: conductor.status().frozen, "the freeze")
        status = conductor.status()
        assert status.truncation == pytest.approx(0x2000 / 65535)
        assert status.speed == pytest.approx(16.0 * 0x8000 / 65535)
        sender.deactivate_output(3)  # sends the stream-terminated packets
        wait_for(lambda: receiver.stats.releases > 0, "the release")
    finally:
        sender.stop()
    status = conductor.status()
    assert status.truncation == pytest.approx(0.7) and status.speed == pytest.approx(1.0)
    assert not status.frozen, "the freeze the desk held ends"


@pytest.mark.parametrize(
    "receiver", ['protocol = "sacn"\nuniverse = 3\nmax_rate = 100000'], indirect=True
)
def test_mutated_sacn_packets_are_counted_and_the_receiver_goes_on(receiver: DmxReceiver) -> None:
    good = bytes(DataPacket(tuple(range(16)), "desk", 3, universe(truncation=0x4000)).getBytes())
    rng = random.Random(11)
    packets = []
    for _ in range(300):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        packets.append(bytes(data[: rng.randint(1, len(data))]))
    send(receiver, *packets)
    stats = receiver.stats
    assert stats.packets == len(packets) and stats.failed == 0
    assert stats.packets == stats.malformed + stats.ignored + stats.accepted
    assert stats.malformed > 0 and stats.accepted > 0, "both kinds were sent"
    accepted = stats.accepted
    send(receiver, good)
    assert stats.accepted == accepted + 1, "still reading"


def test_loss_holds_the_last_look_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="installation.control.dmx")
    show = write_show(tmp_path, ARTNET.replace("max_rate = 100000", "loss = 0.2"))
    dmx = load_show(show).dmx
    assert dmx is not None
    # The loss is timed by a clock the test moves, so a stalled machine cannot lose the desk.
    now = [0.0]
    receiver = ArtNetReceiver(dmx, started(show), clock=lambda: now[0])
    receiver.start()
    try:
        assert receiver.wait_bound(5.0)
        send(receiver, art_dmx_packet(5, universe(101)))
        send(receiver, art_dmx_packet(5, universe(101, truncation=0x1000)))
        assert receiver.stats.losses == 0
        now[0] = 0.3
        wait_for(lambda: receiver.stats.losses == 1, "the loss")
        time.sleep(0.3)  # the thread looks again every 0.1 s: still one loss, one line
        lost = [r for r in caplog.records if "no Art-Net packet for 0.2 s" in r.getMessage()]
        assert receiver.stats.losses == 1 and len(lost) == 1
        conductor = receiver.steering.conductor
        assert conductor.status().truncation == pytest.approx(0x1000 / 65535), "held"
        send(receiver, art_dmx_packet(5, universe(101, truncation=0x1000)))
        assert any("packets again" in r.getMessage() for r in caplog.records)
    finally:
        receiver.stop()


@pytest.mark.parametrize("receiver", [ARTNET + '\nallow = ["10.0.0.0/8"]'], indirect=True)
def test_senders_outside_the_allow_list_are_dropped(receiver: DmxReceiver) -> None:
    send(receiver, *(art_dmx_packet(5, universe(101, hold=n)) for n in range(1, 21)))
    assert receiver.stats.refused == 20 and receiver.stats.accepted == 0


def test_a_sender_over_its_rate_is_dropped(tmp_path: Path) -> None:
    show = write_show(tmp_path, ARTNET.replace("100000", "5"))
    dmx = load_show(show).dmx
    assert dmx is not None
    # A clock that stands still: the bucket's second's worth (5) is all there is.
    receiver = ArtNetReceiver(dmx, started(show), clock=lambda: 0.0)
    receiver.start()
    try:
        assert receiver.wait_bound(5.0)
        send(receiver, *(art_dmx_packet(5, universe(101, hold=n)) for n in range(1, 21)))
    finally:
        receiver.stop()
    assert (receiver.stats.accepted, receiver.stats.over_rate) == (5, 15)
    assert receiver.steering.changes == 4, "the first only listens"


def test_sacn_multicast_in_a_private_network_namespace(tmp_path: Path) -> None:
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-rn", "true"]).returncode != 0:
        pytest.skip("no private network namespace here (unshare -rn is not allowed)")
    show = write_show(tmp_path, 'protocol = "sacn"\nuniverse = 7\nmulticast = "127.0.0.1"')
    helper = Path(__file__).with_name("dmx_netns.py")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(helper.parent)])}
    completed = subprocess.run(
        [unshare, "-rn", "sh", "-c", MULTICAST_NETNS, sys.executable, str(helper), str(show)],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["listening"][0] == "239.255.0.7", "bound to the universe's group"
    assert result["truncation"] == pytest.approx(0x3000 / 65535)
    assert result["malformed"] == 0 and result["refused"] == 0
