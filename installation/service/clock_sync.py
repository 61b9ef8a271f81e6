"""What chrony says about this PC's clock, for ``installation status`` on a PC in a room.

PCs in lockstep derive show time from the wall clock, so a screen is only as close to the
others as its clock is to theirs. chrony keeps the clocks together (deploy/setup.sh
--sync-server / --sync-client, docs/sync.md); this asks it how well it does, the way a
technician would: ``chronyc -c tracking`` (chrony's own answer, in its machine-readable form),
bounded in time, so a stuck chronyd cannot hang ``installation status``. The show itself never
asks: it trusts the clock and the display loop never waits on a program.
"""

from __future__ import annotations

from dataclasses import dataclass

from installation.service.power import PowerFailed, run_command

#: Seconds chronyc may take; it answers in milliseconds when chronyd runs.
TIMEOUT = 2.0
#: The reference id chrony reports while it serves its own clock (``local`` in chrony.conf).
LOCAL_REFERENCE = "7F7F0101"


@dataclass(frozen=True)
class Tracking:
    """chrony's view of the clock. ``offset``: seconds this clock is ahead of the time chrony
    follows (negative: behind), what is left to correct now; ``rms_offset``: the typical size
    of the offsets it measured lately."""

    synchronised: bool
    source: str
    stratum: int
    offset: float
    rms_offset: float
    leap: str


@dataclass(frozen=True)
class Unavailable:
    """No answer from chrony, and why, in one line."""

    reason: str


def read_tracking(host: str | None = None) -> Tracking | Unavailable:
    """Ask chronyd through ``chronyc`` (``host``: its command socket or address, default this
    PC's chronyd). Never raises: whatever goes wrong is the answer."""
    argv = ["chronyc", "-c", "-n", *(["-h", host] if host else []), "tracking"]
    try:
        # power.run_command is the project's bounded way to run a program and word its failure.
        output = run_command(argv, timeout=TIMEOUT)
    except PowerFailed as exc:
        return Unavailable(f"no chrony: {exc}" if exc.kind == "missing" else f"no answer: {exc}")
    return parse_tracking(output)


def parse_tracking(output: str) -> Tracking | Unavailable:
    """One line of ``chronyc -c tracking``: reference id, its name or address, stratum,
    reference time, the correction still to apply (positive: the clock is slow), the last
    offset, the RMS offset, four frequency and delay figures, the update interval and the
    leap status (``Not synchronised`` until chrony follows a source)."""
    unexpected = Unavailable(f"chronyc said something unexpected: {output.strip()[:80]!r}")
    fields = output.strip().split(",")
    if len(fields) != 14:
        return unexpected
    reference, name, stratum, _, correction, _, rms, *_, leap = fields
    try:
        stratum_number = int(stratum)
        offset, rms_offset = -float(correction), float(rms)
    except ValueError:
        return unexpected
    source = "this PC's own clock" if reference == LOCAL_REFERENCE else name or reference
    synchronised = leap != "Not synchronised" and stratum_number > 0
    return Tracking(synchronised, source, stratum_number, offset, rms_offset, leap)


def describe(answer: Tracking | Unavailable) -> str:
    """The ``clock`` line of ``installation status``."""
    if isinstance(answer, Unavailable):
        return answer.reason
    if not answer.synchronised:
        return "NOT SYNCHRONISED (chrony follows no source yet; chronyc sources says why)"
    ahead = "ahead" if answer.offset >= 0 else "behind"
    return (
        f"synchronised to {answer.source} (stratum {answer.stratum}), "
        f"{_milliseconds(abs(answer.offset))} {ahead} (rms {_milliseconds(answer.rms_offset)})"
    )


def _milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"
