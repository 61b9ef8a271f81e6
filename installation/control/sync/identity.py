"""Which show a PC plays, as one hash: followers take cues only from a leader of the same show.

Two PCs agree on a frame only when everything that decides its picture is the same: the
scenes as read, the face streams, the frame rate and the model. What differs per PC by
design (its rank, its controls' addresses, its window) is left out, so one show file copied
to every PC and edited for ``rank`` gives one identity. The scenes are hashed as parsed, not
as written, so a comment or a reordered key does not split a room.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any

from installation.engine.bundle import Bundle
from installation.score.show import Show


def show_identity(show: Show, bundle: Bundle) -> str:
    """The hex sha256 of what decides the picture of ``show`` played with ``bundle``."""
    facts = {
        "scenes": [asdict(scene) for scene in show.scenes],
        "grid": show.display.grid,
        "fps": show.display.fps,
        "bundle": _bundle_facts(bundle),
    }
    text = json.dumps(facts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _bundle_facts(bundle: Bundle) -> dict[str, Any]:
    """The model by its files' sha256s (checked against the files when loaded) and the latent
    it is fed, not by its folder: every PC has its own copy in its own place."""
    facts: dict[str, Any] = {
        "latent": [bundle.latent_size, bundle.latent_distribution],
        "stages": [stage.sha256 for stage in bundle.stages],
    }
    if bundle.w is not None:
        w = bundle.w
        facts["w"] = [w.mapping_sha256, w.average_sha256, w.transform]
    return facts
