"""GIFs quantized by libimagequant (the `imagequant` bindings), the quantizer gifski uses, and
written by Pillow.

Why: ffmpeg's palettegen is a median cut in RGB; libimagequant builds its palette in a
perceptual colour space and refines it with k-means, and its dither is an edge-aware
Floyd-Steinberg. When dithering, each frame is remapped with the picture shown before it as
the *background* (``liq_image_set_background``, gifski's trick): a pixel that the shown picture
represents at least as well as the palette does becomes transparent, and static areas are not
dithered again, so the dither does not crawl between frames. Pillow writes every frame cropped
to the rectangle that changed (disposal 1: keep the last frame) with its transparent index; it
does the LZW, never us. The encoder (render.encoding.encoder) then runs gifsicle -O3 over the file,
which makes unchanged pixels transparent and drops repeated colour tables.

Palettes: ``frame`` (one per frame: the best PSNR at equal size on the bench clips), ``group``
(one per `GROUP_FRAMES` frames) or ``clip`` (one histogram of every frame: no palette
changes at all). One colour of each palette is the transparent one, so a 256-colour GIF has
255 visible colours per palette.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import imagequant
import numpy as np
from PIL import Image

from render.encoding.gif_palette import GIF_PALETTES as IQ_PALETTES
from render.encoding.gif_palette import GROUP_FRAMES
from render.errors import UserError

# libimagequant speed 1 (slowest) .. 10: its default 3 took 1.7-1.9x as long as 6 on the zoom
# bench clip for -0.5 dB (clip palette) to +0.1 dB (frame palettes) at about the same size
SPEED = 6
_lib, _ffi = imagequant.lib, imagequant.ffi


def _check(code: int, what: str) -> None:
    if code != _lib.LIQ_OK:
        raise RuntimeError(f"libimagequant {what}: {imagequant._get_error_msg(code)}")


class _Image:
    """A liq_image over an RGBA copy of `rgb` (kept alive here: libimagequant does not copy
    the pixels)."""

    def __init__(self, attr: Any, rgb: np.ndarray) -> None:
        h, w = rgb.shape[:2]
        self.rgba = np.empty((h, w, 4), np.uint8)
        self.rgba[..., :3] = rgb
        self.rgba[..., 3] = 255
        self._buf = _ffi.from_buffer(self.rgba)
        self.ptr = _lib.liq_image_create_rgba(attr, self._buf, w, h, 0.0)
        if self.ptr == _ffi.NULL:
            raise RuntimeError("libimagequant could not take the frame")
        self._keep: list[_Image] = []

    def set_background(self, background: _Image) -> None:
        """Remap on top of `background` (which this image then owns and frees)."""
        _check(_lib.liq_image_set_background(self.ptr, background.ptr), "background")
        background.ptr = _ffi.NULL
        self._keep.append(background)

    def destroy(self) -> None:
        if self.ptr != _ffi.NULL:
            _lib.liq_image_destroy(self.ptr)
            self.ptr = _ffi.NULL


@contextmanager
def _attr(colors: int) -> Iterator[Any]:
    attr = _lib.liq_attr_create()
    try:
        _check(_lib.liq_set_max_colors(attr, colors), "max colours")
        _check(_lib.liq_set_speed(attr, SPEED), "speed")
        yield attr
    finally:
        _lib.liq_attr_destroy(attr)


_TRANSPARENT = {"r": 0, "g": 0, "b": 0, "a": 0}


def _palette(attr: Any, frames: Sequence[np.ndarray]) -> Any:
    """A liq_result: one palette for `frames` (with a transparent entry) from a histogram."""
    hist = _lib.liq_histogram_create(attr)
    try:
        _check(_lib.liq_histogram_add_fixed_color(hist, _TRANSPARENT, 0.0), "fixed colour")
        for frame in frames:
            image = _Image(attr, frame)
            try:
                _check(_lib.liq_histogram_add_image(hist, attr, image.ptr), "histogram")
            finally:
                image.destroy()
        result = _ffi.new("liq_result**")
        _check(_lib.liq_histogram_quantize(hist, attr, result), "quantize")
        return result[0]
    finally:
        _lib.liq_histogram_destroy(hist)


def _palette_array(result: Any) -> np.ndarray:
    """(n, 4) uint8 RGBA palette of a liq_result."""
    pal = _lib.liq_get_palette(result)
    return np.array([(c.r, c.g, c.b, c.a) for c in pal.entries[0:pal.count]], np.uint8)


def _groups(count: int, palette: str) -> list[range]:
    step = {"clip": count, "group": GROUP_FRAMES, "frame": 1}[palette]
    return [range(i, min(i + step, count)) for i in range(0, count, step)]


def quantize(frames: Sequence[np.ndarray], colors: int = 256, dither: float = 0.0,
             palette: str = "frame", temporal: bool | None = None
             ) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Per frame: (indices HxW uint8, RGB palette (n, 3), transparent index). With
    `temporal` (default: when dithering), each frame is remapped on top of the picture shown
    before it (see the module docstring); without, the transparent index is not used here
    (gifsicle still makes unchanged pixels transparent)."""
    if temporal is None:
        # the background keeps a dither still between frames; with no dither there is
        # nothing to keep still, and it measured larger files at lower PSNR
        temporal = dither > 0
    if palette not in IQ_PALETTES:
        raise UserError(f"gif palette {palette!r} is not one of {', '.join(IQ_PALETTES)}")
    out: list[tuple[np.ndarray, np.ndarray, int]] = []
    shown: np.ndarray | None = None  # what a viewer shows after the previous frame
    with _attr(colors) as attr:
        for group in _groups(len(frames), palette):
            result = _palette(attr, [frames[i] for i in group])
            try:
                _check(_lib.liq_set_dithering_level(result, dither), "dithering level")
                rgba = _palette_array(result)
                transparent = int(np.flatnonzero(rgba[:, 3] == 0)[0])
                for i in group:
                    image = _Image(attr, frames[i])
                    try:
                        if temporal and shown is not None:
                            image.set_background(_Image(attr, shown))
                        h, w = frames[i].shape[:2]
                        indices = np.empty((h, w), np.uint8)
                        _check(_lib.liq_write_remapped_image(
                            result, image.ptr, _ffi.from_buffer(indices), indices.size), "remap")
                    finally:
                        image.destroy()
                    picture = rgba[indices, :3]
                    if shown is not None:
                        keep = indices == transparent
                        picture[keep] = shown[keep]
                    shown = picture
                    out.append((indices, rgba[:, :3].copy(), transparent))
            finally:
                _lib.liq_result_destroy(result)
    return out


