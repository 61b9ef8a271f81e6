"""The health record of a running show, and ``installation status``, which reads it back.

The running show rewrites a small JSON file every couple of seconds; ``installation status``
reads it from a shell on the machine. A file rather than a socket: nothing listens on the
kiosk's network, it needs no protocol, and it still answers when the show is stuck, because
a record that stopped being updated is itself the answer. Under systemd the file lives in the
service's RuntimeDirectory (/run/installation), which systemd keeps across automatic restarts,
so the next instance can count restarts and tell what the last one died of.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from installation.errors import UserError
from installation.files import write_atomic
from installation.service.clock_sync import Tracking, Unavailable, describe

STATUS_NAME = "status.json"
SERVICE_DIR = Path("/run/installation")
STALE_AFTER = 10.0

Record = dict[str, Any]
#: What ``installation status`` reads; a record without them is from another version.
_KEYS = (
    "state",
    "show",
    "title",
    "backend",
    "scene",
    "updated",
    "uptime",
    "fps",
    "frames",
    "hours",
    "restarts",
    "last_error",
)


def status_file(environ: Mapping[str, str] = os.environ) -> Path:
    """Where this process writes its record: systemd's RuntimeDirectory when it has one,
    else the user's runtime directory, else a per-user folder in the temporary directory."""
    runtime = environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime:
        return Path(runtime) / STATUS_NAME
    user_runtime = environ.get("XDG_RUNTIME_DIR")
    if user_runtime:
        return Path(user_runtime) / "installation" / STATUS_NAME
    return Path(tempfile.gettempdir()) / f"installation-{os.getuid()}" / STATUS_NAME


