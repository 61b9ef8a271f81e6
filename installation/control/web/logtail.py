"""The last log lines, for the web page: a technician on a phone sees what the journal says.

A logging handler on the root logger while the web server runs keeps the last 50 records as
short single lines in a bounded deque, so the page never reads the journal or a file and the
memory stays the same after weeks of logging.
"""

from __future__ import annotations

import logging
import time
from collections import deque

#: Lines kept: what fits on a phone's screen with some scrolling.
MAX_LINES = 50
#: Longest line kept; a long message is cut so one line stays one line on the page.
MAX_CHARS = 400


class LogTail(logging.Handler):
    """Keeps the last ``MAX_LINES`` log records as ``HH:MM:SS LEVEL name: message`` lines.

    A traceback becomes its last line (the exception's type and message): the page is for a
    glance, the journal keeps the whole story.
    """

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__(level)
        self._lines: deque[str] = deque(maxlen=MAX_LINES)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string in some caller must not break logging
            self.handleError(record)
            return
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            message += f" ({type(error).__name__}: {error})"
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = f"{clock} {record.levelname} {record.name}: {message}"
        line = " ".join(line.split())
        self._lines.append(line if len(line) <= MAX_CHARS else line[: MAX_CHARS - 3] + "...")

    def lines(self) -> list[str]:
        """The kept lines, oldest first."""
        with self.lock:
            return list(self._lines)
