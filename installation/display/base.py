"""The interface every display mode offers, so the show loop never cares which one it has.

Modes differ only in how the window is made (fullscreen for the gallery, a window for
rehearsal, no screen at all for tests and CI), the way picamera2 offers several previews
behind one interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import StrEnum
from typing import TYPE_CHECKING

from installation.engine.frames import Frame

if TYPE_CHECKING:
    from installation.display.gpu_texture import GlOffer

#: The exit code of a show whose screen went away: not 0, which says it ended as asked, and not
#: 1 or 2, which say that inference or the user's files are at fault.
EXIT_DISPLAY_LOST = 3


class DisplayLost(Exception):
    """The display server (the compositor, or the X server) went away under the show.

    Told apart from the visitor or technician quitting, because a show that ended on its own
    must not look like one that was stopped: the gallery has a black screen either way.
    """


class Action(StrEnum):
    """What the visitor or technician asked for since the last poll.

    A ``StrEnum`` so callers can compare with plain strings such as ``"quit"``.
    """

    QUIT = "quit"
    TOGGLE_FULLSCREEN = "toggle_fullscreen"


class Display(ABC):
    """A screen that shows frames, crossfading between two of them on the GPU."""

    #: Set while open by a presenter that can draw frames still in GPU memory (the GL one,
    #: installation.display.gpu_texture); None: frames must come from the host.
    gpu_offer: GlOffer | None = None

    @abstractmethod
    def open(self, title: str) -> None:
        """Create the window and renderer; call once before anything else."""

    @abstractmethod
    def present(self, a: Frame, b: Frame | None, weight: float, brightness: float = 1.0) -> None:
        """Show ``a`` blended towards ``b`` by ``weight`` (0 shows ``a``, 1 shows ``b``),
        the whole picture multiplied by ``brightness`` (0 is black), letterboxed on black.
        """

    @abstractmethod
    def poll(self) -> list[Action]:
        """Drain pending window and keyboard events and return the actions they ask for.

        Must be called every frame: it is also what keeps the window responsive. Raises
        :class:`DisplayLost`, with the cause, when the display server has gone.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the window and renderer; safe to call more than once."""

    @property
    @abstractmethod
    def description(self) -> str:
        """Which video driver and renderer are in use, for logs and support questions."""
