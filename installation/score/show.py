"""Show files: what an installation plays, as a TOML file an artist can edit.

A show names its model bundle (relative to the show file, so a show folder can be copied
whole onto the exhibition PC), how to display it, how the engine runs, how OSC controllers
reach it, and its scenes (``installation.score.scenes``): the seed that picks the faces and the pace
at which one face becomes the next. The schema is in ``docs/shows.md``; ``shows/example.toml``
uses every key.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from string import hexdigits

from installation.errors import UserError
from installation.images import read_image
from installation.score.dmx_settings import DmxSettings, parse_dmx
from installation.score.hours import ALWAYS_OPEN, OpeningHours, opening_hours
from installation.score.midi_settings import MidiSettings, parse_midi
from installation.score.ndi_settings import NdiSettings, parse_ndi
from installation.score.osc_settings import OscSettings, parse_osc
from installation.score.outputs_settings import OutputSettings, parse_outputs, stream_grid
from installation.score.scenes import (
    MAX_FPS,
    Scene,
    WFacts,
    check_latent_keys,
    check_stages,
    parse_scenes,
)
from installation.score.sync_settings import SyncSettings, parse_sync
from installation.score.web_settings import WebSettings, parse_web
from installation.tomlfile import Section, TomlDocument, read_toml

DISPLAY_MODES = ("fullscreen", "windowed", "headless")
#: "auto" presents with OpenGL shaders and falls back to SDL's renderer where GL cannot start.
RENDERERS = ("auto", "gl", "sdl")
#: Upscalers of the GL presenter (installation.display.shaders); SDL always scales linearly.
SCALERS = ("lanczos", "bicubic", "linear")
LAYOUTS = ("fill", "portrait", "grid")
#: The grid layout's default rows and columns, and the most of either.
GRID = (2, 2)
MAX_GRID = 4
#: "auto" walks the fallback ladder (installation.engine.ladder); the others pin one backend.
BACKENDS = ("auto", "tensorrt", "onnxruntime-cuda", "onnxruntime-cpu")
QUALITIES = ("adaptive", "full")
DEFAULT_SHOW = Path(__file__).resolve().parents[2] / "shows" / "default.toml"


@dataclass(frozen=True)
class DisplaySettings:
    mode: str = "fullscreen"
    fps: float = 60.0
    window_size: tuple[int, int] = (1280, 720)
    renderer: str = "auto"
    scaler: str = "lanczos"
    #: Film grain and vignette strength, 0 (none) to 1; GL presenter only.
    grain: float = 0.0
    vignette: float = 0.0
    layout: str = "fill"
    #: The portrait layout: the face's share of the screen height, on this background.
    portrait_height: float = 0.8
    background: tuple[int, int, int] = (16, 16, 16)
    background_image: Path | None = None
    #: Rows and columns of face streams (layout "grid"); (1, 1): one face.
    grid: tuple[int, int] = (1, 1)


@dataclass(frozen=True)
class EngineSettings:
    threads: int = 0
    lead: float = 0.1
    backend: str = "auto"
    #: Where ``installation build-engines`` put the TensorRT engines; None: the default cache.
    engines: Path | None = None
    #: "adaptive" drops the last refinement stage while the picture moves more than
    #: ``max_step`` faces between two generated frames, or generation is slower than
    #: ``min_rate`` frames per second (installation.engine.quality); "full" never does.
    quality: str = "adaptive"
    min_rate: float = 4.0
    max_step: float = 0.05


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
    web: WebSettings = field(default_factory=WebSettings)
    #: Sending the screen as an NDI source; None: not sent.
    ndi: NdiSettings | None = None
    #: MIDI notes and controllers steering the show; None: no MIDI.
    midi: MidiSettings | None = None
    #: The installation as a lighting fixture on sACN or Art-Net; None: no DMX.
    dmx: DmxSettings | None = None
    #: Frame lockstep with the other PCs of a room; None: this PC plays on its own.
    sync: SyncSettings | None = None
    #: Several screens or projectors of this PC ([[outputs]]); empty: one window.
    outputs: tuple[OutputSettings, ...] = ()


def load_show(path: Path | None) -> Show:
    """Read and validate a show file; every problem is a UserError naming file, line, key."""
    path = path or DEFAULT_SHOW
    doc = read_toml(path, "show file")
    root = Section.root(doc)
    title = root.get("title", str, path.stem)
    bundle = path.parent / root.get("bundle", str)
    display = (
        _display(root.table("display"), path.parent) if root.has("display") else DisplaySettings()
    )
    engine = _engine(root.table("engine"), path.parent) if root.has("engine") else EngineSettings()
    osc = parse_osc(root.table("osc")) if root.has("osc") else OscSettings()
    web = parse_web(root.table("web")) if root.has("web") else WebSettings()
    ndi = parse_ndi(root.table("ndi")) if root.has("ndi") else None
    midi = parse_midi(root.table("midi")) if root.has("midi") else None
    dmx = parse_dmx(root.table("dmx")) if root.has("dmx") else None
    sync = parse_sync(root.table("sync")) if root.has("sync") else None
    outputs: tuple[OutputSettings, ...] = ()
    if root.has("outputs"):
        outputs = parse_outputs(root.tables("outputs"), display.layout, display.renderer)
        grid = stream_grid(outputs)
        if grid is not None:
            display = replace(display, grid=grid)
    scenes = parse_scenes(root.tables("scenes"))
    hours = opening_hours(root)
    root.finish()
    return Show(
        path,
        title,
        bundle,
        display,
        engine,
        osc,
        scenes,
        doc,
        hours,
        web,
        ndi,
        midi,
        dmx,
        sync,
        outputs,
    )


def check_show_bundle(show: Show, stage_count: int, w: WFacts | None) -> None:
    """What can only be checked once the bundle is known: each scene's number of stages, and
    its W-space keys against the bundle's ``[w]`` (None: a Z bundle)."""
    sections = Section.root(show.doc).tables("scenes")
    check_stages(show.scenes, sections, stage_count)
    check_latent_keys(show.scenes, sections, w)


