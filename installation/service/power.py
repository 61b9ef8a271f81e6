"""Switching the screen or projector off at closing time and on again at opening.

A screen left on all night wears out (a projector lamp lasts a few thousand hours) and costs
power, so ``[hours] screen`` names how to switch it: ``cec`` (a TV over HDMI-CEC, through
``cec-client`` from Debian's cec-utils), ``dpms`` (the compositor's output power: ``wlr-randr``
under Wayland, ``xset`` under X), ``pjlink`` (a projector on the network, installation.service
.pjlink) or ``none``.

A command can take seconds (cec-client opens its adapter, a projector answers slowly or not at
all), and the monitor thread that decides when to switch must keep ticking and feeding the
systemd watchdog meanwhile. So commands run on a thread of their own, one at a time, each with
a timeout; the monitor only states its intention, and when a newer one comes during a command
the next command carries out the newest (off-on-off during a slow command ends in one off). A
command that fails is tried again every minute, logged once a day for each kind of failure,
and never stops the show: a black picture on a screen that stays on is the worst it can do.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Protocol

from installation.errors import first_line
from installation.ratelog import RateLimitedLog
from installation.score.hours import ScreenPower
from installation.service.pjlink import PjlinkError, Projector

log = logging.getLogger(__name__)

DAY = 86400.0
#: Seconds between tries of a command that failed while the intention stands.
RETRY = 60.0
#: Seconds a command may take: cec-client needs a few to open its adapter and scan the bus.
COMMAND_TIMEOUT = 20.0
#: Seconds a projector switched on may take to report its lamp on, asked every ``POLL``.
WARM_UP = 45.0
POLL = 2.0


class PowerFailed(Exception):
    """A command that did not switch the screen; ``kind`` comes from a fixed set, so that
    each kind of failure is logged once a day however often it repeats."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Switch(Protocol):
    """One way of switching the screen; ``power`` blocks until it is done or raises
    PowerFailed, within a bounded time."""

    name: str

    def power(self, on: bool) -> None: ...


