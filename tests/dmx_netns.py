"""sACN multicast as a desk sends it: run by tests/test_dmx.py inside a private network
namespace (``unshare -rn``, multicast on its own loopback), so no packet leaves it. The
``sacn`` library's sender multicasts a universe to the group of universe 7; a real receiver
joined on 127.0.0.1 steers a real conductor. Prints what it saw as one JSON object.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import sacn
from test_dmx import started, universe, wait_for

from installation.control.dmx import dmx_receiver
from installation.score.show import load_show


def main() -> None:
    show = Path(sys.argv[1])
    conductor = started(show)
    settings = load_show(show).dmx
    assert settings is not None
    receiver = dmx_receiver(settings, conductor)
    receiver.start()
    assert receiver.wait_bound(5.0)
    sender = sacn.sACNsender(bind_address="127.0.0.1", bind_port=0, universeDiscovery=False)
    sender.start()
    try:
        sender.activate_output(7)
        sender[7].multicast = True
        sender[7].dmx_data = universe()
        wait_for(lambda: receiver.stats.accepted > 0, "the first packet", 10.0)
        sender[7].dmx_data = universe(truncation=0x3000)
        wait_for(lambda: receiver.steering.changes > 0, "the change", 10.0)
    finally:
        sender.stop()
        receiver.stop()
    stats = receiver.stats
    print(
        json.dumps(
            {
                "listening": receiver.address,
                "truncation": conductor.status().truncation,
                "malformed": stats.malformed,
                "refused": stats.refused,
            }
        )
    )


if __name__ == "__main__":
    main()
