"""Opening hours as a pure function of local time, and their errors in real show files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from conftest import DEFAULT_SHOW

from installation.errors import UserError
from installation.score.hours import ALWAYS_OPEN, OpeningHours, ScreenPower, opening_hours
from installation.score.show import load_show
from installation.tomlfile import Section, read_toml

MUSEUM = """
[hours]
daily = ["10:00-18:00"]
monday = []
thursday = ["10:00-12:00", "12:00-22:00"]
saturday = ["20:00-02:00"]
fade = 1.5

[hours.dates]
2026-12-24 = ["10:00-14:00"]
2026-12-25 = []
2026-12-31 = ["22:00-24:00"]
2027-01-01 = ["00:00-03:00"]
"""


def hours_from(tmp_path: Path, text: str) -> OpeningHours:
    path = tmp_path / "hours.toml"
    path.write_text(text)
    return opening_hours(Section.root(read_toml(path, "show file")))


@pytest.fixture
def museum(tmp_path: Path) -> OpeningHours:
    return hours_from(tmp_path, MUSEUM)


# 2026-06-01 is a Monday.
@pytest.mark.parametrize(
    ("moment", "is_open"),
    [
        ("2026-06-01 12:00", False),  # Monday: closed all day
        ("2026-06-02 09:59:59", False),  # Tuesday, "daily"
        ("2026-06-02 10:00", True),
        ("2026-06-02 17:59:59", True),
        ("2026-06-02 18:00", False),  # the end of a span is closing time
        ("2026-06-04 12:00", True),  # Thursday: two spans meet without a gap
        ("2026-06-04 21:30", True),
        ("2026-06-06 12:00", False),  # Saturday: evening only
        ("2026-06-06 23:00", True),
        ("2026-06-07 01:59", True),  # Sunday night, still Saturday's span
        ("2026-06-07 02:00", False),
        ("2026-06-07 10:30", True),  # Sunday, "daily"
        ("2026-12-24 13:00", True),  # Thursday, but a dated exception replaces the day
        ("2026-12-24 15:00", False),
        ("2026-12-25 12:00", False),
        ("2026-12-31 23:59", True),  # New Year's Eve, through midnight, over two dates
        ("2027-01-01 00:30", True),
        ("2027-01-01 03:00", False),
    ],
)
def test_is_open(museum: OpeningHours, moment: str, is_open: bool) -> None:
    assert museum.is_open(datetime.fromisoformat(moment)) is is_open


def test_time_zone_aware_moments_use_their_wall_clock(museum: OpeningHours) -> None:
    # 10:30 in Berlin is open whatever UTC says; the system's zone is what staff mean.
    assert museum.is_open(datetime.fromisoformat("2026-06-02T10:30:00+02:00"))


@pytest.mark.parametrize(
    ("moment", "change"),
    [
        ("2026-06-02 12:00", "2026-06-02 18:00"),
        ("2026-06-02 19:00", "2026-06-03 10:00"),
        ("2026-06-04 11:00", "2026-06-04 22:00"),  # 12:00 joins two spans: not a change
        ("2026-05-31 19:00", "2026-06-02 10:00"),  # over the closed Monday
        ("2026-06-06 22:00", "2026-06-07 02:00"),
        ("2026-12-31 23:00", "2027-01-01 03:00"),
    ],
)
def test_next_change(museum: OpeningHours, moment: str, change: str) -> None:
    assert museum.next_change(datetime.fromisoformat(moment)) == datetime.fromisoformat(change)


def test_always_open_without_hours_and_closed_for_good_without_spans(tmp_path: Path) -> None:
    assert load_show(DEFAULT_SHOW).hours is ALWAYS_OPEN
    assert ALWAYS_OPEN.is_open(datetime(2026, 6, 1, 3, 0))
    assert ALWAYS_OPEN.next_change(datetime(2026, 6, 1, 3, 0)) is None
    closed = hours_from(tmp_path, "[hours]\n")
    assert not closed.is_open(datetime(2026, 6, 2, 12, 0))
    assert closed.next_change(datetime(2026, 6, 2, 12, 0)) is None
    assert hours_from(tmp_path, MUSEUM).fade == 1.5


def show_with(tmp_path: Path, hours: str) -> Path:
    path = tmp_path / "show.toml"
    path.write_text(DEFAULT_SHOW.read_text() + "\n" + hours)
    return path


def last_line_of(path: Path, needle: str) -> int:
    """The line of the appended table (the default show mentions the keys in comments)."""
    lines = path.read_text().splitlines()
    return max(i for i, line in enumerate(lines, 1) if needle in line)


@pytest.mark.parametrize(
    ("table", "needle", "message"),
    [
        ('[hours]\ntuesday = ["10-18"]\n', "tuesday", 'hours.tuesday: expected times such as "'),
        ('[hours]\ndaily = ["09:00-25:00"]\n', "daily", "hours.daily: expected times"),
        ('[hours]\ndaily = ["09:60-12:00"]\n', "daily", "hours.daily: expected times"),
        ('[hours]\ndaily = ["10:00-10:00"]\n', "daily", "hours.daily: expected times"),
        ('[hours]\ndaily = "10:00-18:00"\n', "daily", "hours.daily: expected a list"),
        ("[hours]\nmondays = []\n", "mondays", "hours.mondays: unknown key"),
        ("[hours]\nfade = -1\n", "fade", "hours.fade: expected 0 to 600 seconds"),
        (
            "[hours.dates]\n2026-02-30 = []\n",
            "2026-02-30",
            "hours.dates.2026-02-30: expected a date",
        ),
        ("[hours.dates]\n2026-12-24 = [10]\n", "2026-12-24", "hours.dates.2026-12-24: expected"),
        (
            '[hours]\nscreen = "hdmi"\n',
            "screen",
            "hours.screen: expected one of none, cec, dpms, pjlink; got 'hdmi'",
        ),
        (
            '[hours]\nscreen = "cec"\npjlink = "10.0.0.5"\n',
            "pjlink",
            'hours.pjlink: used only with screen = "pjlink" (screen is "cec")',
        ),
        ('[hours]\npjlink = "10.0.0.5"\n', "pjlink", "hours.pjlink: used only with"),
        ('[hours]\nscreen = "pjlink"\n', "[hours]", "hours.pjlink: missing; expected the"),
        (
            '[hours]\nscreen = "pjlink"\npjlink = "projector.local"\n',
            "pjlink",
            "hours.pjlink: expected an IP address with an optional port",
        ),
        (
            '[hours]\nscreen = "pjlink"\npjlink = "10.0.0.5:70000"\n',
            "pjlink",
            "hours.pjlink: expected an IP address",
        ),
        (
            '[hours]\nscreen = "pjlink"\npjlink = "10.0.0.5"\npjlink_password = "a b"\n',
            "pjlink_password",
            "hours.pjlink_password: a PJLink password is 1 to 32 printable ASCII characters",
        ),
        (
            '[hours]\nscreen = "pjlink"\npjlink = "10.0.0.5"\npjlink_password = "x"\n'
            'pjlink_password_file = "pw"\n',
            "pjlink_password_file",
            "hours.pjlink_password_file: give pjlink_password or pjlink_password_file, not both",
        ),
        (
            '[hours]\nscreen = "pjlink"\npjlink = "10.0.0.5"\npjlink_password_file = "no"\n',
            "pjlink_password_file",
            "hours.pjlink_password_file: ",
        ),
    ],
)
def test_mistakes_name_file_line_and_key(
    tmp_path: Path, table: str, needle: str, message: str
) -> None:
    path = show_with(tmp_path, table)
    with pytest.raises(UserError) as caught:
        load_show(path)
    assert str(caught.value).startswith(f"{path}:{last_line_of(path, needle)}: {message}")


@pytest.mark.parametrize(
    ("address", "projector"),
    [
        ("192.168.1.50", ("192.168.1.50", 4352)),
        ("192.168.1.50:4353", ("192.168.1.50", 4353)),
        ("fd00::50", ("fd00::50", 4352)),
        ("[fd00::50]:4353", ("fd00::50", 4353)),
    ],
)
def test_screen_power_settings(tmp_path: Path, address: str, projector: tuple[str, int]) -> None:
    (tmp_path / "projector.txt").write_text("gallery-2026\n")
    hours = hours_from(
        tmp_path,
        f'[hours]\nscreen = "pjlink"\npjlink = "{address}"\n'
        'pjlink_password_file = "projector.txt"\n',
    )
    assert hours.screen == ScreenPower("pjlink", projector, "gallery-2026")
    assert "gallery" not in repr(hours), "the password stays out of logs and reprs"
    assert hours_from(tmp_path, '[hours]\nscreen = "dpms"\n').screen == ScreenPower("dpms")
    assert hours_from(tmp_path, "[hours]\n").screen == ScreenPower("none")


def test_a_password_file_that_cannot_be_used_is_named(tmp_path: Path) -> None:
    table = '[hours]\nscreen = "pjlink"\npjlink = "10.0.0.5"\npjlink_password_file = "pw"\n'
    (tmp_path / "pw").mkdir()
    with pytest.raises(UserError, match=f"pjlink_password_file: {tmp_path}/pw: is a folder"):
        hours_from(tmp_path, table)
    (tmp_path / "pw").rmdir()
    (tmp_path / "pw").write_text("\n")
    with pytest.raises(UserError, match=f"pjlink_password_file: {tmp_path}/pw: is empty"):
        hours_from(tmp_path, table)


@pytest.mark.parametrize(
    ("moment", "seconds"),
    [
        ("2026-06-02 18:00:00.700", 0.7),  # closed 0.7 s ago
        ("2026-06-03 10:00:01.500", 1.5),  # opened
        ("2026-06-02 18:00:03", 0.0),  # longer ago than asked about: now
        ("2026-06-02 17:59:59", 0.0),  # no change yet
    ],
)
def test_since_change(museum: OpeningHours, moment: str, seconds: float) -> None:
    assert museum.since_change(datetime.fromisoformat(moment), 2.0) == pytest.approx(seconds)