def run_command(argv: list[str], stdin: str = "", timeout: float = COMMAND_TIMEOUT) -> str:
    """Run ``argv`` with ``stdin`` and return its output; PowerFailed when the program is
    missing, takes longer than ``timeout`` seconds (it is killed) or fails."""
    try:
        done = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise PowerFailed("missing", f"{argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise PowerFailed("timeout", f"{argv[0]} took more than {timeout:g} s") from None
    except OSError as exc:
        raise PowerFailed("cannot run", f"cannot run {argv[0]}: {first_line(exc)}") from None
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()
        detail = f": {said[-1]}" if said else ""
        raise PowerFailed("failed", f"{argv[0]} ended with status {done.returncode}{detail}")
    return done.stdout


class Cec:
    """A TV on HDMI-CEC: ``cec-client`` in single-command mode tells device 0 (the TV)."""

    name = "cec"

    def __init__(self, timeout: float = COMMAND_TIMEOUT) -> None:
        self.timeout = timeout

    def power(self, on: bool) -> None:
        command = "on 0\n" if on else "standby 0\n"
        run_command(["cec-client", "-s", "-d", "1"], command, self.timeout)


class Dpms:
    """The monitor's own power saving, through the display server the show runs under:
    every output off or on with ``wlr-randr`` under Wayland (cage), ``xset`` under X."""

    name = "dpms"

    def __init__(self, timeout: float = COMMAND_TIMEOUT) -> None:
        self.timeout = timeout

    def power(self, on: bool) -> None:
        if os.environ.get("WAYLAND_DISPLAY"):
            outputs = _outputs(run_command(["wlr-randr"], timeout=self.timeout))
            if not outputs:
                raise PowerFailed("no outputs", "wlr-randr lists no outputs")
            for output in outputs:
                switch = ["--output", output, "--on" if on else "--off"]
                run_command(["wlr-randr", *switch], timeout=self.timeout)
        elif os.environ.get("DISPLAY"):
            run_command(["xset", "dpms", "force", "on" if on else "off"], timeout=self.timeout)
        else:
            raise PowerFailed(
                "no display server", "neither WAYLAND_DISPLAY nor DISPLAY is set: no compositor"
            )


def _outputs(listing: str) -> list[str]:
    """The output names in ``wlr-randr``'s listing: each output's first line starts at the
    margin with its name; its properties follow indented."""
    return [line.split()[0] for line in listing.splitlines() if line and not line[0].isspace()]


class Pjlink:
    """A projector on the network. Switched on, it is waited for until it reports its lamp
    on (at most ``warm_up`` seconds), so that the opening fade is seen, not spent warming."""

    name = "pjlink"

    def __init__(self, projector: Projector, warm_up: float = WARM_UP, poll: float = POLL) -> None:
        self.projector = projector
        self.warm_up = warm_up
        self.poll = poll

    def power(self, on: bool) -> None:
        try:
            self.projector.power(on)
        except PjlinkError as exc:
            raise PowerFailed(exc.kind, str(exc)) from None
        if on:
            self._wait_until_lit()

    def _wait_until_lit(self) -> None:
        deadline = time.monotonic() + self.warm_up
        state = "warming up"
        while time.monotonic() < deadline:
            try:
                state = self.projector.power_state()
            except PjlinkError:
                return  # it took the command; whether it can say how far it got is no matter
            if state == "on":
                return
            time.sleep(self.poll)
        where = self.projector.where
        log.info("the projector at %s is still %s after %g s", where, state, self.warm_up)


def switch_for(screen: ScreenPower) -> Switch | None:
    """The switch an ``[hours]`` table asks for; None for ``screen = "none"``."""
    if screen.kind == "cec":
        return Cec()
    if screen.kind == "dpms":
        return Dpms()
    if screen.kind == "pjlink" and screen.projector is not None:
        return Pjlink(Projector(*screen.projector, screen.password))
    return None


class ScreenSwitcher:
    """Carries out the latest intention (on or off) with a switch, on its own thread.

    ``request`` never waits; ``answered`` says whether the switch has carried out (or failed)
    the latest intention, so the monitor can hold the opening fade until the screen is on.
    The thread starts with the first intention there is a switch for.
    """

    def __init__(
        self,
        switch: Switch | None,
        retry: float = RETRY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._switch = switch
        self._retry = retry
        self._failures = RateLimitedLog(log, DAY, clock)
        self._changed = threading.Condition()
        self._wanted: bool | None = None
        self._asked = 0  # the serial of the latest intention
        self._answered = 0  # the serial of the latest intention carried out or failed
        self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def wanted(self) -> bool | None:
        """The latest intention: True on, False off, None when there has been none."""
        return self._wanted

    def request(self, on: bool) -> None:
        """Switch the screen on or off as soon as the thread can; repeating it is free."""
        with self._changed:
            if on != self._wanted:
                self._wanted = on
                self._renew()

    def use(self, switch: Switch | None) -> None:
        """Switch with ``switch`` from now on (a reload changed ``screen``); the current
        intention is carried out again with it."""
        with self._changed:
            self._switch = switch
            if self._wanted is not None:
                self._renew()

    def answered(self) -> bool:
        return self._answered == self._asked

    def close(self, timeout: float = 0.2) -> None:
        """End the thread, waiting at most ``timeout`` seconds (a stop must be over within
        2 s): a command in flight ends by its own timeout, and the thread is a daemon, so it
        cannot hold up the exit."""
        with self._changed:
            self._closed = True
            self._changed.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def _renew(self) -> None:
        """A new intention (the lock is held)."""
        self._asked += 1
        if self._switch is None:
            self._answered = self._asked
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="screen power", daemon=True)
            self._thread.start()
        self._changed.notify()

    def _run(self) -> None:
        done = 0  # the serial of the intention last tried
        failed = False
        while True:
            with self._changed:
                if done == self._asked and not self._closed:
                    self._changed.wait(self._retry if failed else None)
                if self._closed:
                    return
                if done == self._asked and not failed:
                    continue
                serial, on, switch = self._asked, self._wanted, self._switch
            failed = switch is not None and on is not None and not self._carry_out(switch, on)
            with self._changed:
                done = serial
                self._answered = max(self._answered, serial)

    def _carry_out(self, switch: Switch, on: bool) -> bool:
        state = "on" if on else "off"
        try:
            switch.power(on)
        except PowerFailed as exc:
            self._failures.warning(
                f"{switch.name} {state} {exc.kind}",
                f"screen: switching it {state} by {switch.name} failed: {exc}; the show goes "
                f"on, trying again every {self._retry:g} s (logged once a day)",
            )
            return False
        except Exception:
            self._failures.warning(
                f"{switch.name} {state} bug",
                f"screen: switching it {state} by {switch.name} failed",
                exc_info=True,
            )
            return False
        log.info("screen switched %s by %s", state, switch.name)
        return True
