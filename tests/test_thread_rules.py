"""Thread rules that docstrings promise, under a real race: a reload (its own thread) replacing
the show or the OSC allowlist while OSC's thread uses them. The interpreter is made to switch
threads as often as it can, so that a read-then-act outside the rule breaks within the run."""

from __future__ import annotations

import ipaddress
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from conftest import DEFAULT_SHOW

from installation.control.osc.patterns import AddressMap
from installation.control.osc.server import OscServer
from installation.errors import UserError
from installation.score.osc_settings import OscSettings
from installation.session import load_parts

ROUNDS = 1000


@pytest.fixture(autouse=True)
def eager_switching() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def alongside(work: Callable[[], None], race: Callable[[], None]) -> list[BaseException]:
    """Run ``work`` over and over on another thread while ``race`` runs here once; what
    ``work`` raised, other than a refusal (UserError)."""
    done = threading.Event()
    errors: list[BaseException] = []

    def repeat() -> None:
        while not done.is_set():
            try:
                work()
            except UserError:
                pass
            except Exception as exc:
                errors.append(exc)
                return

    thread = threading.Thread(target=repeat)
    thread.start()
    try:
        race()
    finally:
        done.set()
        thread.join()
    return errors


def test_a_scene_cue_and_a_reload_that_drops_scenes_never_collide() -> None:
    show, _bundle, conductor = load_parts(DEFAULT_SHOW)
    first = show.scenes[0]
    three = replace(show, scenes=tuple(replace(first, name=f"s{i}") for i in range(3)))
    one = replace(show, scenes=(replace(first, name="s0"),))
    conductor.replace_show(three)

    def reloads() -> None:
        for _ in range(ROUNDS):
            conductor.replace_show(one)
            conductor.replace_show(three)

    # Scene 3 is there when the cue checks, and maybe not when it cuts, unless both happen
    # under one hold of the lock: then the cue is refused (UserError) or taken, nothing else.
    assert alongside(lambda: conductor.go_to_scene(3), reloads) == []


def test_a_reloaded_allowlist_is_never_overruled_by_a_verdict_cached_under_the_old_one() -> None:
    # A long list makes each check slow, and so the window in which a reload can meet it wide.
    others = tuple(ipaddress.ip_network(f"10.{i // 256}.{i % 256}.0/24") for i in range(400))
    elsewhere = OscSettings(port=0, allow=others)
    loopback = replace(elsewhere, allow=(*others, ipaddress.ip_network("127.0.0.0/8")))
    server = OscServer(loopback, AddressMap([]))
    host = "127.0.0.1"
    checks = [0]  # made by the server thread
    stale: list[int] = []

    def admit() -> None:
        server._is_allowed(host)  # what the server thread does with each packet
        checks[0] += 1

    def reloads() -> None:
        for round_ in range(ROUNDS):
            server.update(loopback)
            server.update(elsewhere)
            # Let the server thread finish the check it was in (maybe under the old list)
            # and make one more; what the new list says must still stand.
            # (A bounded wait: should that thread have stopped, the test must still end.)
            until = checks[0] + 2
            for _ in range(100_000):
                if checks[0] >= until:
                    break
            if server._is_allowed(host):
                stale.append(round_)

    assert alongside(admit, reloads) == []
    assert stale == []
