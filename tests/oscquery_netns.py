"""mDNS as a controller on the show network sees it: run by tests/test_oscquery.py inside a
private network namespace (``unshare -rn``, loopback up with multicast and a route for
224.0.0.0/4) so that no packet leaves the machine.

A real show's ``ShowControl`` with ``[osc] query_port`` starts the OSC and OSCQuery servers,
which announce themselves; zeroconf's own ``ServiceBrowser`` looks for both services, resolves
them, and watches them go when the show stops. The findings are printed as one JSON object.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

from zeroconf import ServiceBrowser, ServiceStateChange, Zeroconf

from installation.control.oscquery.announce import OSC, OSCJSON
from installation.control.steering import ShowControl
from installation.session import load_parts

DEFAULT_SHOW = Path(__file__).resolve().parent.parent / "shows" / "default.toml"
WAIT = 15.0


def main() -> None:
    show, bundle, conductor = load_parts(DEFAULT_SHOW)
    show = replace(show, osc=replace(show.osc, port=0, query_port=0))
    browser_zc = Zeroconf(interfaces=["127.0.0.1"])
    seen: dict[str, set[str]] = {OSCJSON: set(), OSC: set()}
    gone: dict[str, set[str]] = {OSCJSON: set(), OSC: set()}
    changed = threading.Condition()

    def on_change(
        zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        with changed:
            if state_change is ServiceStateChange.Added:
                seen[service_type].add(name)
            elif state_change is ServiceStateChange.Removed:
                gone[service_type].add(name)
            changed.notify_all()

    def wait_for(found: dict[str, set[str]]) -> bool:
        with changed:
            return changed.wait_for(lambda: all(found.values()), WAIT)

    browser = ServiceBrowser(browser_zc, [OSCJSON, OSC], handlers=[on_change])
    results: dict[str, Any] = {}
    with ShowControl(show, conductor, bundle) as control:
        assert control.osc is not None and control.oscquery is not None
        started = time.monotonic()
        results["found"] = wait_for(seen)
        results["seconds to find"] = round(time.monotonic() - started, 2)
        for kind, key in ((OSCJSON, "oscjson"), (OSC, "osc")):
            for name in seen[kind]:
                info = browser_zc.get_service_info(kind, name, timeout=3000)
                results[key] = {
                    "name": name,
                    "port": info.port if info else None,
                    "addresses": info.parsed_addresses() if info else [],
                }
        osc_address, query_address = control.osc.address, control.oscquery.address
        assert osc_address is not None and query_address is not None
        results["osc port"], results["query port"] = osc_address[1], query_address[1]
        port = results["oscjson"]["port"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/?HOST_INFO", timeout=5) as reply:
            results["host info"] = json.loads(reply.read())
    results["withdrawn"] = wait_for(gone)
    browser.cancel()
    browser_zc.close()
    print(json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
