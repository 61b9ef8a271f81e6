"""Noticing that the bundle a running show loaded has changed on disk.

A show holds its models in memory and plays on whatever happens to the files, but the next
start (after a crash, a power cut, the morning's reboot) reads them again: a file replaced,
truncated or removed weeks earlier fails that start, or plays other faces, long after whoever
touched it has gone. So the reload thread looks at the files now and then and says so at once,
as an error (which also lands in the health record's ``last_error`` for ``installation
status``). Looking is cheap: a stat per file, and a sha256 only when the size or modification
time changed (and then stood still for one look); each change is reported once, and a file put
back is reported as back.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from installation.engine.bundle import MANIFEST, Bundle, sha256_of
from installation.errors import reason

log = logging.getLogger(__name__)

#: Seconds between looks: a change is news for hours, and a stat of a few files costs nothing.
INTERVAL = 30.0


@dataclass
class _Watched:
    path: Path
    #: The sha256 of the file as the show loaded it.
    loaded: str
    #: (size, mtime_ns, inode) at the last look; None while missing.
    stat: tuple[int, int, int] | None
    #: What the last judgement found: the file's sha256, or why there is none ("removed",
    #: "unreadable (...)").
    found: str
    #: Whether ``found`` is for ``stat``: False until a change has stood still for a look.
    settled: bool


class BundleWatch:
    """The files of one loaded bundle (manifest and models) and what they held at load."""

    def __init__(self, bundle: Bundle) -> None:
        """``bundle`` was just checked, so its model files match their sha256 in the manifest;
        the manifest itself is taken as it is now."""
        manifest = bundle.path / MANIFEST
        files = [(manifest, _content(manifest))]
        files += [(stage.path, stage.sha256) for stage in bundle.stages]
        if bundle.w is not None:
            files += [(bundle.w.mapping, bundle.w.mapping_sha256)]
            files += [(bundle.w.average, bundle.w.average_sha256)]
        self.name = bundle.name
        # Not settled: the first look hashes every file once, so that a change between the
        # load and the watch is not taken for what was loaded.
        self.files = [_Watched(path, sha, _stat(path), sha, False) for path, sha in files]

    def look(self) -> list[str]:
        """Compare the files with what was loaded; log and return each new difference.

        A file is judged once its size and time stood still since the previous look, so a
        copy in progress is reported once, as what it became, not as each state on the way.
        """
        news = []
        for watched in self.files:
            stat = _stat(watched.path)
            if stat != watched.stat:
                watched.stat, watched.settled = stat, False
                continue
            if watched.settled:
                continue
            watched.settled = True
            found = _content(watched.path) if stat is not None else "removed"
            if found == watched.found:
                continue
            watched.found = found
            if found == watched.loaded:
                log.info("bundle %s: %s is back as the show loaded it", self.name, watched.path)
                continue
            what = f"changed (sha256 now {found[:12]}...)" if len(found) == 64 else found
            news.append(
                f"{watched.path}: {what} since the show loaded bundle {self.name}; the show "
                f"plays on with what it loaded, the next start reads the files on disk"
            )
            log.error("%s", news[-1])
        return news


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


def _content(path: Path) -> str:
    try:
        return sha256_of(path)
    except OSError as exc:
        return f"unreadable ({reason(exc)})"
