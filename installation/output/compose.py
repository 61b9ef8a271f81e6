"""The picture on screen as an array, and the one scaler for pictures that leave the show.

``on_screen`` is what the display loop presented (a ``Pick`` and a brightness) as pixels:
``a`` blended towards ``b`` by the weight, then dimmed, in 8-bit sRGB and rounded to the
nearest level, as the SDL presenter does (the GL presenter blends in linear light and differs
from this only mid-morph, by a few levels). ``render`` uses the same dimming, so a rendered
frame and a recorded one of the same moment are the same picture.

``fit`` scales with FFmpeg's Lanczos (swscale, through PyAV, which the video files need
anyway): faces scaled up several times stay sharp without the blocks of nearest-neighbour or
the blur of bilinear, and PNG frames and video frames go through the same scaler.
"""

from __future__ import annotations

import av
import numpy as np
from av.video.reformatter import Interpolation

from installation.display.layout import fit_rect, to_byte
from installation.engine.frames import Frame, Pick


class OnlyOnGpu(ValueError):
    """The frame never left the GPU (TensorRT drawing straight into the GL presenter's
    texture), so there are no pixels on the host to record or send."""


def on_screen(pick: Pick, brightness: float) -> np.ndarray:
    """What the screen shows for ``pick`` at ``brightness``, as H x W x 3 uint8 RGB at the
    larger of the two frames' sizes (adaptive quality may have made one of them smaller)."""
    a = _pixels(pick.a)
    alpha = to_byte(pick.weight)
    if pick.b is not None and alpha > 0:
        b = _pixels(pick.b)
        if a.shape != b.shape:
            size = (max(a.shape[1], b.shape[1]), max(a.shape[0], b.shape[0]))
            a, b = fit(a, size), fit(b, size)
        mixed = a.astype(np.uint16) * (255 - alpha) + b.astype(np.uint16) * alpha
        a = ((mixed + 127) // 255).astype(np.uint8)
    return dimmed(a, brightness)


def dimmed(image: np.ndarray, brightness: float) -> np.ndarray:
    """The picture as the screen shows it during a fade (rounded like the display's 0..255)."""
    level = to_byte(brightness)
    if level == 255:
        return image
    return ((image.astype(np.uint16) * level + 127) // 255).astype(np.uint8)


def fit(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """``image`` scaled with Lanczos to fit ``size`` (width, height), aspect kept, centred on
    black; the image itself when it already has that size or ``size`` is None."""
    height, width = image.shape[:2]
    if size is None or size == (width, height):
        return image
    x, y, w, h = fit_rect(width, height, *size)
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    scaled = frame.reformat(w, h, interpolation=Interpolation.LANCZOS).to_ndarray()
    if (w, h) == size:
        return scaled
    canvas = np.zeros((size[1], size[0], 3), np.uint8)
    canvas[y : y + h, x : x + w] = scaled
    return canvas


def _pixels(frame: Frame) -> np.ndarray:
    if frame.image is None:
        raise OnlyOnGpu("the picture is only on the GPU (TensorRT into the GL presenter)")
    return frame.image
