"""Show files: what an installation plays, as a TOML file an artist can edit.

A show names its model bundle (relative to the show file, so a show folder can be copied
whole onto the exhibition PC), how to display it, how the engine runs, how OSC controllers
reach it, and its scenes (``installation.score.scenes``): the seed that picks the faces and the pace
at which one face becomes the next. The schema is in ``docs/shows.md``; ``shows/example.toml``
uses every key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from installation.score.hours import ALWAYS_OPEN, OpeningHours, opening_hours
from installation.score.osc_settings import OscSettings, parse_osc
from installation.score.scenes import (
    MAX_FPS,
    Scene,
    WFacts,
    check_latent_keys,
    check_stages,
    parse_scenes,
)
from installation.tomlfile import Section, TomlDocument, read_toml

DISPLAY_MODES = ("fullscreen", "windowed", "headless")
#: "auto" walks the fallback ladder (installation.engine.ladder); the others pin one backend.
BACKENDS = ("auto", "tensorrt", "onnxruntime-cuda", "onnxruntime-cpu")
QUALITIES = ("adaptive", "full")
DEFAULT_SHOW = Path(__file__).resolve().parents[2] / "shows" / "default.toml"


@dataclass(frozen=True)
class DisplaySettings:
    mode: str = "fullscreen"
    fps: float = 60.0
    window_size: tuple[int, int] = (1280, 720)


@dataclass(frozen=True)
class EngineSettings:
    threads: int = 0
    lead: float = 0.1
    backend: str = "auto"
    #: Where ``installation build-engines`` put the TensorRT engines; None: the default cache.
    engines: Path | None = None
    #: "adaptive" drops the last refinement stage while generation is slower than
    #: ``min_rate`` frames per second (installation.engine.quality); "full" never does.
    quality: str = "adaptive"
    min_rate: float = 24.0


@dataclass(frozen=True)
class Show:
    path: Path
    title: str
    bundle: Path
    display: DisplaySettings
    engine: EngineSettings
    osc: OscSettings
    scenes: tuple[Scene, ...]
    #: The parsed file, kept so later checks (against the bundle) can name lines too.
    doc: TomlDocument = field(repr=False, compare=False)
    hours: OpeningHours = ALWAYS_OPEN


def load_show(path: Path | None) -> Show:
    """Read and validate a show file; every problem is a UserError naming file, line, key."""
    path = path or DEFAULT_SHOW
    doc = read_toml(path, "show file")
    root = Section.root(doc)
    title = root.get("title", str, path.stem)
    bundle = path.parent / root.get("bundle", str)
    display = _display(root.table("display")) if root.has("display") else DisplaySettings()
    engine = _engine(root.table("engine"), path.parent) if root.has("engine") else EngineSettings()
    osc = parse_osc(root.table("osc")) if root.has("osc") else OscSettings()
    scenes = parse_scenes(root.tables("scenes"))
    hours = opening_hours(root)
    root.finish()
    return Show(path, title, bundle, display, engine, osc, scenes, doc, hours)


def check_show_bundle(show: Show, stage_count: int, w: WFacts | None) -> None:
    """What can only be checked once the bundle is known: each scene's number of stages, and
    its W-space keys against the bundle's ``[w]`` (None: a Z bundle)."""
    sections = Section.root(show.doc).tables("scenes")
    check_stages(show.scenes, sections, stage_count)
    check_latent_keys(show.scenes, sections, w)


def _display(section: Section) -> DisplaySettings:
    default = DisplaySettings()
    mode = section.choice("mode", DISPLAY_MODES, default.mode)
    fps = section.number("fps", 0.0, MAX_FPS, default.fps, low_open=True)
    width, height = (
        section.integers("window_size", length=2)
        if section.has("window_size")
        else default.window_size
    )
    section.finish()
    return DisplaySettings(mode, fps, (width, height))


def _engine(section: Section, folder: Path) -> EngineSettings:
    default = EngineSettings()
    threads = section.number(
        "threads", 0, 64, default.threads, kind=int, expected="0 (all cores, up to 4) to 64"
    )
    lead = section.number("lead", 0.0, 2.0, default.lead, low_open=True)
    backend = section.choice("backend", BACKENDS, default.backend)
    engines = folder / section.get("engines", str) if section.has("engines") else None
    quality = section.choice("quality", QUALITIES, default.quality)
    min_rate = section.number("min_rate", 0.0, 240.0, default.min_rate, low_open=True)
    section.finish()
    return EngineSettings(threads, lead, backend, engines, quality, min_rate)
