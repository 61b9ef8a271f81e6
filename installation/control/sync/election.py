"""Who leads the room, decided by each PC from the heartbeats it hears (no vote, no server).

Pure: it is told what was heard and what time it is (monotonic seconds) and says what role
this PC plays, so every rule is tested without a socket or a wait. The rules:

* A PC starts JOINING for ``failover`` seconds and follows any leader it hears.
* The best leader is one that leads a room (not one alone, below), then the one with the
  highest term, then the lowest rank. Everyone follows the best leader heard within
  ``failover``; a leader that hears a better one steps down and follows it, which is how a
  returning old leader (or the lone leader of a healed partition) rejoins the room.
* When no leader was heard for ``failover`` seconds (or the join window ends without one),
  the PC with the lowest rank among those heard within ``failover``, itself included, takes
  over: with term = the highest term seen + 1 when it heard another PC within half of
  ``failover``, so that the room follows it; with the same term otherwise. The PCs of a room
  whose leader died were heard a heartbeat ago, while a PC cut off heard its last ones about
  as long ago as the leader (``failover`` is at least four heartbeats).
* A PC that took over hearing nobody leads *alone* (a partitioned PC plays on): any leader of
  a room out-ranks it, whatever their terms and ranks, so that when the partition heals it
  takes the room's state and not the reverse (even with a lower rank than the room's
  leader). PCs that join it follow it; once it has heard others for ``failover`` seconds
  without a better leader, it leads the room they make, in the next term.

Ties (two PCs given the same rank by mistake) go to the lower instance id, so that a room
never settles with two leaders.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from installation.control.sync.wire import MAX_INT

#: Members remembered at most: a room has a few dozen PCs; beyond this, stale ones go first.
MAX_MEMBERS = 256


class Role(Enum):
    JOINING = "joining"
    FOLLOWING = "follower"
    LEADING = "leader"


@dataclass(frozen=True)
class Member:
    """Another PC as its last heartbeat described it, ``heard`` at that monotonic time."""

    instance: str
    address: str
    rank: int
    term: int
    leading: bool
    heard: float
    alone: bool = False

    def standing(self) -> tuple[bool, int, int, str]:
        """Sorts the better leader first: a room's before one alone, then higher term, then
        lower rank, then lower id."""
        return (self.alone, -self.term, self.rank, self.instance)


class Election:
    """This PC's view of the room; not thread-safe (the peer holds its lock around it)."""

    def __init__(self, instance: str, rank: int, failover: float, now: float) -> None:
        self.instance = instance
        self.rank = rank
        self.failover = failover
        self.role = Role.JOINING
        self.term = 0
        #: Leading without having heard another PC (see the module's rules).
        self.alone = False
        #: The leader followed (its last beat), None while leading or before one was heard.
        self.leader: Member | None = None
        #: When joining: when it began; when leading alone: the last time nobody was heard.
        self._started = now
        self._highest_term = 0
        self._members: dict[str, Member] = {}

    def restart(self, now: float) -> None:
        """Join again from scratch (the show changed), remembering the highest term seen."""
        self.role = Role.JOINING
        self.alone = False
        self.leader = None
        self._started = now
        self._members.clear()

    def hear(self, member: Member) -> str | None:
        """Take in a beat of another PC; the log line when this PC's role or leader changed.
        The rules are applied at once to a leader's beat (or the followed leader's, which may
        have stepped down); a follower's waits for ``tick``, which judges silence only after
        the peer has read every beat waiting, so that a stall of this PC, with the leader's
        beats still unread, is not taken for the leader's silence."""
        self._members.pop(member.instance, None)
        self._members[member.instance] = member
        if len(self._members) > MAX_MEMBERS:
            del self._members[next(iter(self._members))]
        self._highest_term = max(self._highest_term, member.term)
        followed = self.leader is not None and member.instance == self.leader.instance
        if followed:
            self.leader = member
            self.term = member.term
        return self.tick(member.heard) if followed or member.leading else None

    def tick(self, now: float) -> str | None:
        """Apply the rules at ``now``; the log line when the role or the leader changed."""
        heard = self._heard(now)
        leaders = [m for m in heard if m.leading]
        best = min(leaders, key=Member.standing, default=None)
        if self.role is Role.LEADING:
            if best is not None and best.standing() < self._standing():
                return self._follow(best)
            if self.alone and heard and now - self._started >= self.failover:
                return self._take_over(now, True)
            if self.alone and not heard:
                self._started = now
            return None
        if best is not None:
            if self.leader is not None and best.instance == self.leader.instance:
                return None
            return self._follow(best)
        if self.role is Role.JOINING and now - self._started < self.failover:
            return None
        if any((m.rank, m.instance) < (self.rank, self.instance) for m in heard):
            return None  # a PC of lower rank hears the same silence and takes over
        recent = any(now - m.heard <= self.failover / 2 for m in heard)
        return self._take_over(now, recent)

    def follows(self, instance: str) -> bool:
        """Whether this PC follows the PC of ``instance`` now."""
        leader = self.leader
        return self.role is Role.FOLLOWING and leader is not None and leader.instance == instance

    def members(self, now: float) -> int:
        """PCs heard within ``failover``, this one included."""
        return len(self._heard(now)) + 1

    def _heard(self, now: float) -> list[Member]:
        return [m for m in self._members.values() if now - m.heard <= self.failover]

    def _standing(self) -> tuple[bool, int, int, str]:
        return (self.alone, -self.term, self.rank, self.instance)

    def _follow(self, leader: Member) -> str:
        self.role = Role.FOLLOWING
        self.alone = False
        self.leader = leader
        self.term = leader.term
        return f"sync: following rank {leader.rank} at {leader.address} (term {leader.term})"

    def _take_over(self, now: float, heard_others: bool) -> str:
        if self.alone:
            why = f"other PCs heard for {now - self._started:.1f} s, no longer alone"
        elif self.leader is not None:
            silent = now - self.leader.heard
            why = f"leader rank {self.leader.rank} " + (
                f"silent for {silent:.1f} s" if silent > self.failover else "stepped down"
            )
        else:
            why = f"no leader heard in {now - self._started:.1f} s"
        if not heard_others:
            why += "; no other PC heard, so keeping the term"
        self._highest_term = max(self._highest_term, self.term)
        # Capped: a beat may carry the largest term there is, and the next must still be sent.
        self.term = min(self._highest_term + 1, MAX_INT) if heard_others else self._highest_term
        self._highest_term = self.term
        self.role = Role.LEADING
        self.alone = not heard_others
        self._started = now
        self.leader = None
        return f"sync: leading (rank {self.rank}, term {self.term}): {why}"
