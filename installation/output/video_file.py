"""Video files through PyAV (FFmpeg's libraries, in process): ``render --out FILE.mp4`` and
``run --record FILE.mp4``.

``.mp4`` and ``.mkv`` are H.264 in yuv420p, which every player, browser and website takes;
``.mov`` is ProRes 422 HQ (10-bit 4:2:2), which editors cut without re-encoding losses. All are
tagged BT.709 (primaries, transfer, matrix) in limited range, as HD video is, and converted
with the BT.709 matrix, so players show the colours the screen showed.

A file is written under a hidden temporary name beside it and renamed only when whole, so an
interrupted render or recording (an exception, Ctrl-C, ``kill -9``, a full disk) never
leaves a half-written, unplayable file under the name asked for. An existing file is replaced
only with ``--force``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from installation.errors import UserError
from installation.output import DEFAULT_CRF, RECORD_PRESET, frame_rate
from installation.output.compose import fit
from installation.output.feed import Output, ScreenFeed

log = logging.getLogger(__name__)

#: ISO/IEC 23091-2 code points for BT.709, for the primaries, transfer and matrix tags.
BT709 = 1


@dataclass(frozen=True)
class Encoding:
    """How one kind of file is written."""

    container: str
    codec: str
    pixels: str
    describe: str


H264 = "H.264"
ENCODINGS = {
    ".mp4": Encoding("mp4", "libx264", "yuv420p", H264),
    ".mkv": Encoding("matroska", "libx264", "yuv420p", H264),
    ".mov": Encoding("mov", "prores_ks", "yuv422p10le", "ProRes 422 HQ"),
}
#: A rendered .mp4 has its index at the front, so a website can play it while it loads. Not
#: for recordings: moving the index rewrites the whole file when the show stops.
FASTSTART = {"movflags": "+faststart"}
#: prores_ks's profile 3 is 422 HQ; "apl0" marks the file as Apple's encoder would.
PRORES_OPTIONS = {"profile": "3", "vendor": "apl0"}
#: Seconds of show time between two pictures beyond which the file does not keep the gap:
#: show time jumped (a PC of a room adopting the room's time), the show did not stall.
MAX_GAP = 5.0


def recorder(target: VideoTarget) -> Output:
    """``run --record``: a feed of the screen into ``target``, opened when the show plays, at
    the show's frame rate and, without ``--record-size``, at the size of its whole picture
    (not the first frame's, which adaptive quality may have drawn with fewer stages); the
    file is finished and renamed on the feed's thread."""

    def start(fps: float, picture: tuple[int, int]) -> ScreenFeed:
        video = target.open(fps, RECORD_PRESET, faststart=False)
        name = f"recording {target.path}"
        size = target.size or even(picture)
        return ScreenFeed("record", name, video.write, size, finish=video.close)

    return start


def even(size: tuple[int, int]) -> tuple[int, int]:
    """``size`` (width, height) rounded up to even numbers, as 4:2:0 and 4:2:2 video must be."""
    width, height = size
    return width + width % 2, height + height % 2


def is_video(path: Path) -> bool:
    """Whether ``path`` names a video file (by its suffix) rather than a folder of frames."""
    return path.suffix.lower() in ENCODINGS


@dataclass(frozen=True)
class VideoTarget:
    """A video file to write, checked before any model is loaded so that a mistake costs
    nothing. ``option`` names the command-line option in messages; ``size`` (None: the first
    picture's for a render, the show's whole picture for a recording), ``crf`` and
    ``preset`` are None for their defaults (``preset``'s depends on the caller: a render can
    take its time, a recording must keep up with the screen)."""

    path: Path
    option: str
    size: tuple[int, int] | None = None
    crf: int | None = None
    preset: str | None = None

    @classmethod
    def checked(
        cls,
        path: Path,
        force: bool,
        option: str,
        size: tuple[int, int] | None = None,
        crf: int | None = None,
        preset: str | None = None,
    ) -> VideoTarget:
        where = f"{option} {path}"
        encoding = ENCODINGS.get(path.suffix.lower())
        if encoding is None:
            kinds = ", ".join(ENCODINGS)
            raise UserError(f"{where}: not a video file name (it must end in {kinds})")
        if encoding.describe != H264 and (crf is not None or preset is not None):
            raise UserError(f"{where}: --crf and --preset set H.264 (.mp4, .mkv), not ProRes")
        if crf is not None and not 0 <= crf <= 51:
            raise UserError(f"--crf {crf}: expected 0 (lossless) to 51")
        if size is not None and (size[0] % 2 or size[1] % 2):
            raise UserError(f"{where}: {size[0]}x{size[1]}: video needs an even width and height")
        if path.is_dir():
            raise UserError(f"{where}: is a folder")
        if path.exists() and not force:
            raise UserError(f"{where}: exists; pass --force to replace it")
        return cls(path, option, size, crf, preset)

    @property
    def encoding(self) -> Encoding:
        return ENCODINGS[self.path.suffix.lower()]

    def open(self, fps: float, preset: str, faststart: bool = True) -> VideoFile:
        """Start writing at ``fps`` frames per second, with x264's ``preset`` unless the user
        chose one; ``faststart`` puts an .mp4's index at the front (``FASTSTART``)."""
        return VideoFile(self, fps, self.preset or preset, faststart)


class VideoFile:
    """One video file being written: ``write`` each picture, then ``close`` (rename into
    place) or ``abort`` (nothing left). Used from one thread at a time."""

    def __init__(self, target: VideoTarget, fps: float, preset: str, faststart: bool) -> None:
        self.target = target
        self.path = target.path
        #: None until the first picture when the target has no size: then that picture's,
        #: made even, as 4:2:0 and 4:2:2 video must be.
        self.size = target.size
        self.frames = 0
        self._rate = frame_rate(fps)
        self._max_step = round(MAX_GAP * self._rate)
        self._preset = preset
        self._faststart = faststart and target.encoding.container == "mp4"
        self._last = -1
        #: The show time's frame number of the file's frame 0 (set by the first picture).
        self._origin: int | None = None
        #: The show time's frame number of the last picture: a jump is judged from it, not
        #: from ``_last``, which runs ahead of it after two pictures on one frame number.
        self._previous = 0
        self._temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self._container: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None

    def write(self, image: np.ndarray, t: float) -> None:
        """Add ``image`` (H x W x 3 uint8 RGB) shown at ``t`` seconds; it is scaled to the
        file's size if it differs. Frames get their time from ``t``, counted from the first
        picture, one frame-time apart at least, so a recording that dropped frames keeps in
        step with the show; where show time jumps (back, or over ``MAX_GAP`` ahead) the file
        goes on from its last frame."""
        if self.size is None:
            height, width = image.shape[:2]
            self.size = even((width, height))
        stream = self._stream or self._start()
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(fit(image, self.size)), "rgb24")
        frame = frame.reformat(
            format=self.target.encoding.pixels,
            dst_colorspace=Colorspace.ITU709,
            dst_color_range=ColorRange.MPEG,
            dst_color_trc=BT709,
            dst_color_primaries=BT709,
        )
        number = round(t * self._rate)
        if self._origin is None or not 0 <= number - self._previous <= self._max_step:
            self._origin = number - self._last - 1
        self._previous = number
        self._last = max(self._last + 1, number - self._origin)
        frame.pts = self._last
        self._mux(stream.encode(frame))
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder, finish the file and rename it into place (nothing is written
        when no picture came)."""
        if self._container is None or self._stream is None:
            return
        try:
            self._mux(self._stream.encode(None))
            try:
                self._container.close()
                self._container = None
                descriptor = os.open(self._temporary, os.O_RDONLY)
                try:
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)
                os.replace(self._temporary, self.path)
            except (OSError, av.FFmpegError) as exc:
                raise UserError(f"{self.path}: cannot write the video: {_why(exc)}") from None
        except BaseException:
            self.abort()
            raise
        width, height = self.size or (0, 0)
        log.info(
            "wrote %s: %d frames, %dx%d %s", self.path, self.frames, width, height, self.describe
        )

    def abort(self) -> None:
        """Stop writing and remove the temporary file: nothing under the file's name."""
        container, self._container = self._container, None
        if container is not None:
            with contextlib.suppress(OSError, av.FFmpegError):
                container.close()
        self._temporary.unlink(missing_ok=True)

    @property
    def describe(self) -> str:
        return f"{self.target.encoding.describe} at {float(self._rate):g} fps"

    def _start(self) -> av.VideoStream:
        encoding = self.target.encoding
        assert self.size is not None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            container = av.open(
                str(self._temporary),
                "w",
                format=encoding.container,
                options=FASTSTART if self._faststart else {},
            )
        except (OSError, av.FFmpegError) as exc:
            raise UserError(
                f"{self.target.option} {self.path}: cannot write: {_why(exc)}"
            ) from None
        self._container = container
        if encoding.codec == "libx264":
            crf = DEFAULT_CRF if self.target.crf is None else self.target.crf
            options = {"crf": str(crf), "preset": self._preset}
        else:
            options = PRORES_OPTIONS
        stream = container.add_stream(encoding.codec, rate=self._rate, options=options)
        stream.width, stream.height = self.size
        stream.pix_fmt = encoding.pixels
        stream.time_base = 1 / self._rate
        context = stream.codec_context
        context.color_primaries = context.color_trc = context.colorspace = BT709
        context.color_range = ColorRange.MPEG
        self._stream = stream
        return stream

    def _mux(self, packets: list[av.Packet]) -> None:
        assert self._container is not None
        try:
            self._container.mux(packets)
        except (OSError, av.FFmpegError) as exc:
            raise UserError(f"{self.path}: cannot write the video: {_why(exc)}") from None


def _why(error: OSError | av.FFmpegError) -> str:
    """What went wrong, for a line that already names the file (FFmpeg's errors carry the
    same ``strerror`` as the OS's)."""
    return getattr(error, "strerror", None) or str(error)
