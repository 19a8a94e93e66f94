"""Colour coherence: keep a sequence's colours from drifting by matching each frame's LAB
statistics (per-channel mean and standard deviation) to a target.

Images are uint8 RGB (H, W, 3); statistics are float64 arrays of 3 LAB values (L 0..100).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Stats = tuple[np.ndarray, np.ndarray]


def _lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def _stats(lab: np.ndarray) -> Stats:
    mean, std = cv2.meanStdDev(lab)  # float64 (3, 1) each; numpy's std is ~10x slower here
    return mean.ravel(), std.ravel()


def lab_stats(image: np.ndarray) -> Stats:
    """Per-channel LAB mean and standard deviation."""
    return _stats(_lab(image))


def match_stats(image: np.ndarray, target: Stats) -> np.ndarray:
    """`image` with its LAB mean/std moved to `target`'s (uint8 RGB out)."""
    lab = _lab(image)
    mean, std = _stats(lab)  # of the conversion already made
    scale = target[1] / np.maximum(std, 1e-3)
    lab = (lab - mean.astype(np.float32)) * scale.astype(np.float32) + target[0].astype(np.float32)
    rgb = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def relative_target(source: Stats, first_source: Stats, first_dream: Stats) -> Stats:
    """The colour statistics frame t should have: its source's, shifted as the dream shifted
    frame 0's (a lighting change in the source survives; drift added by the dream does not).

    Shifts are additive for the spread too: a ratio would blow up when frame 0 is nearly grey
    (a small chroma spread) and a later frame is colourful.
    """
    mean = source[0] + first_dream[0] - first_source[0]
    std = np.maximum(source[1] + first_dream[1] - first_source[1], 0.0)
    return mean, std


def coherence_finish(source: Callable[[int], np.ndarray], *, offset: int = 0,
                     first: tuple[np.ndarray, np.ndarray] | None = None
                     ) -> Callable[[int, np.ndarray, np.ndarray], np.ndarray]:
    """Finish step of the video pipeline: match frame t's colours to where the first dream
    took frame 0's, relative to frame t's own source frame `source(t)` (so lighting changes in
    the source stay). The scheduler's frame t is the clip's frame `offset` + t; `first`: the
    clip's frame 0 as source and as dreamed, when the scheduler does not start from it (a
    chunk of the clip dreamed on a cluster worker); else they are `source(0)` and the finished
    frame 0 the scheduler hands over."""
    first_source = lab_stats(source(0) if first is None else first[0])
    # frame 0's dream never changes: its stats once
    first_dream: list[Stats] = [] if first is None else [lab_stats(first[1])]

    def finish(t: int, dreamed: np.ndarray, first_frame: np.ndarray) -> np.ndarray:
        if offset + t == 0:
            return dreamed
        if not first_dream:
            first_dream.append(lab_stats(first_frame))
        target = relative_target(lab_stats(source(t)), first_source, first_dream[0])
        return match_stats(dreamed, target)

    return finish


def hold_finish() -> Callable[[int, np.ndarray, np.ndarray], np.ndarray]:
    """Finish step of a zoom: every frame's LAB mean and std held at the finished frame 0's,
    so a feedback loop neither darkens nor climbs in contrast (nor breathes at a loop's seam)."""
    first: list[Stats] = []  # frame 0's never changes: its stats once

    def finish(t: int, dreamed: np.ndarray, first_frame: np.ndarray) -> np.ndarray:
        if t == 0:
            return dreamed
        if not first:
            first.append(lab_stats(first_frame))
        return match_stats(dreamed, first[0])

    return finish
