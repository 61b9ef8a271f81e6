"""Show files: what an installation plays, as a TOML file an artist can edit.

A show names its model bundle (relative to the show file, so a show folder can be copied
whole onto the exhibition PC), how to display it, how the engine runs and the scene: the
seed that picks the faces and the pace at which one face becomes the next. The schema is in
the commented example ``shows/default.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from installation.easing import get_easing
from installation.errors import UserError
from installation.tomlfile import Section, read_toml

DISPLAY_MODES = ("fullscreen", "windowed", "headless")
DEFAULT_SHOW = Path(__file__).resolve().parent.parent / "shows" / "default.toml"


@dataclass(frozen=True)
class DisplaySettings:
    mode: str = "fullscreen"
    fps: float = 60.0
    window_size: tuple[int, int] = (1280, 720)


@dataclass(frozen=True)
class EngineSettings:
    threads: int = 0
    lead: float = 0.1


@dataclass(frozen=True)
class Scene:
    seed: int
    hold: float
    morph: float
    easing: str


@dataclass(frozen=True)
class Show:
    path: Path
    title: str
    bundle: Path
    display: DisplaySettings
    engine: EngineSettings
    scene: Scene


def load_show(path: Path | None) -> Show:
    """Read and validate a show file; every problem is a UserError naming file, line, key."""
    path = path or DEFAULT_SHOW
    doc = read_toml(path, "show file")
    root = Section.root(doc)
    title = root.get("title", str, path.stem)
    bundle = path.parent / root.get("bundle", str)
    display = _display(root.table("display")) if root.has("display") else DisplaySettings()
    engine = _engine(root.table("engine")) if root.has("engine") else EngineSettings()
    scene = _scene(root.table("scene"))
    root.finish()
    return Show(path, title, bundle, display, engine, scene)


def _display(section: Section) -> DisplaySettings:
    mode = section.choice("mode", DISPLAY_MODES, "fullscreen")
    fps = _positive(section, "fps", 60.0, upper=240.0)
    width, height = section.integers("window_size") if section.has("window_size") else (1280, 720)
    section.finish()
    return DisplaySettings(mode, fps, (width, height))


def _engine(section: Section) -> EngineSettings:
    threads = section.get("threads", int, 0)
    if not 0 <= threads <= 64:
        raise section.error("threads", f"expected 0 (all cores, up to 4) to 64, got {threads}")
    lead = _positive(section, "lead", 0.1, upper=2.0)
    section.finish()
    return EngineSettings(threads, lead)


def _scene(section: Section) -> Scene:
    seed = section.get("seed", int)
    if not 0 <= seed < 2**63:
        raise section.error("seed", f"expected an integer from 0 to 2**63-1, got {seed}")
    hold = section.get("hold", float)
    if not 0 <= hold <= 3600:
        raise section.error("hold", f"expected 0 to 3600 seconds, got {hold}")
    morph = _positive(section, "morph", None, upper=3600.0)
    easing = section.get("easing", str, "smoothstep")
    try:
        get_easing(easing)
    except UserError as exc:
        raise section.error("easing", str(exc)) from None
    section.finish()
    return Scene(seed, hold, morph, easing)


def _positive(section: Section, key: str, default: float | None, upper: float) -> float:
    value = section.get(key, float) if default is None else section.get(key, float, default)
    if not 0 < value <= upper:
        raise section.error(key, f"expected more than 0 and at most {upper:g}, got {value}")
    return value
