"""The show's ``[sync]`` table: off without it, the defaults the contract names, and each
mistake one line naming file, line and key."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from conftest import DEFAULT_BUNDLE

from installation.errors import UserError
from installation.score.show import load_show
from installation.score.sync_settings import ANYONE, SyncSettings


def show_with(tmp_path: Path, sync: str) -> Path:
    path = tmp_path / "show.toml"
    path.write_text(
        f'bundle = "{DEFAULT_BUNDLE}"\n\n[sync]\n{sync}\n\n[[scenes]]\nname = "a"\nseed = 1\n'
    )
    return path


def test_off_without_the_table_and_on_with_it(tmp_path: Path) -> None:
    assert load_show(None).sync is None
    sync = load_show(show_with(tmp_path, "")).sync
    assert sync == SyncSettings()
    assert (sync.enabled, sync.where, sync.ttl, sync.rank, sync.allow) == (
        True,
        "239.255.70.16:7016",
        1,
        0,
        ANYONE,
    )
    assert (sync.delay, sync.heartbeat, sync.failover, sync.interface) == (0.1, 0.25, 2.0, "")


def test_every_key(tmp_path: Path) -> None:
    table = """enabled = false
group = "239.1.2.3"
port = 9100
interface = "10.0.0.5"
ttl = 4
rank = 3
delay = 0.05
heartbeat = 0.5
failover = 3
allow = ["10.0.0.0/24"]"""
    sync = load_show(show_with(tmp_path, table)).sync
    assert sync == SyncSettings(
        False,
        "239.1.2.3",
        9100,
        "10.0.0.5",
        4,
        3,
        0.05,
        0.5,
        3.0,
        (ipaddress.ip_network("10.0.0.0/24"),),
    )


def test_a_slow_heartbeat_moves_the_default_failover(tmp_path: Path) -> None:
    sync = load_show(show_with(tmp_path, "heartbeat = 1")).sync
    assert sync is not None and sync.failover == 4.0, "four missed beats at least"


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        ('group = "10.0.0.1"', "group", "expected an IPv4 multicast group"),
        ('group = "ff02::1"', "group", "expected an IPv4 multicast group"),
        ("port = 0", "port", "expected 1 to 65535"),
        ('interface = "eth0"', "interface", "expected the IPv4 address of an interface"),
        ("ttl = 0", "ttl", "expected 1 to 32"),
        ("ttl = 33", "ttl", "expected 1 to 32"),
        ("rank = 256", "rank", "expected 0 to 255"),
        ("rank = 1.5", "rank", "expected an integer"),
        ("delay = 0.01", "delay", "expected 0.02 to 2 seconds"),
        ("heartbeat = 3", "heartbeat", "expected 0.05 to 2 seconds"),
        ("failover = 0.5", "failover", "expected 4 heartbeats (1 s) to 60 seconds"),
        ("failover = 61", "failover", "to 60 seconds"),
        ('allow = ["10.0.0.1/24"]', "allow", "is not a network"),
        ("allow = []", "allow", "expected at least one network"),
        ('leader = "10.0.0.1"', "leader", "unknown key"),
    ],
)
def test_mistakes_name_file_line_and_key(
    tmp_path: Path, table: str, key: str, message: str
) -> None:
    with pytest.raises(UserError) as caught:
        load_show(show_with(tmp_path, table))
    text = str(caught.value)
    assert f"show.toml:4: sync.{key}: " in text and message in text, text
    assert "\n" not in text
