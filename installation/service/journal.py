"""Where log lines go: the systemd journal when systemd runs us, stderr otherwise.

Under systemd, stderr already ends up in the journal, but as plain text at one priority;
journald's own protocol keeps each record's level, so ``journalctl -p warning`` finds the
warnings and errors of a run that lasted weeks. systemd tells a service that its stderr is the
journal by setting ``JOURNAL_STREAM`` to the device and inode of that stream (systemd.exec(5)).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

IDENTIFIER = "installation"
CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# journald stamps every line with the time (and, for its own protocol, the level) itself.
JOURNAL_FORMAT = "%(name)s: %(message)s"
JOURNAL_STREAM_FORMAT = "%(levelname)s %(name)s: %(message)s"


def configure_logging(verbose: bool, environ: Mapping[str, str] = os.environ) -> None:
    """Send the root logger's records to the journal or to stderr, at INFO (DEBUG if verbose)."""
    handler: logging.Handler | None = None
    if stderr_is_journal(environ):
        handler = journal_handler()
        text_format = JOURNAL_FORMAT if handler else JOURNAL_STREAM_FORMAT
    else:
        text_format = CONSOLE_FORMAT
    handler = handler or logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(text_format))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])


def stderr_is_journal(environ: Mapping[str, str]) -> bool:
    device, _, inode = environ.get("JOURNAL_STREAM", "").partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        stat = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (stat.st_dev, stat.st_ino) == (int(device), int(inode))


def journal_handler() -> logging.Handler | None:
    """A handler speaking journald's protocol, or None without systemd-python."""
    try:
        from systemd.journal import JournalHandler
    except ImportError:
        return None
    return JournalHandler(SYSLOG_IDENTIFIER=IDENTIFIER)
