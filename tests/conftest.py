"""Shared fixtures: copies of the committed default show and bundle that tests may break;
and the helpers several test files need (an edited show, solid frames, a GL context).

Tests work on real files: the committed bundle's ONNX model, really truncated or corrupted,
rather than on mocks of the validator's inputs.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from installation.engine.bundle import Bundle
from installation.engine.frames import Frame
from installation.score.conductor import Conductor
from installation.session import load_parts

if TYPE_CHECKING:
    import moderngl

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SHOW = ROOT / "shows" / "default.toml"
DEFAULT_BUNDLE = ROOT / "bundles" / "faces-256"
#: ``sh -c MULTICAST_NETNS PROGRAM ARGS...`` under ``unshare -rn``: loopback up, with
#: multicast and a route for the multicast range, so that a test's groups work and stay in
#: its own network namespace.
MULTICAST_NETNS = (
    "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && "
    'exec "$0" "$@"'
)
#: Colours of the solid frames (``solid``) that the display tests show.
RED = (255, 0, 0)
BLUE = (0, 0, 255)


def brisk_conductor(hold: float, morph: float) -> tuple[Bundle, Conductor]:
    """The default show's bundle, and a conductor for its first scene with short ``hold``
    and ``morph`` times, so that a test of a few seconds sees several faces."""
    show, bundle, _ = load_parts(DEFAULT_SHOW)
    show = replace(show, scenes=(replace(show.scenes[0], hold=hold, morph=morph),))
    return bundle, Conductor(show, bundle.latent_size, bundle.latent_distribution)


def edited_show(tmp_path: Path, old: str, new: str) -> Path:
    """The default show with the first ``old`` replaced by ``new``, written into ``tmp_path``."""
    text = DEFAULT_SHOW.read_text()
    assert old in text
    path = tmp_path / "show.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def solid(serial: int, colour: tuple[int, int, int], size: tuple[int, int] = (64, 64)) -> Frame:
    """A frame of one colour; ``size`` is (width, height)."""
    image = np.empty((size[1], size[0], 3), dtype=np.uint8)
    image[:] = colour
    return Frame(t=serial / 30, image=image, serial=serial)


def gl_context() -> moderngl.Context:
    """A standalone OpenGL context through EGL (Mesa's needs no screen); skips the test where
    none can be made."""
    moderngl = pytest.importorskip("moderngl")
    try:
        return moderngl.create_standalone_context(backend="egl")
    except Exception as exc:  # moderngl raises plain Exceptions when there is no GL
        pytest.skip(f"no OpenGL context can be created here: {exc}")


@pytest.fixture(scope="module")
def ctx() -> Iterator[moderngl.Context]:
    """One GL context (``gl_context``) for a test module's passes."""
    context = gl_context()
    yield context
    context.release()


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
