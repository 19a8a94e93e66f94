"""What an encoder can be asked for, declared once: the H.264 MP4 options (`Mp4Options`) and
the GIF options (`GifOptions`), with their defaults, bounds and meaning (render.fields). The
presets' `encode.*` and `gif.*` keys are these declarations (pipelines.config.keys), and an
options object checks itself when it is made, with the messages a preset gets.

The defaults are the measured best (README, Loops and GIFs): libimagequant palettes, one per
frame, no dither.
"""

from __future__ import annotations

from dataclasses import dataclass

from render.encoding.gif_palette import GIF_DITHERS, GIF_ENCODERS, GIF_PALETTES, gif_dither_option
from render.encoding.gifsicle import LOSSY_MAX
from render.errors import ConfigError, UserError
from render.fields import Field, check_declared, declared

X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast",
    "medium", "slow", "slower", "veryslow", "placebo",
)
FFMPEG_DITHER = "bayer:3"  # gif.dither's default: ffmpeg's ordered dither


@dataclass(frozen=True)
class Mp4Options:
    """libx264's quality and speed."""

    crf: int = declared(Field("int", 18, low=0, high=51, help="H.264 quality (lower = better)"))
    preset: str = declared(Field("choice", "medium", choices=X264_PRESETS,
                                 help="x264 speed preset (slower = smaller)"))

    def __post_init__(self) -> None:
        check_declared(self, "encode.")


@dataclass(frozen=True)
class GifOptions:
    """Who quantizes a GIF and how (ffmpeg's palettegen/paletteuse or libimagequant), its
    colours, palettes, dither, loop count and gifsicle's lossy level."""

    dither: str = declared(Field("str", FFMPEG_DITHER,
                                 help=f"ffmpeg's dither: one of {', '.join(GIF_DITHERS)}"))
    colors: int = declared(Field("int", 256, low=2, high=256, help="palette size"))
    palette: str = declared(Field(
        "choice", "frame", choices=GIF_PALETTES,
        help="one palette for the clip, per 10 frames (imagequant) or per frame"))
    loop_count: int = declared(Field("int", 0, low=-1, high=65535,
                                     help="0 = loop forever, -1 = play once"))
    encoder: str = declared(Field(
        "choice", "imagequant", choices=GIF_ENCODERS,
        help="imagequant (libimagequant palettes) or ffmpeg (palettegen)"))
    dither_level: float = declared(Field("float", 0.0, low=0, high=1,
                                         help="imagequant's Floyd-Steinberg strength; 0 = none"))
    lossy: int | None = declared(Field("int", None, low=0, high=LOSSY_MAX, nullable=True,
                                       help="gifsicle --lossy level; omitted = lossless"))

    def __post_init__(self) -> None:
        check_declared(self, "gif.")
        try:
            gif_dither_option(self.dither)
        except UserError as exc:
            raise ConfigError("gif.dither", f"gif.dither: {exc}") from None
        if self.encoder == "imagequant" and self.dither != FFMPEG_DITHER:
            raise ConfigError("gif.dither", f"gif.dither: {self.dither} is ffmpeg's dither; "
                              "gif.encoder imagequant dithers by gif.dither_level (0..1), or "
                              "set gif.encoder=ffmpeg")
        if self.encoder == "ffmpeg" and self.dither_level:
            raise ConfigError("gif.dither_level", "gif.dither_level: is imagequant's; "
                              "gif.encoder ffmpeg dithers by gif.dither (e.g. bayer:3, "
                              "sierra2_4a)")
        if self.palette == "group" and self.encoder != "imagequant":
            raise ConfigError("gif.palette", "gif.palette: group needs gif.encoder: "
                                             "imagequant (ffmpeg: clip or frame)")


MP4_DEFAULTS = Mp4Options()
GIF_DEFAULTS = GifOptions()
