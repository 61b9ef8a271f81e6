"""The installation as a lighting fixture: sACN or Art-Net from a desk, on its own thread.

``channels`` is the one channel table (read by the receivers, the fixture files and the
docs); ``receiver`` the thread with its checks, loss and release; ``artnet`` and ``e131`` the
two protocols; ``fixture`` writes the files a lighting designer imports.
"""

from __future__ import annotations

from installation.control.dmx.artnet import ArtNetReceiver
from installation.control.dmx.e131 import SacnReceiver
from installation.control.dmx.receiver import DmxReceiver
from installation.score.conductor import Conductor
from installation.score.dmx_settings import DmxSettings


def dmx_receiver(settings: DmxSettings, conductor: Conductor) -> DmxReceiver:
    """The receiver for ``settings.protocol``, not yet started."""
    kind = ArtNetReceiver if settings.protocol == "artnet" else SacnReceiver
    return kind(settings, conductor)
