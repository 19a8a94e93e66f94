"""Scene cuts of a source clip, so chunk boundaries fall where the picture changes anyway:
a frame whose hue/saturation histogram is far (Bhattacharyya distance, OpenCV) from the
previous frame's, and several times further than the steps just before it, starts a new scene.
Frames are looked at 64 px wide: cheap next to dreaming."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

CUT_DISTANCE = 0.25  # steps of a pan stay near 0.05-0.1; two unrelated shots go above
JUMP = 3.0  # ... and a cut is that many times the median of the last RECENT steps
RECENT = 12
WIDTH = 64


def _histogram(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    small = cv2.resize(frame, (WIDTH, max(1, round(h * WIDTH / w))), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [16, 16], [0, 180, 0, 256])
    return cv2.normalize(hist, hist).astype(np.float32)


def scene_cuts(frames: Iterable[np.ndarray], threshold: float = CUT_DISTANCE) -> list[int]:
    """Indices of frames (uint8 RGB) that start a new scene (never 0)."""
    cuts: list[int] = []
    steps: list[float] = []
    previous = None
    for t, frame in enumerate(frames):
        hist = _histogram(frame)
        if previous is not None:
            step = cv2.compareHist(previous, hist, cv2.HISTCMP_BHATTACHARYYA)
            usual = float(np.median(steps[-RECENT:])) if steps else 0.0
            if step > threshold and step > JUMP * usual:
                cuts.append(t)
            else:  # a cut is not a usual step
                steps.append(step)
        previous = hist
    return cuts
