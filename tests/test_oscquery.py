"""OSCQuery: the namespace over real HTTP and a real websocket from a real OSCQuery server on
127.0.0.1, its values from a real conductor, and its mDNS announcement found by zeroconf's
own browser inside a private network namespace (tests/oscquery_netns.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import DEFAULT_BUNDLE, MULTICAST_NETNS, ROOT
from pythonosc.osc_message import OscMessage

from installation.control.osc.addresses import ADDRESSES, SCENE_NAMES
from installation.control.oscquery.server import OscQueryServer
from installation.errors import UserError
from installation.score.conductor import Conductor
from installation.score.osc_settings import OscSettings
from installation.session import load_parts

SHOW = f"""
bundle = "{DEFAULT_BUNDLE}"

[display]
mode = "headless"

[osc]
port = 0
query_port = 0

[[scenes]]
name = "dawn"
seed = 1

[[scenes]]
name = "night"
seed = 2
"""
OSC_ADDRESS = ("127.0.0.1", 9000)


@pytest.fixture
def conductor(tmp_path: Path) -> Conductor:
    path = tmp_path / "show.toml"
    path.write_text(SHOW)
    show, _, conductor = load_parts(path)
    assert show.osc.query_port == 0
    return conductor


def serve(conductor: Conductor, settings: OscSettings) -> Iterator[str]:
    server = OscQueryServer(settings, conductor, lambda: OSC_ADDRESS, announce=False)
    server.start()
    try:
        assert server.address is not None
        yield f"http://127.0.0.1:{server.address[1]}"
    finally:
        server.stop()


@pytest.fixture
def base(conductor: Conductor) -> Iterator[str]:
    yield from serve(conductor, OscSettings(query_port=0))


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            body = reply.read()
            return reply.status, json.loads(body) if body else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_tree_over_http_is_the_table(base: str, conductor: Conductor) -> None:
    status, tree = get(base + "/")
    assert status == 200 and tree["FULL_PATH"] == "/"
    methods = {}

    def walk(node: dict[str, Any]) -> None:
        if node.get("ACCESS"):
            methods[node["FULL_PATH"]] = node
        for name, child in node.get("CONTENTS", {}).items():
            assert child["FULL_PATH"] == f"{node['FULL_PATH'].rstrip('/')}/{name}"
            walk(child)

    walk(tree)
    assert set(methods) == set(ADDRESSES)
    for address, entry in ADDRESSES.items():
        node = methods[address]
        assert node["DESCRIPTION"] == entry.description
        assert node["ACCESS"] == (2 if entry.value is None else 3)
        assert node.get("TYPE", "") == entry.type
        expected = [
            {"VALS": ["dawn", "night"]} if r == SCENE_NAMES else {"MIN": r[0], "MAX": r[1]}
            for r in entry.range
        ]
        assert node.get("RANGE", []) == expected
        assert ("VALUE" in node) == (entry.value is not None)
    assert methods["/scene"]["VALUE"] == ["dawn"]
    assert methods["/blackout"]["VALUE"] == [0]
    assert methods["/seed"]["VALUE"] == [conductor.status().seed]
    assert get(base + "/scene")[1] == methods["/scene"]
    assert get(base + "/morph/speed/")[1] == methods["/morph/speed"]


def test_attribute_queries_answer_as_the_proposal_says(base: str) -> None:
    assert get(base + "/scene?VALUE") == (200, {"VALUE": ["dawn"]})
    assert get(base + "/truncation?RANGE") == (200, {"RANGE": [{"MIN": 0.0, "MAX": 1.0}]})
    assert get(base + "/face/next?TYPE") == (204, None)  # a trigger has no type
    assert get(base + "/scene?NONSENSE")[0] == 400
    status, line = get(base + "/no/such/node")
    assert status == 404 and line == "no such node: /no/such/node\n"


def test_host_info_says_where_osc_listens(base: str) -> None:
    status, info = get(base + "/?HOST_INFO")
    assert status == 200
    assert (info["OSC_IP"], info["OSC_PORT"], info["OSC_TRANSPORT"]) == (*OSC_ADDRESS, "UDP")
    assert info["NAME"].startswith("installation on ")
    assert info["EXTENSIONS"]["LISTEN"] is True and info["EXTENSIONS"]["VALUE"] is True


def test_listen_pushes_a_changed_value_as_osc(base: str, conductor: Conductor) -> None:
    async def listen() -> list[tuple[str, list[Any]]]:
        received = []
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(base + "/", autoping=False) as ws,
        ):
            for path in ("/scene", "/blackout", "/freeze"):
                await ws.send_str(json.dumps({"COMMAND": "LISTEN", "DATA": path}))
            await ws.send_str(json.dumps({"COMMAND": "IGNORE", "DATA": "/freeze"}))
            await ws.send_str("not json")  # ignored, logged; the socket stays open
            # The server reads in order and answers a ping when it reads it: once the pong
            # is back, the commands are in, however slow the machine (no sleep to guess).
            await ws.ping()
            assert (await ws.receive(timeout=10)).type == aiohttp.WSMsgType.PONG
            conductor.freeze(True)
            conductor.go_to_scene("night")
            conductor.blackout(True, 0.0)
            while len(received) < 2:
                message = await ws.receive(timeout=10)
                assert message.type == aiohttp.WSMsgType.BINARY, message
                osc = OscMessage(message.data)
                received.append((osc.address, list(osc.params)))
        return received

    assert sorted(asyncio.run(listen())) == [("/blackout", [1]), ("/scene", ["night"])]
    assert get(base + "/scene?VALUE")[1] == {"VALUE": ["night"]}


def test_a_host_outside_allow_is_refused(conductor: Conductor, caplog: Any) -> None:
    settings = OscSettings(query_port=0, allow=(ipaddress.ip_network("10.0.0.0/8"),))
    for base in serve(conductor, settings):
        assert get(base + "/") == (403, "forbidden: 127.0.0.1 is not in allow\n")
        assert get(base + "/?HOST_INFO")[0] == 403
    refusals = [r for r in caplog.records if "forbidden" in r.getMessage()]
    assert len(refusals) == 1  # the second within 10 s is counted, not logged


def test_docs_give_each_address_its_type_from_the_table() -> None:
    documented = {}
    reference = (ROOT / "docs" / "osc.md").read_text().split("\n## Addresses\n")[1]
    for line in reference.split("\n## ")[0].splitlines():
        if line.startswith("| `/"):
            cells = [cell.strip() for cell in line.split("|")]
            documented[cells[1].strip("`")] = cells[2].strip("`")
    assert documented == {address: entry.type or "-" for address, entry in ADDRESSES.items()}


def test_zeroconf_finds_both_services_and_sees_them_go() -> None:
    try:
        subprocess.run(
            ["unshare", "-rn", "sh", "-c", MULTICAST_NETNS, "true"], check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"no private network namespace with multicast here (unshare -rn, ip): {exc}")
    script = str(ROOT / "tests" / "oscquery_netns.py")
    done = subprocess.run(
        ["unshare", "-rn", "sh", "-c", MULTICAST_NETNS, sys.executable, script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.splitlines()[-1])
    assert results["found"], results
    assert results["oscjson"]["port"] == results["query port"]
    assert results["osc"]["port"] == results["osc port"]
    assert results["oscjson"]["addresses"] == ["127.0.0.1"]
    assert results["host info"]["OSC_PORT"] == results["osc port"]
    assert results["withdrawn"], "the services were not withdrawn when the show stopped"


def test_a_bad_query_port_is_one_line_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "show.toml"
    path.write_text(SHOW.replace("query_port = 0", "query_port = 70000"))
    with pytest.raises(UserError) as error:
        load_parts(path)
    assert str(error.value) == (
        f"{path}:9: osc.query_port: expected 1 to 65535 (or 0: any free), got 70000"
    )
