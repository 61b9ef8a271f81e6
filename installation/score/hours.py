"""Opening hours: when the screen is lit and the engine runs, as a pure function of local time.

A gallery is open on some days and at some hours, with dated exceptions (holidays, a private
view that runs late). Outside those hours the installation goes black and its engine sleeps,
and it comes back by itself. Everything here works on wall-clock times in the system's time
zone, which is what staff mean when they write "10:00-18:00"; it is pure so that tests can ask
about any instant (a Sunday, a daylight-saving night) without waiting for it.

In a show file::

    [hours]
    daily = ["10:00-18:00"]        # every weekday not listed below
    monday = []                    # closed
    thursday = ["10:00-22:00"]
    fade = 3.0                     # seconds to fade out at closing and in at opening

    screen = "pjlink"              # or "cec", "dpms", "none" (the default)
    pjlink = "192.168.1.50"        # the projector; ":PORT" when not 4352
    pjlink_password_file = "projector-password.txt"   # or pjlink_password = "..."

    [hours.dates]
    2026-12-24 = ["10:00-14:00"]
    2026-12-31 = ["20:00-02:00"]   # past midnight: open until 2 on January 1st

A weekday that is neither listed nor covered by ``daily`` is closed. Without an ``[hours]``
table a show plays around the clock. ``screen`` says how the screen or projector is switched
off once the closing fade is black and on again before the opening fade
(installation.service.power does it).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from installation.tomlfile import Section

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY = 24 * 60
DEFAULT_FADE = 3.0
_SPAN = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
_LOOKAHEAD_DAYS = 400
SCREENS = ("none", "cec", "dpms", "pjlink")
PJLINK_PORT = 4352
#: PJLink passwords are at most 32 characters of printable ASCII.
PJLINK_PASSWORD = re.compile(r"[\x21-\x7e]{1,32}")
_PJLINK_KEYS = ("pjlink", "pjlink_password", "pjlink_password_file")


@dataclass(frozen=True)
class Span:
    """Open from ``start`` to ``end``, in minutes after midnight of the day it belongs to.

    ``end`` may pass midnight (up to 48 h), so "20:00-02:00" stays one span of one day, which
    is how staff think of a late opening.
    """

    start: int
    end: int


Spans = tuple[Span, ...]


@dataclass(frozen=True)
class ScreenPower:
    """How the screen is switched with the opening hours: ``kind`` is one of ``SCREENS``;
    a PJLink projector has its ``projector`` (host, port) and maybe a ``password``."""

    kind: str = "none"
    projector: tuple[str, int] | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class OpeningHours:
    """A weekly pattern (Monday first) and dated exceptions that replace a whole day."""

    weekly: tuple[Spans, ...] = ((Span(0, DAY),),) * 7
    dates: Mapping[date, Spans] = field(default_factory=dict)
    fade: float = DEFAULT_FADE
    screen: ScreenPower = ScreenPower()

    @property
    def always_open(self) -> bool:
        return not self.dates and all(spans == (Span(0, DAY),) for spans in self.weekly)

    def spans_on(self, day: date) -> Spans:
        return self.dates.get(day, self.weekly[day.weekday()])

    def is_open(self, moment: datetime) -> bool:
        """Whether ``moment`` (local wall-clock time) is within opening hours."""
        minute = moment.hour * 60 + moment.minute + moment.second / 60
        today = moment.date()
        if any(span.start <= minute < span.end for span in self.spans_on(today)):
            return True
        yesterday = self.spans_on(today - timedelta(days=1))
        return any(minute + DAY < span.end for span in yesterday)

    def since_change(self, moment: datetime, within: float) -> float:
        """Seconds since ``is_open`` last changed before ``moment``, where that was at most
        ``within`` seconds ago, else 0: a change noticed late (the clock is read once a
        second) is faded from the minute it happened, so that the PCs of a room, whose
        clocks agree, fade on the same frames."""
        earlier = moment.replace(tzinfo=None) - timedelta(seconds=within)
        change = self.next_change(earlier)
        if change is None or change > moment.replace(tzinfo=None):
            return 0.0
        return (moment.replace(tzinfo=None) - change).total_seconds()

    def next_change(self, moment: datetime) -> datetime | None:
        """The next instant after ``moment`` at which ``is_open`` changes, as naive wall-clock
        time; None when it never changes (always open, or closed for good)."""
        if self.always_open:
            return None
        now = moment.replace(tzinfo=None)
        state = self.is_open(now)
        start = now.date() - timedelta(days=1)
        for offset in range(_LOOKAHEAD_DAYS):
            day = start + timedelta(days=offset)
            midnight = datetime.combine(day, datetime.min.time())
            edges = sorted({m for span in self.spans_on(day) for m in (span.start, span.end)})
            for minutes in edges:
                instant = midnight + timedelta(minutes=minutes)
                if instant > now and self.is_open(instant) != state:
                    return instant
        return None


ALWAYS_OPEN = OpeningHours()


def opening_hours(root: Section) -> OpeningHours:
    """The ``[hours]`` table of a show file's root, or around the clock when it has none."""
    return _parse(root.table("hours")) if root.has("hours") else ALWAYS_OPEN


