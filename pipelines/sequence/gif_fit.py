"""Fit a GIF under a size cap (`gif.max_mb`): re-encode it smaller — first the frame size, then
the frame rate, then the colours — until it fits, and say what was done.

MB here is 1,000,000 bytes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from render.encoding.encoder import FrameEncoder
from render.media.image import resize
from render.notify import Notify

MIN_SCALE = 0.5  # below this, drop frames instead
COLOR_STEPS = (128, 64, 32)

OpenEncoder = Callable[[Path, tuple[int, int], float, int], FrameEncoder]


def _encode(path: Path, frames: Iterator[np.ndarray], size: tuple[int, int], fps: float,
            every: int, colors: int, open_encoder: OpenEncoder) -> int:
    with open_encoder(path, size, fps / every, colors) as encoder:
        for image in itertools.islice(frames, 0, None, every):
            encoder.write(resize(image, size))
    return path.stat().st_size


def _attempts(scale0: float, colors: int) -> Iterator[tuple[float, int, int]]:
    """(scale, keep every n-th frame, colours), in the order we give them up."""
    scale = scale0
    while scale > MIN_SCALE:
        yield scale, 1, colors
        scale *= 0.85
    yield MIN_SCALE, 1, colors
    yield MIN_SCALE, 2, colors
    for c in COLOR_STEPS:
        if c < colors:
            yield MIN_SCALE, 2, c


def fit_gif(path: Path, max_mb: float, frames: Callable[[], Iterator[np.ndarray]],
            size: tuple[int, int], fps: float, open_encoder: OpenEncoder, colors: int,
            notify: Notify) -> dict[str, Any]:
    """Make the GIF at `path` (already written from `frames()`) fit `max_mb`; returns what
    was done (for the sidecar)."""
    cap = max_mb * 1e6
    first = path.stat().st_size
    result: dict[str, Any] = {"max_mb": max_mb, "original_bytes": first, "bytes": first,
                              "scale": 1.0, "every": 1, "fps": fps, "colors": colors}
    if first <= cap:
        return result
    # GIF size grows about with the pixel count: start from the scale that should just fit
    estimate = min(0.95, math.sqrt(cap / first) * 0.95)
    for scale, every, c in _attempts(estimate, colors):
        dims = (max(2, round(size[0] * scale)), max(2, round(size[1] * scale)))
        got = _encode(path, frames(), dims, fps, every, c, open_encoder)
        result.update(bytes=got, scale=round(scale, 3), every=every, fps=fps / every, colors=c,
                      size=list(dims))
        if got <= cap:
            break
    what = f"{dims[0]}x{dims[1]}"
    if every > 1:
        what += f", {fps / every:g} fps"
    if result["colors"] != colors:
        what += f", {result['colors']} colours"
    fits = "to fit" if result["bytes"] <= cap else "but could not reach"
    notify(f"gif: {path} was {first / 1e6:.1f} MB; re-encoded at {what} {fits} "
           f"{max_mb:g} MB ({result['bytes'] / 1e6:.1f} MB)")
    return result
