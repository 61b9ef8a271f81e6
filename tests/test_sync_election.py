"""Who leads the room (installation.control.sync.election), without sockets or waits: PCs are
``Election`` objects in a simulated room on one made-up clock, each hearing the others' beats
every heartbeat unless the test partitions it. Every rule of the contract is a scenario here:
joining, following, takeover by the lowest rank with a new term, a returning old leader
following, a partitioned PC leading alone without out-ranking the room when it heals."""

from __future__ import annotations

from dataclasses import dataclass, field

from installation.control.sync.election import MAX_MEMBERS, Election, Member, Role
from installation.control.sync.wire import MAX_INT

HEARTBEAT = 0.25
FAILOVER = 2.0


@dataclass
class Room:
    """PCs by rank, beating every ``HEARTBEAT`` on one clock; ``cut`` PCs hear nobody and
    nobody hears them; ``lines`` is every log line the elections returned, in order."""

    now: float = 0.0
    pcs: dict[int, Election] = field(default_factory=dict)
    cut: set[int] = field(default_factory=set)
    lines: list[tuple[int, str]] = field(default_factory=list)

    def join(self, rank: int, instance: str | None = None) -> Election:
        self.pcs[rank] = Election(instance or f"{rank:02x}", rank, FAILOVER, self.now)
        return self.pcs[rank]

    def leave(self, rank: int) -> None:
        del self.pcs[rank]

    def run(self, seconds: float) -> None:
        end = self.now + seconds
        while self.now < end - 1e-9:
            self.now += HEARTBEAT
            for rank, pc in self.pcs.items():
                self._log(rank, pc.tick(self.now))
            for rank, pc in list(self.pcs.items()):
                self._beat(rank, pc)

    def _beat(self, sender_rank: int, sender: Election) -> None:
        if sender_rank in self.cut:
            return
        member = Member(
            sender.instance,
            f"10.0.0.{sender_rank + 1}",
            sender.rank,
            sender.term,
            sender.role is Role.LEADING,
            self.now,
        )
        for rank, pc in self.pcs.items():
            if rank != sender_rank and rank not in self.cut:
                self._log(rank, pc.hear(member))

    def _log(self, rank: int, line: str | None) -> None:
        if line is not None:
            self.lines.append((rank, line))

    def roles(self) -> dict[int, tuple[str, int, int | None]]:
        """Each PC's role, term and the rank of the leader it follows."""
        return {
            rank: (pc.role.value, pc.term, pc.leader.rank if pc.leader else None)
            for rank, pc in self.pcs.items()
        }


def started_room(*ranks: int) -> Room:
    """A room whose PCs all started together and settled."""
    room = Room()
    for rank in ranks:
        room.join(rank)
    room.run(FAILOVER + 1.0)
    return room


def test_a_lone_pc_joins_for_the_failover_time_then_leads_keeping_its_term() -> None:
    room = Room()
    pc = room.join(0)
    room.run(FAILOVER - HEARTBEAT)
    assert pc.role is Role.JOINING and room.lines == []
    room.run(HEARTBEAT)
    assert room.roles() == {0: ("leader", 0, None)}
    assert room.lines == [
        (
            0,
            "sync: leading (rank 0, term 0): no leader heard in 2.0 s; no other PC heard, so "
            "keeping the term",
        )
    ]


def test_a_room_started_together_is_led_by_its_lowest_rank_in_a_new_term() -> None:
    room = started_room(2, 0, 1)
    assert room.roles() == {
        2: ("follower", 1, 0),
        0: ("leader", 1, None),
        1: ("follower", 1, 0),
    }
    assert room.lines == [
        (0, "sync: leading (rank 0, term 1): no leader heard in 2.0 s"),
        (2, "sync: following rank 0 at 10.0.0.1 (term 1)"),
        (1, "sync: following rank 0 at 10.0.0.1 (term 1)"),
    ], "each change logged once"
    room.run(10.0)
    assert len(room.lines) == 3, "nothing changes while the leader beats"
    assert all(pc.members(room.now) == 3 for pc in room.pcs.values())


def test_a_late_joiner_follows_the_leader_it_hears_even_with_a_lower_rank() -> None:
    room = started_room(1, 2)
    late = room.join(0)
    room.run(HEARTBEAT)
    assert late.role is Role.FOLLOWING and late.leader is not None and late.leader.rank == 1
    room.run(10.0)
    assert room.roles()[0] == ("follower", 1, 1), "the leader is not pre-empted"


