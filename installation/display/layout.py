"""Where the picture goes in the window, and the 0..255 levels it is drawn with.

Kept apart from SDL so the arithmetic can be tested on its own: faces must never be
stretched, whatever the projector or screen the gallery plugs in.
"""


def fit_rect(src_w: int, src_h: int, dst_w: int, dst_h: int) -> tuple[int, int, int, int]:
    """Return ``(x, y, w, h)``: the largest rectangle with the source's aspect ratio that fits
    in a ``dst_w`` x ``dst_h`` output, centred, so the rest becomes black bars.

    Integer arithmetic only, so the same sizes always give the same pixels and a matching
    aspect ratio fills the output exactly.
    """
    if src_w <= 0 or src_h <= 0:
        raise ValueError(f"source size must be positive, got {src_w}x{src_h}")
    if dst_w < 0 or dst_h < 0:
        raise ValueError(f"output size must not be negative, got {dst_w}x{dst_h}")
    if src_w * dst_h >= src_h * dst_w:
        w = dst_w
        h = (2 * src_h * dst_w + src_w) // (2 * src_w)
    else:
        h = dst_h
        w = (2 * src_w * dst_h + src_h) // (2 * src_h)
    return (dst_w - w) // 2, (dst_h - h) // 2, w, h


def portrait_rect(
    src_w: int, src_h: int, dst_w: int, dst_h: int, share: float
) -> tuple[int, int, int, int]:
    """Return ``(x, y, w, h)`` for a face shown like a framed print: ``share`` of the output's
    height (0 < share <= 1), centred, never wider than the output; the rest is background."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"portrait share must be more than 0 up to 1, got {share}")
    x, y, w, h = fit_rect(src_w, src_h, dst_w, round(dst_h * share))
    return x, y + (dst_h - round(dst_h * share)) // 2, w, h


def to_byte(fraction: float) -> int:
    """A blend weight or brightness, 0..1, as SDL's renderer takes it (and the pictures that
    leave the show copy it): 0..255, clamping the small overshoots of float timing."""
    return round(min(max(fraction, 0.0), 1.0) * 255)
