"""The ``installation`` command: run, render, check and bench a show; build its TensorRT
engines; export bundles.

Every user mistake surfaces as one line on stderr naming the file or option and what is
wrong, with exit code 2; tracebacks are for bugs only. ``installation export``'s commands are
added to the parser only when ``export`` is chosen: they are the workshop's (``export``, which
needs torch), and the exhibition PC, which has neither, builds this parser on every start.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installation.errors import UserError
from installation.images import MAX_SIZE
from installation.output import DEFAULT_CRF, PRESETS, RECORD_PRESET, RENDER_PRESET
from installation.service.journal import configure_logging
from installation.service.signals import RunSignals

if TYPE_CHECKING:
    from installation.output.feed import Output

log = logging.getLogger("installation")


def main(argv: list[str] | None = None) -> int:
    try:
        code = _command(argv)
        sys.stdout.flush()  # a reader that went away shows here, not as a mess at exit
    except BrokenPipeError:
        # `installation status | head -2`: the reader has what it wanted. Python would try
        # to flush stdout again at exit and fail again, so stdout goes to /dev/null.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    return code


def _command(argv: list[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # after --help (0) or a usage error (2)
        return int(exc.code or 0)
    configure_logging(args.verbose)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"installation: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="installation",
        description="Show portraits of imaginary people, morphing from one face to the next.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Command
    )

    run = commands.add_parser("run", help="play a show on the screen")
    _show_argument(run, optional=True)
    modes = run.add_mutually_exclusive_group()
    modes.add_argument(
        "--windowed", action="store_true", help="in a window instead of fullscreen (rehearsal)"
    )
    modes.add_argument(
        "--headless", action="store_true", help="without a screen (SDL dummy driver; tests, CI)"
    )
    run.add_argument(
        "--duration", type=_seconds, metavar="SECONDS", help="stop cleanly after this long"
    )
    run.add_argument(
        "--record",
        type=Path,
        metavar="FILE",
        help="record what the screen shows into a video file: .mp4 or .mkv (H.264), .mov "
        "(ProRes 422 HQ); frames the encoder cannot keep up with are dropped from the "
        "recording, never from the screen",
    )
    run.add_argument(
        "--record-size",
        type=_size,
        metavar="WxH",
        help="scale the recording to this size (default: the show's frames')",
    )
    _video_arguments(run, RECORD_PRESET)
    run.add_argument("--force", action="store_true", help="replace an existing --record file")
    run.set_defaults(func=_run)

    render = commands.add_parser(
        "render", help="write a show's frames as numbered PNG files or as a video file"
    )
    _show_argument(render, optional=False)
    render.add_argument(
        "--seconds", type=_seconds, required=True, help="length of show time to render"
    )
    render.add_argument("--fps", type=_seconds, default=30.0, help="frames per second (30)")
    render.add_argument(
        "--out",
        type=Path,
        required=True,
        help="a video file (.mp4 or .mkv: H.264; .mov: ProRes 422 HQ), or else a folder for "
        "PNG frames (new or empty)",
    )
    render.add_argument(
        "--force",
        action="store_true",
        help="replace an existing video file, or render into a folder that is not empty, "
        "replacing the frame_*.png files in it",
    )
    render.add_argument(
        "--size", type=_size, metavar="WxH", help="scale frames to this size (default: bundle's)"
    )
    _video_arguments(render, RENDER_PRESET)
    render.set_defaults(func=_render)

    check = commands.add_parser(
        "check",
        help="validate a show and its bundle, and run each stage once on a sample, without "
        "opening a window",
    )
    _show_argument(check, optional=False)
    check.set_defaults(func=_check)

    bench = commands.add_parser(
        "bench", help="measure each stage and the display loop on every available backend"
    )
    _show_argument(bench, optional=True)
    bench.add_argument("--batch", type=int, default=16, help="the larger batch size to time (16)")
    bench.add_argument(
        "--budget", type=_seconds, default=2.0, help="seconds spent timing each row (2)"
    )
    bench.add_argument(
        "--display-seconds",
        type=_seconds,
        default=5.0,
        help="seconds of headless show loop to measure (5)",
    )
    bench.add_argument("--json", action="store_true", help="print JSON instead of tables")
    bench.set_defaults(func=_bench)

    build = commands.add_parser(
        "build-engines",
        help="make the FP16 variants and TensorRT engines of a show's bundle for this PC",
        description="Convert each stage of the show's bundle to FP16 for ONNX Runtime's CUDA "
        "rung (on any machine) and, where TensorRT and an NVIDIA GPU are present, build one "
        "TensorRT engine per stage; check each against ONNX Runtime on the CPU, alone and end "
        "to end, and cache what passes where `installation run` looks for it. The last line "
        "says what was kept and what not. Run again after changing the bundle, the GPU, "
        "ONNX Runtime or TensorRT; stale ones are never used.",
    )
    _show_argument(build, optional=True)
    build.add_argument(
        "--fp32",
        action="store_true",
        help="build in FP32 only (default: FP16 where the GPU has it and the error is small)",
    )
    build.add_argument(
        "--tolerance",
        type=_seconds,
        help="largest error accepted from FP16, on a 0..1 scale (default 0.02, about 5 of 255)",
    )
    build.add_argument(
        "--engines",
        type=Path,
        metavar="DIR",
        help="engine cache folder (default: the show's [engine] engines, else the user cache)",
    )
    build.set_defaults(func=_build_engines)

    check_gpu = commands.add_parser(
        "gpu-check",
        help="run the GPU tests, build-engines and bench once, into one JSON report",
        description="On a machine with an NVIDIA GPU: versions, pytest -m gpu, build-engines "
        "and every rung of the ladder measured (frames/s at batch 1 and 8, the chained output "
        "against ONNX Runtime on the CPU, the display loop), each phase with a time limit, "
        "written to one JSON report even when phases fail (docs/gpu.md). scripts/gpu-check.sh "
        "installs what the GPU rungs need first.",
    )
    _show_argument(check_gpu, optional=True)
    check_gpu.add_argument(
        "--out",
        type=Path,
        default=Path("out/gpu-check/gpu-check.json"),
        help="the report (default out/gpu-check/gpu-check.json; engines are built beside it)",
    )
    check_gpu.add_argument(
        "--budget", type=_seconds, default=0.5, help="seconds spent timing each figure (0.5)"
    )
    check_gpu.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="PHASE",
        help="leave out a phase: versions, pytest, build-engines or bench (repeatable)",
    )
    check_gpu.set_defaults(func=_gpu_check)

    status = commands.add_parser(
        "status", help="what the running show is doing (for staff, from a shell on the PC)"
    )
    status.add_argument("--json", action="store_true", help="print the raw health record")
    status.add_argument(
        "--file", type=Path, help="health record to read (default: the running show's)"
    )
    status.add_argument(
        "--chrony",
        metavar="HOST",
        help="chronyd to ask for the clock offset of a show in a room: its command socket or "
        "address (default: this PC's)",
    )
    status.set_defaults(func=_status)

    learn = commands.add_parser(
        "midi-learn", help="print what a MIDI controller sends, to write a show's [midi] map"
    )
    learn.add_argument("--port", help="the input whose name contains this (default: the first)")
    learn.set_defaults(func=_midi_learn)

    fixture = commands.add_parser(
        "dmx-fixture", help="write the fixture file a lighting desk imports (see docs/dmx.md)"
    )
    fixture.add_argument(
        "--format",
        choices=("ofl", "qxf"),
        required=True,
        help="ofl: Open Fixture Library JSON; qxf: QLC+ fixture definition",
    )
    fixture.add_argument("--out", type=Path, required=True, metavar="FILE", help="file to write")
    _show_argument(fixture, optional=True)
    fixture.set_defaults(func=_dmx_fixture)

    commands.add_parser(
        "export",
        help="workshop: turn trained checkpoints into a model bundle (needs torch)",
        subcommands=_register_export,
    )
    return parser


class _Command(argparse.ArgumentParser):
    """A command whose own subcommands (``subcommands`` adds them) are added when it is
    chosen, just before its arguments are parsed, so that building the whole parser imports
    no more than the runtime needs."""

    def __init__(
        self,
        *args: Any,
        subcommands: Callable[[argparse.ArgumentParser], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._subcommands = subcommands

    def parse_known_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self._subcommands is not None:
            add, self._subcommands = self._subcommands, None
            add(self)
        return super().parse_known_args(args, namespace)


def _register_export(parser: argparse.ArgumentParser) -> None:
    from export.cli import register

    register(parser.add_subparsers(dest="export_command", required=True, metavar="KIND"))


def _show_argument(parser: argparse.ArgumentParser, optional: bool) -> None:
    parser.add_argument(
        "show",
        type=Path,
        nargs="?" if optional else None,
        metavar="SHOW",
        help="show file (TOML)" + ("; default: shows/default.toml" if optional else ""),
    )


def _video_arguments(parser: argparse.ArgumentParser, preset: str) -> None:
    parser.add_argument(
        "--crf",
        type=int,
        help=f"H.264 quality: 0 (lossless) to 51, lower is better and larger ({DEFAULT_CRF})",
    )
    parser.add_argument(
        "--preset",
        choices=PRESETS,
        metavar="PRESET",
        help=f"H.264 speed against size: {', '.join(PRESETS)} ({preset})",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1e7:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _size(text: str) -> tuple[int, int]:
    """``WxH`` for a picture that leaves the show, at most MAX_SIZE (FFmpeg's scaler and
    encoders refuse far larger pictures with a bare "Invalid argument")."""
    width, _, height = text.lower().partition("x")
    if not (
        width.isdigit()
        and height.isdigit()
        and 0 < int(width) <= MAX_SIZE[0]
        and 0 < int(height) <= MAX_SIZE[1]
    ):
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT such as 1920x1080, up to {MAX_SIZE[0]}x{MAX_SIZE[1]}, "
            f"got {text!r}"
        )
    return int(width), int(height)


def _run(args: argparse.Namespace) -> int:
    # Before anything slow: a SIGHUP while the bundle loads must not end the show. Kept
    # until the process exits, so that no late signal changes how it ends.
    signals = RunSignals().install()
    from installation.session import run_show

    mode = "headless" if args.headless else "windowed" if args.windowed else None
    try:
        return run_show(args.show, mode, args.duration, signals, _recording(args))
    finally:
        signals.ended()


def _recording(args: argparse.Namespace) -> list[Output]:
    """``--record``'s feed, checked before the show loads; none without ``--record``."""
    if args.record is None:
        _only_with("--record FILE", args, "record_size", "force", "crf", "preset")
        return []
    from installation.output.video_file import VideoTarget, recorder

    target = VideoTarget.checked(
        args.record, args.force, "--record", args.record_size, args.crf, args.preset
    )
    return [recorder(target)]