def test_the_lowest_rank_takes_over_from_a_silent_leader_with_the_next_term() -> None:
    room = started_room(0, 1, 2, 3)
    room.lines.clear()
    room.leave(0)
    room.run(FAILOVER)
    assert room.roles()[1][0] == "follower", "not before failover seconds of silence"
    room.run(HEARTBEAT)
    assert room.roles() == {
        1: ("leader", 2, None),
        2: ("follower", 2, 1),
        3: ("follower", 2, 1),
    }
    assert room.lines[0] == (1, "sync: leading (rank 1, term 2): leader rank 0 silent for 2.2 s")
    assert sorted(room.lines[1:]) == [
        (2, "sync: following rank 1 at 10.0.0.2 (term 2)"),
        (3, "sync: following rank 1 at 10.0.0.2 (term 2)"),
    ]


def test_a_returning_old_leader_follows() -> None:
    room = started_room(0, 1, 2)
    room.leave(0)
    room.run(FAILOVER + 1.0)
    room.join(0)
    room.run(FAILOVER + 1.0)
    assert room.roles() == {
        1: ("leader", 2, None),
        2: ("follower", 2, 1),
        0: ("follower", 2, 1),
    }


def test_a_leader_steps_down_for_a_better_one_and_ignores_a_worse_one() -> None:
    pc = Election("aa", 2, FAILOVER, 0.0)
    assert pc.tick(FAILOVER) is not None and pc.role is Role.LEADING and pc.term == 0
    assert pc.alone
    worse = Member("bb", "10.0.0.9", 3, 0, True, FAILOVER + 0.1, alone=True)
    assert pc.hear(worse) is None and pc.role is Role.LEADING
    same_term_lower_rank = Member("cc", "10.0.0.1", 1, 0, True, FAILOVER + 0.2, alone=True)
    assert pc.hear(same_term_lower_rank) == "sync: following rank 1 at 10.0.0.1 (term 0)"
    higher_term = Member("dd", "10.0.0.7", 7, 1, True, FAILOVER + 0.3, alone=True)
    assert pc.hear(higher_term) == "sync: following rank 7 at 10.0.0.7 (term 1)"
    assert pc.follows("dd") and not pc.follows("cc")


def test_a_leader_alone_follows_any_room_s_leader_whatever_its_term_and_rank() -> None:
    pc = Election("aa", 0, FAILOVER, 0.0)
    pc.hear(Member("bb", "10.0.0.2", 1, 5, False, 0.1))  # a term seen long ago
    pc.tick(FAILOVER + 1.0)
    assert (pc.role, pc.term, pc.alone) == (Role.LEADING, 5, True)
    room = Member("cc", "10.0.0.3", 3, 2, True, FAILOVER + 1.1)
    assert pc.hear(room) == "sync: following rank 3 at 10.0.0.3 (term 2)"
    assert not pc.alone


def test_a_partitioned_follower_leads_alone_in_its_term_and_rejoins_when_healed() -> None:
    room = started_room(0, 1, 2)
    room.lines.clear()
    room.cut.add(2)
    room.run(FAILOVER + 1.0)
    assert room.roles() == {
        0: ("leader", 1, None),
        1: ("follower", 1, 0),
        2: ("leader", 1, None),
    }, "it plays on as a leader of one, but in the room's term"
    assert room.lines == [
        (
            2,
            "sync: leading (rank 2, term 1): leader rank 0 silent for 2.2 s; no other PC "
            "heard, so keeping the term",
        )
    ]
    room.cut.clear()
    room.run(HEARTBEAT)
    assert room.roles()[2] == ("follower", 1, 0)
    assert room.roles()[1] == ("follower", 1, 0), "the room never followed the lone leader"
    assert room.lines[1:] == [(2, "sync: following rank 0 at 10.0.0.1 (term 1)")]


def test_a_partitioned_leader_is_replaced_and_follows_the_new_term_when_healed() -> None:
    room = started_room(0, 1, 2)
    room.cut.add(0)
    room.run(FAILOVER + 1.0)
    assert room.roles() == {
        0: ("leader", 1, None),
        1: ("leader", 2, None),
        2: ("follower", 2, 1),
    }
    room.cut.clear()
    room.run(HEARTBEAT)
    assert room.roles()[0] == ("follower", 2, 1), "the higher term wins over the lower rank"


def test_same_ranks_by_mistake_still_settle_on_one_leader() -> None:
    room = Room()
    room.join(0, "aa")
    room.pcs[10] = Election("bb", 0, FAILOVER, room.now)  # a second PC also set to rank 0
    room.run(FAILOVER + 1.0)
    leaders = [pc.instance for pc in room.pcs.values() if pc.role is Role.LEADING]
    assert leaders == ["aa"]


def test_a_higher_rank_waits_while_a_lower_one_is_heard() -> None:
    pc = Election("cc", 5, FAILOVER, 0.0)
    for step in range(1, 40):
        now = step * HEARTBEAT
        assert pc.hear(Member("aa", "10.0.0.1", 1, 0, False, now)) is None
    assert pc.role is Role.JOINING, "rank 1 is there: it takes over, not rank 5"
    assert pc.tick(39 * HEARTBEAT + FAILOVER + 0.01) is not None, "rank 1 went quiet too"
    assert pc.role is Role.LEADING and pc.term == 0


