"""The interface every display mode offers, so the show loop never cares which one it has.

Modes differ only in how the window is made (fullscreen for the gallery, a window for
rehearsal, no screen at all for tests and CI), the way picamera2 offers several previews
behind one interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import StrEnum

from installation.frames import Frame


class Action(StrEnum):
    """What the visitor or technician asked for since the last poll.

    A ``StrEnum`` so callers can compare with plain strings such as ``"quit"``.
    """

    QUIT = "quit"
    TOGGLE_FULLSCREEN = "toggle_fullscreen"


class Display(ABC):
    """A screen that shows frames, crossfading between two of them on the GPU."""

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

        Must be called every frame: it is also what keeps the window responsive.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the window and renderer; safe to call more than once."""

    @property
    @abstractmethod
    def description(self) -> str:
        """Which video driver and renderer are in use, for logs and support questions."""