class GifQuantizer:
    """Collects a clip's frames, then writes them as one GIF (`save`). Frames are kept in
    memory until then: a clip palette needs every frame before the first can be mapped (the
    ffmpeg path holds them too)."""

    def __init__(self, delay_cs: int, loop: int, colors: int = 256, dither: float = 0.0,
                 palette: str = "frame", temporal: bool | None = None) -> None:
        if palette not in IQ_PALETTES:
            raise UserError(f"gif palette {palette!r} is not one of {', '.join(IQ_PALETTES)}")
        if not 0.0 <= dither <= 1.0:
            raise UserError(f"gif dither level must be from 0 to 1, got {dither!r}")
        self.delay_cs, self.loop, self.colors = delay_cs, loop, colors
        self.dither, self.palette, self.temporal = float(dither), palette, temporal
        self.frames: list[np.ndarray] = []

    def add(self, frame: np.ndarray) -> None:
        self.frames.append(frame.copy())

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Quantize the frames and write the GIF to `path`."""
        images = []
        for indices, rgb, transparent in quantize(self.frames, self.colors, self.dither,
                                                  self.palette, self.temporal):
            image = Image.fromarray(indices, "P")
            image.putpalette(rgb.reshape(-1).tobytes(), "RGB")
            image.info["transparency"] = transparent
            images.append(image)
        # loop: 0 = forever, N = N more times; -1 (play once) = no NETSCAPE block at all
        extra: dict[str, Any] = {} if self.loop < 0 else {"loop": self.loop}
        # disposal 1: each frame stays under the next, which is cropped by Pillow to the
        # rectangle that differs from it (identical frames are merged, their delays added)
        images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                       duration=self.delay_cs * 10, disposal=1, optimize=False, **extra)
        return Path(path)


def write_gif(path: str | os.PathLike[str], frames: Sequence[np.ndarray], delay_cs: int,
              loop: int, **options: Any) -> Path:
    """Quantize `frames` (uint8 HxWx3 RGB) and write them to `path` as a GIF with `delay_cs`
    centiseconds per frame (options: see GifQuantizer)."""
    gif = GifQuantizer(delay_cs, loop, **options)
    gif.frames = list(frames)
    return gif.save(path)