def kept_by_systemd(path: Path, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ``path`` is in the RuntimeDirectory systemd made for this service, and so a
    record found there at start was left by the instance systemd restarted us after."""
    runtime = environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return bool(runtime) and path.parent == Path(runtime)


def find_status_file(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The record ``installation status`` should read: the service's if there is one (staff
    run the command as themselves, not as the service's user), else this user's own."""
    for path in (SERVICE_DIR / STATUS_NAME, status_file(environ)):
        if path.is_file():
            return path
    return None


def write_status(path: Path, record: Record) -> None:
    """Replace the record atomically, readable by everyone (it holds nothing secret and
    staff read it as themselves)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(record, indent=1).encode(), mode=0o644)


def read_status(path: Path) -> Record:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no status file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot read the status: {exc}") from None
    if not isinstance(record, dict) or not _is_pid(record.get("pid")):
        raise UserError(f"{path}: not a status file of this program")
    missing = [key for key in _KEYS if key not in record]
    if missing:
        raise UserError(f"{path}: a status file of another version (no {', '.join(missing)})")
    return record


def _is_pid(value: object) -> bool:
    """A process id that ``os.kill`` may be asked about: 0 and negative ids name process
    groups (-1 is every process), and a huge one overflows."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, and owned by another user (the service's)
    return True


def is_current(record: Record, now: float) -> bool:
    """Whether the record comes from a live process that still updates it."""
    return now - record.get("updated", 0) <= STALE_AFTER and process_exists(record["pid"])


def format_status(
    record: Record, now: float | None = None, clock: Tracking | Unavailable | None = None
) -> str:
    """The record as a short report for staff; ``clock``: what chrony said about this PC's
    clock, for a show in a room (record["sync"]), where the clock decides the frame."""
    now = time.time() if now is None else now
    age = now - record.get("updated", 0)
    pid = record["pid"]
    current = is_current(record, now)
    osc = record.get("osc") if current else None  # a show that ended listens to nothing
    web = record.get("web") if current else None
    sync = record.get("sync") if current else None  # nor follows anyone
    if current:
        headline = f"installation: {record['state']}, pid {pid}, up {duration(record['uptime'])}"
        if osc and osc["state"] == "not listening":
            headline += ", OSC NOT LISTENING"
        if sync and clock and not (isinstance(clock, Tracking) and clock.synchronised):
            headline += ", CLOCK NOT SYNCHRONISED"
    elif process_exists(pid):
        headline = (
            f"installation: NOT RESPONDING: pid {pid} exists but has not updated its status "
            f"for {duration(age)} (last state: {record['state']})"
        )
    else:
        headline = (
            f"installation: not running; pid {pid} ended about {duration(age)} ago "
            f"(last state: {record['state']})"
        )
    fps = record["fps"]
    rates = (
        f"{fps['shown']:.1f} shown (target {fps['target']:g}), "
        f"{fps['generated']:.1f} generated on {record['backend']}{_stages(record)}"
    )
    frames = record["frames"]
    shown = frames["shown"]
    dropped = frames["dropped"]
    share = f" ({100 * dropped / (shown + dropped):.2f}%)" if shown + dropped else ""
    rows = [
        ("show", f"{record['title']} ({record['show']})"),
        ("scene", record["scene"]),
        ("frames/s", rates if current else f"- (ran on {record['backend']})"),
        (
            "frames",
            f"{shown} shown, {dropped} dropped{share}, {frames['skipped']} skipped by inference",
        ),
        ("hours", _hours(record["hours"])),
        *([("osc", _osc(osc))] if osc else []),
        *([("web", _web(web))] if web and web["state"] != "off" else []),
        *([("sync", _sync(sync))] if sync else []),
        *([("clock", describe(clock))] if clock else []),
        (
            "restarts",
            f"{record['restarts']['worker']} of the inference worker, "
            f"{record['restarts']['process']} of the program",
        ),
        ("last error", _error(record.get("last_error"))),
        ("updated", f"{duration(age)} ago"),
    ]
    return "\n".join([headline, *(f"  {name:<11} {value}" for name, value in rows)])


def _stages(record: Record) -> str:
    """ ", 1 of 2 stages (adaptive)" where the record says how many stages frames use."""
    stages = record.get("stages")
    if not stages:
        return ""
    return f", {stages['used']} of {stages['of']} stages ({stages['quality']})"


def _osc(osc: Record) -> str:
    if osc["state"] == "off":
        return "off (osc.enabled = false in the show)"
    if osc["state"] == "listening":
        return f"listening on {osc['address']}"
    return f"NOT LISTENING on {osc['address']} (port in use? the show keeps trying)"


def _web(web: Record) -> str:
    if web["state"] == "listening":
        return f"listening on http://{web['address']}"
    return f"NOT LISTENING on {web['address']} (port in use? the show keeps trying)"


def _sync(sync: Record) -> str:
    """The PC's part in the room: whom it follows, or that it leads (docs/sync.md)."""
    group = f"group {sync['group']}"
    members = f"{sync['members']} member{'s' if sync['members'] != 1 else ''}"
    leader = sync.get("leader")
    if sync["role"] == "leader":
        return f"leader (rank {sync['rank']}), term {sync['term']}, {members}, {group}"
    if leader is None:
        return f"{sync['role']} (rank {sync['rank']}), no leader heard yet, {members}, {group}"
    role = "follower of" if sync["role"] == "follower" else f"{sync['role']}, following"
    return (
        f"{role} rank {leader['rank']} at {leader['address']}, "
        f"term {sync['term']}, {members}, {group}"
    )


def _hours(hours: Record) -> str:
    state = "open" if hours["open"] else "closed"
    change = hours.get("next_change")
    if change is None:
        return state + (" around the clock" if hours["open"] else " until further notice")
    when = datetime.fromisoformat(change)
    verb = "closes" if hours["open"] else "opens"
    return f"{state}, {verb} {when:%a %Y-%m-%d %H:%M}"


def _error(error: Record | None) -> str:
    if not error:
        return "none"
    return f"{datetime.fromtimestamp(error['at']):%Y-%m-%d %H:%M:%S}  {error['message']}"


def duration(seconds: float) -> str:
    """``3 d 04:12:09`` or ``12:09`` or ``9 s``: short, and readable at a glance."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours:02}:{minutes:02}:{secs:02}"
    if hours:
        return f"{hours}:{minutes:02}:{secs:02}"
    if minutes:
        return f"{minutes}:{secs:02} min"
    return f"{secs} s"
