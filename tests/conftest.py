"""Shared fixtures: copies of the committed default show and bundle that tests may break.

Tests work on real files: the committed bundle's ONNX model, really truncated or corrupted,
rather than on mocks of the validator's inputs.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from installation.engine.bundle import Bundle
from installation.score.conductor import Conductor
from installation.session import load_parts

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SHOW = ROOT / "shows" / "default.toml"
DEFAULT_BUNDLE = ROOT / "bundles" / "faces-256"


def brisk_conductor(hold: float, morph: float) -> tuple[Bundle, Conductor]:
    """The default show's bundle, and a conductor for its first scene with short ``hold``
    and ``morph`` times, so that a test of a few seconds sees several faces."""
    show, bundle, _ = load_parts(DEFAULT_SHOW)
    show = replace(show, scenes=(replace(show.scenes[0], hold=hold, morph=morph),))
    return bundle, Conductor(show, bundle.latent_size, bundle.latent_distribution)


@pytest.fixture
def bundle_copy(tmp_path: Path) -> Path:
    """A private copy of the default bundle."""
    target = tmp_path / "bundle"
    shutil.copytree(DEFAULT_BUNDLE, target)
    return target


@pytest.fixture
def show_copy(tmp_path: Path, bundle_copy: Path) -> Path:
    """A private copy of the default show that plays ``bundle_copy``."""
    text = DEFAULT_SHOW.read_text()
    text = text.replace('bundle = "../bundles/faces-256"', 'bundle = "bundle"')
    assert 'bundle = "bundle"' in text
    show = tmp_path / "show.toml"
    show.write_text(text)
    return show