def test_members_are_counted_within_failover_and_kept_bounded() -> None:
    pc = Election("ff", 0, FAILOVER, 0.0)
    for n in range(MAX_MEMBERS + 50):
        pc.hear(Member(f"{n:x}", "10.0.0.1", 9, 0, False, n * 0.001))
    assert pc.members(1.0) == MAX_MEMBERS + 1, "the oldest were forgotten; itself counted"
    assert pc.members(1.0 + FAILOVER) == 1, "silent for failover: no longer counted"


def test_restart_joins_again_remembering_the_highest_term() -> None:
    room = started_room(0, 1)
    pc = room.pcs[1]
    pc.restart(room.now)
    room.leave(0)
    room.run(FAILOVER + HEARTBEAT)
    assert room.roles()[1] == ("leader", 1, None), "alone: the term it had seen, not 0"


def test_a_leader_that_steps_down_for_one_unheard_here_leaves_the_lowest_rank_to_lead() -> None:
    pc = Election("bb", 1, FAILOVER, 0.0)
    pc.hear(Member("cc", "10.0.0.3", 3, 4, True, 0.1))
    assert pc.role is Role.FOLLOWING
    line = pc.hear(Member("cc", "10.0.0.3", 3, 4, False, 0.2))
    assert line == "sync: leading (rank 1, term 5): leader rank 3 stepped down"


def test_a_partitioned_pc_of_lower_rank_than_the_leader_rejoins_without_taking_the_room() -> None:
    room = started_room(0, 1, 2)
    room.leave(0)
    room.run(FAILOVER + 1.0)
    room.join(0)
    room.run(FAILOVER + 1.0)
    room.cut.add(0)
    room.run(FAILOVER + 1.0)
    assert room.roles()[0] == ("leader", 2, None), "the returned old leader, cut off, leads alone"
    room.cut.clear()
    room.run(FAILOVER + 1.0)
    assert room.roles() == {
        1: ("leader", 2, None),
        2: ("follower", 2, 1),
        0: ("follower", 2, 1),
    }, "its lower rank does not make the room follow the state it played alone"


def test_a_pc_that_led_alone_keeps_the_lead_when_others_join_and_then_leads_the_room() -> None:
    room = Room()
    first = room.join(1)
    room.run(FAILOVER + HEARTBEAT)
    assert first.role is Role.LEADING and first.term == 0
    late = room.join(0)
    room.run(HEARTBEAT)
    assert late.role is Role.FOLLOWING, "the late PC follows what is playing"
    room.run(FAILOVER + 1.0)
    assert room.roles() == {1: ("leader", 1, None), 0: ("follower", 1, 1)}
    assert room.lines[-1] == (
        1,
        "sync: leading (rank 1, term 1): other PCs heard for 2.0 s, no longer alone",
    ), "the follower keeps its leader: no line of its own"


def test_the_term_stays_within_what_a_beat_carries() -> None:
    pc = Election("bb", 1, FAILOVER, 0.0)
    pc.hear(Member("aa", "10.0.0.1", 0, MAX_INT, True, 0.1))
    assert pc.hear(Member("cc", "10.0.0.3", 2, MAX_INT, False, 2.5)) is None, "a follower's beat"
    assert pc.tick(2.5) is not None and pc.role is Role.LEADING
    assert pc.term == MAX_INT, "the largest term heard, not one more"


def test_a_stall_here_is_not_the_leader_s_silence_when_its_beats_are_read_first() -> None:
    pc = Election("bb", 1, FAILOVER, 0.0)
    pc.hear(Member("aa", "10.0.0.1", 0, 1, True, 0.1))
    assert pc.follows("aa")
    # This PC stalled for 3 s; what waited in its socket is read, a follower's beat first.
    assert pc.hear(Member("cc", "10.0.0.3", 2, 1, False, 3.1)) is None
    assert pc.hear(Member("aa", "10.0.0.1", 0, 1, True, 3.1)) is None
    assert pc.tick(3.1) is None and pc.follows("aa")


def test_a_pc_cut_off_just_after_the_others_beat_still_takes_over_alone() -> None:
    """The cut comes between the leader's beat and the next PC's: when the leader has been
    silent for ``failover``, that PC was heard a moment later, but far longer ago than a
    room's heartbeat. Counting it would raise the term and make the room follow the PC cut
    off when it heals."""
    pc = Election("02", 2, FAILOVER, 0.0)
    pc.hear(Member("00", "10.0.0.1", 0, 1, True, 10.0))
    pc.hear(Member("03", "10.0.0.4", 3, 1, False, 10.0 + HEARTBEAT / 2))
    assert pc.tick(10.0 + FAILOVER + HEARTBEAT / 4) is not None
    assert (pc.role, pc.alone, pc.term) == (Role.LEADING, True, 1)
