"""Strength hold: keep a dreamed video's dream from piling up where the camera stands still.

The carried dream is dreamed again every frame; where nothing moves, nothing washes it out, so
it grows frame after frame until the source is buried under a fixed mesh of eyes (issue 24).
This finish step measures the dream's strength, mean |dream - source| over the frame (RGB
0..255), and where it exceeds `limit` times frame 0's (the full first-frame dream), pulls the
frame back towards its source frame by the same factor everywhere: what the dream paints
stays, only its amount is held.

Images are uint8 RGB (H, W, 3).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Finish = Callable[[int, np.ndarray, np.ndarray], np.ndarray]


def strength(dreamed: np.ndarray, source: np.ndarray) -> float:
    """Mean |dreamed - source| over pixels and channels."""
    return float(np.abs(dreamed.astype(np.float32) - source.astype(np.float32)).mean())


def held(dreamed: np.ndarray, source: np.ndarray, most: float) -> np.ndarray:
    """`dreamed` pulled towards `source` so that its strength is at most `most`."""
    now = strength(dreamed, source)
    if now <= most or now == 0:
        return dreamed
    src = source.astype(np.float32)
    out = src + (dreamed.astype(np.float32) - src) * (most / now)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def strength_finish(source: Callable[[int], np.ndarray], limit: float, *, offset: int = 0,
                    first: tuple[np.ndarray, np.ndarray] | None = None) -> Finish:
    """Finish step of the video pipeline: frame t's dream held at most `limit` times the first
    dream's strength, against frame t's own source frame `source(t)`. `offset` and `first` as
    in pipelines.warp.color.coherence_finish (a chunk dreamed on a cluster worker)."""
    # source frame 0 now, while the source window still holds it (a resumed render too)
    first_source = source(0).copy() if first is None else first[0]
    base: list[float] = [] if first is None else [strength(first[1], first_source)]

    def finish(t: int, dreamed: np.ndarray, first_frame: np.ndarray) -> np.ndarray:
        if offset + t == 0:
            return dreamed
        if not base:  # frame 0's dream never changes: its strength once
            base.append(strength(first_frame, first_source))
        return held(dreamed, source(t), limit * base[0])

    return finish

