"""What leaves the show as pictures, besides the screen: video files (``render --out
FILE.mp4``, ``run --record``), NDI and the web page's thumbnail.

``compose`` makes the picture the screen shows from what the display loop presented;
``feed`` carries it off the display's thread to a sink (an encoder, a sender), dropping
frames rather than ever making the screen wait; ``video_file`` writes H.264 or ProRes files,
``ndi`` sends them, ``thumbnail`` makes the web page's JPEGs on request.
"""

from fractions import Fraction

#: x264's speed/size trade-offs, fastest first (``--preset``). Kept here, away from PyAV, as
#: the command line lists them on every start.
PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)
#: A render may take its time, and the artist keeps the file.
RENDER_PRESET = "medium"
#: A recording's encoder shares the machine with the running show and must keep up with it.
RECORD_PRESET = "veryfast"
#: x264's constant rate factor (``--crf``): 0 is lossless, 51 the worst; 18 looks like the source.
DEFAULT_CRF = 18


def frame_rate(fps: float) -> Fraction:
    """The show's frames per second as the exact fraction video files and NDI stamp:
    60 -> 60/1, 29.97 -> 2997/100 (players show it as written in the show)."""
    return Fraction(fps).limit_denominator(1001)