def _only_with(needs: str, args: argparse.Namespace, *names: str) -> None:
    """One line for an option given where it means nothing, rather than ignoring it."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value is not False:
            raise UserError(f"--{name.replace('_', '-')} is for {needs}")


def _render(args: argparse.Namespace) -> int:
    from installation.output.video_file import VideoTarget, is_video
    from installation.render import FrameFolder, render
    from installation.session import open_show

    out: FrameFolder | VideoTarget
    if is_video(args.out):
        out = VideoTarget.checked(args.out, args.force, "--out", args.size, args.crf, args.preset)
    else:
        _only_with("a video --out (.mp4, .mkv or .mov)", args, "crf", "preset")
        out = FrameFolder(args.out, args.force)
    _show, ladder, conductor = open_show(args.show)
    done = render(ladder.pipeline, conductor, args.seconds, args.fps, out, args.size)
    print(f"wrote {args.out}: {done.summary()}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from installation.session import open_show

    show, ladder, _ = open_show(args.show)
    pipeline = ladder.pipeline
    width, height = pipeline.bundle.output_size
    stages = " -> ".join(stage.spec.name for stage in pipeline.stages)
    warned = f", {len(ladder.warnings)} warning(s) above" if ladder.warnings else ""
    print(
        f"ok: {show.path}: bundle {pipeline.bundle.name} ({stages}), {width}x{height} frames, "
        f"on {ladder.name}{warned}"
    )
    return 0


def _build_engines(args: argparse.Namespace) -> int:
    from installation.engine.gpu.build import DEFAULT_TOLERANCE, build_engines
    from installation.engine.gpu.cuda import GpuUnavailable
    from installation.engine.gpu.engine_cache import EngineCache, default_cache_dir
    from installation.session import load_parts

    show, bundle, _conductor = load_parts(args.show)
    folder = args.engines or show.engine.engines or default_cache_dir()
    try:
        build_engines(
            bundle,
            EngineCache(folder),
            precision="fp32" if args.fp32 else "auto",
            tolerance=args.tolerance or DEFAULT_TOLERANCE,
        )
    except GpuUnavailable as exc:
        raise UserError(f"build-engines needs an NVIDIA GPU with TensorRT: {exc}") from None
    return 0


def _bench(args: argparse.Namespace) -> int:
    from installation.bench import format_table, run_bench
    from installation.engine.ladder import ladder_for
    from installation.session import load_parts

    if args.batch < 1:
        raise UserError(f"--batch: expected a positive integer, got {args.batch}")
    show, bundle, _conductor = load_parts(args.show)
    engine = show.engine
    report = run_bench(
        ladder_for(bundle, "auto", engine.threads or None, engine.engines),
        show,
        args.batch,
        args.budget,
        args.display_seconds,
        show.display.fps,
    )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for row in report["skipped"]:
            print(f"skipped {row['backend']}: {row['reason']}")
        print(format_table(report["stages"]))
        print()
        print(format_table(report["display"]))
    return 0


def _gpu_check(args: argparse.Namespace) -> int:
    """Exit 0 when every phase ran or was skipped, 1 when one failed; the report either way."""
    from installation.gpu_check import gpu_check

    report = gpu_check(args.show, args.out, args.budget, args.skip)
    for rung in report["rungs"]:
        print(
            f"{rung['name']}: " + ("loaded" if rung["loaded"] else f"not loaded: {rung['reason']}")
        )
    print(f"report: {args.out}")
    return 1 if any(p["status"] == "failed" for p in report["phases"].values()) else 0


def _midi_learn(args: argparse.Namespace) -> int:
    """Runs until Ctrl-C (exit 130); no input at all is a user error (exit 2)."""
    from installation.control.midi import NoPort, learn

    try:
        learn(args.port)
    except NoPort as exc:
        raise UserError(f"midi-learn: {exc}") from None
    return 0


def _dmx_fixture(args: argparse.Namespace) -> int:
    """The scene channel's bands name the show's scenes."""
    from installation.control.dmx.fixture import write_fixture
    from installation.score.show import load_show

    show = load_show(args.show)
    try:
        write_fixture(args.format, args.out, [scene.name for scene in show.scenes])
    except OSError as exc:
        raise UserError(f"{args.out}: cannot write the fixture: {exc.strerror}") from None
    print(f"fixture: {args.out}")
    return 0


def _status(args: argparse.Namespace) -> int:
    """Exit 0 while a show runs and updates its record, 1 otherwise (for scripts)."""
    from installation.service.clock_sync import read_tracking
    from installation.service.health import find_status_file, format_status, is_current, read_status

    path = args.file or find_status_file()
    if path is None:
        print("installation: not running (no health record found)")
        return 1
    record = read_status(path)
    try:
        if args.json:
            text = json.dumps(record, indent=2)
        else:
            # In a room the clock decides which frame is on the screen: ask chrony about it.
            clock = read_tracking(args.chrony) if "sync" in record else None
            text = format_status(record, clock=clock)
        current = is_current(record, time.time())
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # The file is anyone's to edit or damage: what is wrong with it, not a traceback.
        raise UserError(f"{path}: a damaged status file ({type(exc).__name__}: {exc})") from None
    print(text)
    return 0 if current else 1
