"""The show's ``[web]`` table: off by default, this machine only unless the show opens it, and
then never without an allow list and a token; each mistake names file, line and key."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path

import pytest
from conftest import DEFAULT_BUNDLE, ROOT

from installation.errors import UserError
from installation.score.osc_settings import LOOPBACK
from installation.score.show import load_show
from installation.score.web_settings import WebSettings

EXAMPLE = ROOT / "shows" / "example.toml"
TOKEN = "a-token-of-24-characters"


def show_with(tmp_path: Path, web: str) -> Path:
    path = tmp_path / "show.toml"
    path.write_text(
        f'bundle = "{DEFAULT_BUNDLE}"\n\n[web]\n{web}\n\n[[scenes]]\nname = "a"\nseed = 1\n'
    )
    return path


def test_off_by_default_and_on_this_machine_only() -> None:
    assert load_show(None).web == WebSettings()
    assert WebSettings() == WebSettings(False, "127.0.0.1", 8080, LOOPBACK, None, 20.0)


def test_the_example_uses_every_key(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    used = set(tomllib.loads(text)["web"])
    assert used == {f.name for f in dataclasses.fields(WebSettings)}
    assert '\n# token_file = "' in text  # the other way to give the token, shown commented
    web = load_show(EXAMPLE).web
    assert (web.enabled, web.address, web.port, len(web.allow)) == (True, "0.0.0.0", 8080, 2)
    assert web.token is not None and web.token not in repr(web), "the token stays out of logs"


def test_a_loopback_server_needs_no_token(tmp_path: Path) -> None:
    web = load_show(show_with(tmp_path, "enabled = true\nport = 0\nmax_rate = 50")).web
    assert web == WebSettings(True, "127.0.0.1", 0, LOOPBACK, None, 50.0)


def test_the_token_file_is_read_once_relative_to_the_show(tmp_path: Path) -> None:
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "token").write_text(f"  {TOKEN}\n\n")
    path = show_with(tmp_path, 'address = "::"\nallow = ["::/0"]\ntoken_file = "secret/token"')
    assert load_show(path).web.token == TOKEN


@pytest.mark.parametrize(
    ("web", "key", "message"),
    [
        (
            'address = "0.0.0.0"',
            "allow",
            "missing: listening on 0.0.0.0 lets other machines in, so list the networks",
        ),
        (
            'address = "0.0.0.0"\nallow = ["10.0.0.0/8"]',
            "token",
            "missing: listening on 0.0.0.0 lets other machines in, so set token (at least 16",
        ),
        ('token = "short"', "token", "the token must be 16 to 256 characters, got 5"),
        ('token = "sixteen characters"', "token", "printable ASCII without spaces"),
        (f'token = "{TOKEN}"\ntoken_file = "t"', "token_file", "token or token_file, not both"),
        ('token_file = "nope"', "token_file", "nope: secret file not found"),
        ("port = 70000", "port", "expected 1 to 65535 (or 0 for any free port), got 70000"),
        ("max_rate = 0", "max_rate", "expected 1 to 10000 requests per second, got 0"),
        ('address = "here"', "address", 'expected an IP address such as "127.0.0.1"'),
        ('enabled = "yes"', "enabled", "expected true or false, got 'yes'"),
        ("allow = []", "allow", "expected at least one network"),
        (f'tokn = "{TOKEN}"', "tokn", "unknown key"),
    ],
)
def test_mistakes_name_file_line_and_key(tmp_path: Path, web: str, key: str, message: str) -> None:
    path = show_with(tmp_path, web)
    with pytest.raises(UserError) as caught:
        load_show(path)
    lines = path.read_text().splitlines()
    line = next((i for i, text in enumerate(lines, 1) if text.startswith(f"{key} ")), 3)
    assert str(caught.value).startswith(f"{path}:{line}: web.{key}: "), caught.value
    assert message in str(caught.value)


def test_a_token_file_that_is_a_pipe_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "token")
    with pytest.raises(UserError, match=r"web\.token_file: .*token: is a named pipe \(FIFO\)"):
        load_show(show_with(tmp_path, 'token_file = "token"'))