def _display(section: Section, folder: Path) -> DisplaySettings:
    default = DisplaySettings()
    mode = section.choice("mode", DISPLAY_MODES, default.mode)
    fps = section.number("fps", 0.0, MAX_FPS, default.fps, low_open=True)
    width, height = (
        section.integers("window_size", length=2)
        if section.has("window_size")
        else default.window_size
    )
    renderer = section.choice("renderer", RENDERERS, default.renderer)
    scaler = section.choice("scaler", SCALERS, default.scaler)
    grain = section.number("grain", 0.0, 1.0, default.grain)
    vignette = section.number("vignette", 0.0, 1.0, default.vignette)
    layout = section.choice("layout", LAYOUTS, default.layout)
    portrait_height = section.number("portrait_height", 0.1, 1.0, default.portrait_height)
    background = _colour(section, "background", default.background)
    background_image = None
    if section.has("background_image"):
        background_image = folder / section.get("background_image", str)
        try:
            read_image(background_image)
        except UserError as exc:
            raise section.error("background_image", str(exc)) from exc
    grid = _grid(section, layout)
    section.finish()
    return DisplaySettings(
        mode=mode,
        fps=fps,
        window_size=(width, height),
        renderer=renderer,
        scaler=scaler,
        grain=grain,
        vignette=vignette,
        layout=layout,
        portrait_height=portrait_height,
        background=background,
        background_image=background_image,
        grid=grid,
    )


def _grid(section: Section, layout: str) -> tuple[int, int]:
    """``grid = [rows, columns]`` of the grid layout: 2 x 2 unless the file says. Every face
    is generated every frame, so 4 x 4 (16 faces in one batch) is the most allowed."""
    if layout != "grid":
        if section.has("grid"):
            raise section.error("grid", f'only read with layout = "grid" (layout is "{layout}")')
        return (1, 1)
    if not section.has("grid"):
        return GRID
    rows, columns = section.integers("grid", length=2)
    if rows > MAX_GRID or columns > MAX_GRID or rows * columns == 1:
        wanted = f"[rows, columns] of 1 to {MAX_GRID} each, more than one face"
        raise section.error("grid", f"expected {wanted}; got {[rows, columns]}")
    return rows, columns


def _colour(section: Section, key: str, default: tuple[int, int, int]) -> tuple[int, int, int]:
    """A colour written as in CSS and image editors, ``"#rrggbb"`` in hexadecimal."""
    text = section.get(key, str, "")
    if not text:
        return default
    digits = text.removeprefix("#")
    if len(text) != 7 or not text.startswith("#") or any(c not in hexdigits for c in digits):
        raise section.error(key, f'expected a colour as "#rrggbb", got {text!r}')
    return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))


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
    max_step = section.number("max_step", 0.0, 1.0, default.max_step, low_open=True)
    section.finish()
    return EngineSettings(threads, lead, backend, engines, quality, min_rate, max_step)
