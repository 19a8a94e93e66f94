"""Cutting a clip into chunks for the workers, and stitching their frames back together.

A pure plan: the clip's frames 0..n-1 are split at scene cuts first (a cut closer than a
quarter chunk to the previous boundary is ignored, so no tiny chunks), then each stretch
between cuts into equal chunks of at most `chunk` frames. A chunk that starts at a cut (or
at frame 0) starts fresh there. Any other chunk starts `overlap` frames early (`warm`): its dream
warms up over frames the previous chunk also made, and is cross-faded into them, so the seam
is spread over the overlap instead of landing on one frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Chunk:
    """Frames [start, end) are this chunk's; it dreams [warm, end) (warm < start: the frames
    before `start` are cross-faded with the previous chunk's)."""

    index: int
    start: int
    end: int
    warm: int
    at_cut: bool = False  # starts at a scene cut (or frame 0): fresh, no cross-fade

    @property
    def dreamed(self) -> int:
        """Frames this chunk dreams, warm-up included."""
        return self.end - self.warm


def _boundaries(frames: int, chunk: int, cuts: Sequence[int]) -> list[tuple[int, int, bool]]:
    """(start, end, starts at a cut) of every chunk."""
    least = max(2, chunk // 4)
    stretches: list[int] = [0]
    for cut in sorted(set(cuts)):
        if stretches[-1] + least <= cut <= frames - least:
            stretches.append(cut)
    stretches.append(frames)
    out = []
    for a, b in zip(stretches, stretches[1:], strict=False):
        parts = math.ceil((b - a) / chunk)
        edges = [a + round(i * (b - a) / parts) for i in range(parts + 1)]
        out += [(s, e, i == 0) for i, (s, e) in enumerate(zip(edges, edges[1:], strict=False))]
    return out


def plan_chunks(frames: int, chunk: int, overlap: int, cuts: Sequence[int] = ()
                ) -> tuple[Chunk, ...]:
    """The chunks of a `frames`-frame clip (see the module's docstring); `cuts` are the frames
    that start a new scene."""
    if frames < 1 or chunk < 1 or not 0 <= overlap < chunk:
        raise ValueError(f"bad chunking: {frames} frames, chunk {chunk}, overlap {overlap}")
    chunks: list[Chunk] = []
    for i, (start, end, at_cut) in enumerate(_boundaries(frames, chunk, cuts)):
        # never warm up over the previous chunk's first frame (frame 0, or a cut's fresh one)
        warm = start if at_cut else max(start - overlap, chunks[-1].start + 1)
        chunks.append(Chunk(i, start, end, warm, at_cut))
    return tuple(chunks)


def owner(chunks: Sequence[Chunk], t: int) -> int:
    """Index of the chunk whose frame t is."""
    lo, hi = 0, len(chunks) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if chunks[mid].start <= t:
            lo = mid
        else:
            hi = mid - 1
    return lo


def fade_weight(nxt: Chunk, t: int) -> float:
    """The next chunk's share of frame t in its warm-up (rises to 1 at its start)."""
    return (t - nxt.warm + 1) / (nxt.start - nxt.warm + 1)


def cross_fade(own: np.ndarray, nxt: np.ndarray, weight: float) -> np.ndarray:
    """uint8 RGB frames mixed: (1 - weight) x own + weight x nxt, rounded."""
    mixed = own.astype(np.float32) * (1.0 - weight) + nxt.astype(np.float32) * weight
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
