"""GIF specifics: frame delays in whole centiseconds, and the two-pass palette (palettegen,
then paletteuse with a dither) as one ffmpeg filter graph. render.encoding.encoder runs it."""

from __future__ import annotations

import math
import numbers
import re

from render.errors import UserError

GIF_DITHERS = ("sierra2_4a", "floyd_steinberg", "bayer", "bayer:N (N=0..5)", "none")
GIF_PALETTES = ("clip", "group", "frame")  # group: imagequant only (GROUP_FRAMES frames)
FFMPEG_PALETTES = ("clip", "frame")
GROUP_FRAMES = 10  # frames that share one palette with `palette: group`
# who quantizes and writes a GIF: ffmpeg (palettegen/paletteuse) or libimagequant + Pillow
# (render.encoding.gif_imagequant); see the README's "Loops and GIFs" for the measurements
GIF_ENCODERS = ("ffmpeg", "imagequant")


def gif_timing(fps: float) -> tuple[int, float]:
    """Return ``(delay_cs, effective_fps)`` for a GIF at ``fps``.

    GIF delays are whole centiseconds, so the delay is ``round(100 / fps)`` (half up), never
    below 2 cs because browsers slow down 0-1 cs delays; effective fps is ``100 / delay``.
    """
    if not isinstance(fps, numbers.Real) or not math.isfinite(fps) or fps <= 0:
        raise UserError(f"fps must be a positive number, got {fps!r}")
    delay = max(2, math.floor(100.0 / float(fps) + 0.5))
    return delay, 100.0 / delay


def gif_dither_option(dither: str) -> str:
    """Map ``sierra2_4a``/``floyd_steinberg``/``none``/``bayer``/``bayer:N`` to paletteuse args."""
    if dither in ("sierra2_4a", "floyd_steinberg", "none", "bayer"):
        return f"dither={dither}"
    match = re.fullmatch(r"bayer:([0-5])", dither)
    if match:
        return f"dither=bayer:bayer_scale={match.group(1)}"
    raise UserError(f"gif_dither {dither!r} is not one of {', '.join(GIF_DITHERS)}")


def palette_graph(dither: str, colors: int, palette: str) -> str:
    """The filter graph from input [0:v] to [out]: a palette of `colors`, then the frames
    mapped to it with `dither`. `palette`: clip = one palette from the whole clip, weighted to
    what changes (no palette flicker); frame = one per frame (better colours per frame, larger
    file, may flicker)."""
    dither_opt = gif_dither_option(dither)
    if palette not in FFMPEG_PALETTES:
        more = " (group needs the imagequant encoder)" if palette in GIF_PALETTES else ""
        raise UserError(f"gif palette {palette!r} is not one of {', '.join(FFMPEG_PALETTES)} "
                        f"for the ffmpeg encoder{more}")
    stats, new = ("diff", "") if palette == "clip" else ("single", ":new=1")
    return (
        # reserve_transparent=0: all colours go to the picture (we never use transparency)
        f"[0:v]split[a][b];[a]palettegen=stats_mode={stats}:max_colors={colors}:"
        f"reserve_transparent=0[p];"
        f"[b][p]paletteuse={dither_opt}:diff_mode=rectangle{new}[out]"
    )