def _parse(section: Section) -> OpeningHours:
    daily = _spans(section, "daily") if section.has("daily") else ()
    weekly = tuple(_spans(section, name) if section.has(name) else daily for name in WEEKDAYS)
    dates: dict[date, Spans] = {}
    if section.has("dates"):
        table = section.table("dates")
        for key in table.data:
            try:
                day = date.fromisoformat(key)
            except ValueError:
                raise table.error(key, "expected a date such as 2026-12-24") from None
            dates[day] = _spans(table, key)
        table.finish()
    fade = section.number("fade", 0.0, 600.0, DEFAULT_FADE, unit="seconds")
    screen = _screen(section)
    section.finish()
    return OpeningHours(weekly, dates, fade, screen)


def _screen(section: Section) -> ScreenPower:
    kind = section.choice("screen", SCREENS, "none")
    if kind != "pjlink":
        for key in _PJLINK_KEYS:
            if section.has(key):
                raise section.error(key, f'used only with screen = "pjlink" (screen is "{kind}")')
        return ScreenPower(kind)
    if not section.has("pjlink"):
        raise section.missing(
            "pjlink", str, 'the projector\'s address, such as pjlink = "192.168.1.50"'
        )
    password = section.secret("pjlink_password", "pjlink_password_file")
    if password is not None and not PJLINK_PASSWORD.fullmatch(password):
        key = "pjlink_password_file" if section.has("pjlink_password_file") else "pjlink_password"
        raise section.error(
            key, "a PJLink password is 1 to 32 printable ASCII characters, without spaces"
        )
    return ScreenPower(kind, _projector(section), password)


def _projector(section: Section) -> tuple[str, int]:
    """``pjlink``: "HOST", "HOST:PORT" or "[IPv6]:PORT", with HOST a literal IP address (a
    name would need a resolver that may hang or fail at closing time)."""
    text = section.get("pjlink", str).strip()
    host, port = text, str(PJLINK_PORT)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") if rest else port
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        number = -1
    if not 0 < number < 65536:
        raise section.error(
            "pjlink",
            f'expected an IP address with an optional port, such as "192.168.1.50" or '
            f'"192.168.1.50:4352", got {text!r}',
        )
    return host, number


def _spans(section: Section, key: str) -> Spans:
    """A list of "HH:MM-HH:MM" strings; an empty list is a closed day."""
    values = section.get(key, list)
    spans = []
    for value in values:
        match = _SPAN.match(value.strip()) if isinstance(value, str) else None
        span = _span(*(int(g) for g in match.groups())) if match else None
        if span is None:
            raise section.error(
                key, f'expected times such as "10:00-18:00" (or [] when closed), got {value!r}'
            )
        spans.append(span)
    return tuple(spans)


def _span(start_hour: int, start_minute: int, end_hour: int, end_minute: int) -> Span | None:
    """A span from clock times, or None when they are not times of day or describe nothing.

    An end at or before the start means the next day ("20:00-02:00"); "24:00" ends at midnight.
    """
    if start_hour > 23 or start_minute > 59 or end_minute > 59 or end_hour > 24:
        return None
    if end_hour == 24 and end_minute > 0:
        return None
    start = start_hour * 60 + start_minute
    end = end_hour * 60 + end_minute
    if end == start:
        return None
    return Span(start, end if end > start else end + DAY)
