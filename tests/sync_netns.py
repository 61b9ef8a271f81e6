"""A room of three PCs in one process: run by tests/test_sync_peer.py inside a private network
namespace (``unshare -rn``, multicast on its own loopback), so no datagram leaves it.

Each PC is a real ``SyncPeer`` with a real multicast socket, a real ``Conductor`` of the
show given (the default bundle's manifest, no model loaded) and its own ``SharedClock``. The
scenario starts them together, cues the leader, refuses a follower's own control, partitions
one with the drop hook and heals it, stops the leader, and starts it again; what each step
showed is printed as one JSON object for the test to judge. Show times are compared, never
wall times, so the verdicts do not depend on the speed of the machine.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from installation.control.sync.clock import SharedClock
from installation.control.sync.identity import show_identity
from installation.control.sync.multicast import DROP_ENV
from installation.control.sync.peer import SyncPeer
from installation.control.sync.wire import Beat, encode_beat
from installation.engine.bundle import load_bundle
from installation.errors import UserError
from installation.score.conductor import Conductor
from installation.score.show import load_show

#: Liveness only: how long a step may take before the scenario gives up on it.
PATIENCE = 30.0


@dataclass
class Pc:
    peer: SyncPeer
    conductor: Conductor
    clock: SharedClock
    #: (this PC's show time, the show time from which frames were dropped) of each cut.
    cuts: list[tuple[float, float]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return self.peer.describe()

    def pictures(self, times: list[float]) -> list[str]:
        """What this PC shows at each show time, as bytes in hex (for one JSON object)."""
        snapshot = self.conductor.snapshot()
        return [snapshot.at(t).picture(t).hex() for t in times]


class Room:
    def __init__(self, show_path: Path, work: Path) -> None:
        self.show = load_show(show_path)
        self.bundle = load_bundle(self.show.bundle)
        self.identity = show_identity(self.show, self.bundle)
        assert self.show.sync is not None
        self.settings = self.show.sync
        self.work = work

    def pc(self, rank: int, drop: Path | None = None, **settings: Any) -> Pc:
        """A started PC of ``rank``; ``drop``: its drop-hook file."""
        show, bundle = self.show, self.bundle
        conductor = Conductor(
            show, bundle.latent_size, bundle.latent_distribution, delay=self.settings.delay
        )
        clock = SharedClock(offset=0.0)
        conductor.start(clock)
        if drop is not None:
            os.environ[DROP_ENV] = str(drop)  # read as the peer is made, on this thread
        try:
            peer = SyncPeer(
                replace(self.settings, rank=rank, **settings), conductor, clock, self.identity
            )
        finally:
            os.environ.pop(DROP_ENV, None)
        pc = Pc(peer, conductor, clock)
        conductor.on_cut(lambda t: pc.cuts.append((clock(), t)))
        peer.start()
        return pc


def wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def role(pc: Pc, wanted: str, leader_rank: int | None = None) -> Callable[[], bool]:
    def check() -> bool:
        record = pc.describe()
        leader = record["leader"]
        return record["role"] == wanted and (
            leader_rank is None or (leader is not None and leader["rank"] == leader_rank)
        )

    return check


def ahead(pc: Pc) -> list[float]:
    """Show times from now to 20 s ahead, where pictures are compared."""
    now = pc.clock()
    return [now + 0.173 * k for k in range(116)]


def agree(model: Pc, *pcs: Pc) -> bool:
    """Whether ``pcs`` show what ``model`` shows from now on."""
    times = ahead(model)
    pictures = model.pictures(times)
    return all(pc.pictures(times) == pictures for pc in pcs)


def cue(leader: Pc, followers: list[Pc], scene: int) -> dict[str, Any]:
    """Cue ``scene`` on the leader; when each follower had it, in its own show time, and
    what each shows just before and from the time the cue takes effect."""
    seen = [len(f.cuts) for f in followers]
    leader.conductor.go_to_scene(scene)
    at = leader.conductor.snapshot().pending[-1][0]
    for f, count in zip(followers, seen, strict=True):
        wait(lambda f=f, count=count: len(f.cuts) > count, "the cue on a follower")
    return {
        "at": at,
        "received": [f.cuts[count] for f, count in zip(followers, seen, strict=True)],
        "before": [pc.conductor.scene_at(at - 0.001)[0] for pc in (leader, *followers)],
        "from": [pc.conductor.scene_at(at)[0] for pc in (leader, *followers)],
    }


class Lines(logging.Handler):
    """Every line the peers log, in order."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def main() -> None:
    lines = Lines()
    logging.getLogger("installation.control.sync").addHandler(lines)
    logging.getLogger("installation.control.sync").setLevel(logging.INFO)
    room = Room(Path(sys.argv[1]), Path(sys.argv[2]))
    results: dict[str, Any] = {"identity": room.identity}
    drop = room.work / "unplugged"
    pcs = [room.pc(0), room.pc(1), room.pc(2, drop=drop)]
    first, second, third = pcs

    # All start together: the lowest rank leads, in a new term; all share its epoch.
    wait(role(first, "leader"), "rank 0 to lead")
    for pc in pcs[1:]:
        wait(role(pc, "follower", 0), "the others to follow rank 0")
    wait(lambda: agree(first, *pcs), "one picture")
    results["started"] = [pc.describe() for pc in pcs]
    results["epochs"] = [pc.clock.epoch for pc in pcs]
    results["following"] = [pc.conductor.following for pc in pcs]
    try:
        second.conductor.go_to_scene(3)
        results["refused"] = None
    except UserError as exc:
        results["refused"] = str(exc)

    results["cue"] = cue(first, [second, third], 2)
    results["cue agrees"] = [agree(first, pc) for pc in pcs]

    # Bad datagrams on the group: counted and logged, never followed.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as noise:
        target = (room.settings.group, room.settings.port)
        noise.sendto(b"\x00not osc at all", target)
        other = Beat("ab" * 32, "ffff", 0, 99, True, 1.0, 1, b"")
        noise.sendto(encode_beat(other), target)
    wait(lambda: all(pc.peer.stats.malformed and pc.peer.stats.other_show for pc in pcs), "noise")
    results["noise"] = [asdict(pc.peer.stats) for pc in pcs]
    results["roles after noise"] = [pc.describe()["role"] for pc in pcs]

    # Rank 2 unplugged: it plays on, leading alone in the room's term; healed, it follows.
    drop.touch()
    wait(role(third, "leader"), "the unplugged PC to lead alone")
    results["unplugged"] = third.describe()
    results["unplugged cue"] = cue(first, [second], 3)
    results["unplugged missed it"] = third.conductor.scene_at(results["unplugged cue"]["at"])[0]
    drop.unlink()
    wait(role(third, "follower", 0), "the healed PC to follow rank 0 again")
    wait(lambda: agree(first, third), "the healed PC's picture")
    results["healed"] = [pc.describe() for pc in pcs]

    # The leader stops: rank 1 takes over in the next term, and nothing on screen jumps: from
    # the takeover on, both show what the old leader's last state said they would.
    cuts = [len(second.cuts), len(third.cuts)]
    first.peer.stop()
    results["stopped in time"] = not first.peer.running
    wait(role(second, "leader"), "rank 1 to take over")
    wait(role(third, "follower", 1), "rank 2 to follow rank 1")
    results["takeover"] = [second.describe(), third.describe()]
    results["takeover same picture"] = [agree(first, pc) for pc in (second, third)]
    results["takeover cuts"] = [len(second.cuts) - cuts[0], len(third.cuts) - cuts[1]]
    results["new leader steers"] = cue(second, [third], 1)

    # The old leader returns (a new process: its own epoch) and follows.
    returned = room.pc(0)
    wait(role(returned, "follower", 1), "the returning old leader to follow rank 1")
    wait(lambda: agree(second, returned), "its picture")
    results["returned"] = returned.describe()
    results["returned epoch"] = [returned.clock.epoch, second.clock.epoch]

    # A reload: the same show takes the leader's state again; another show leaves the room.
    installed = returned.peer.stats.installed
    returned.peer.reidentify(room.identity)
    wait(lambda: returned.peer.stats.installed > installed, "the state taken again")
    results["reloaded"] = returned.describe()
    returned.peer.reidentify("f" * 64)
    results["other show"] = [returned.describe()["role"], returned.conductor.following]
    wait(role(returned, "leader"), "the PC of another show to lead alone")
    results["other show leads"] = returned.describe()
    results["room unmoved"] = [pc.describe()["role"] for pc in (second, third)]

    # A PC whose allow list leaves the room out hears only refusals.
    outsider = room.pc(9, allow=(ipaddress.ip_network("10.9.0.0/24"),))
    wait(lambda: outsider.peer.stats.refused >= 3, "the outsider's refusals")
    results["outsider"] = asdict(outsider.peer.stats)

    for pc in (second, third, returned, outsider):
        pc.peer.stop()
    results["running"] = [pc.peer.running for pc in [*pcs, returned, outsider]]
    results["log"] = lines.lines
    print(json.dumps(results))


if __name__ == "__main__":
    main()
