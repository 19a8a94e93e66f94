"""Affine camera motion for zoom sequences: zoom, rotate and translate the previous frame.

Frames are uint8 RGB (H, W, 3). Zoom is a scale per frame about the centre (1.0 = still,
> 1 zooms in); angle is degrees per frame, counter-clockwise; translation in pixels per frame.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from pipelines.warp.feedback import add_noise


def affine_matrix(size: tuple[int, int], zoom: float, angle: float, translate_x: float,
                  translate_y: float) -> np.ndarray:
    """2x3 matrix that zooms/rotates about the centre of a (width, height) frame, then shifts."""
    w, h = size
    m: np.ndarray = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, zoom)
    m[:, 2] += (translate_x, translate_y)
    return m


def warp(frame: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix; reflected borders keep black edges from creeping in."""
    h, w = frame.shape[:2]
    return cv2.warpAffine(frame, matrix, (w, h), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT_101)


class AffineMotion:
    """Motion of a zoom sequence (see pipelines.sequence.scheduler.Motion): frame 0 is `first`;
    every later frame is the previous one moved by the camera motion at frame t, given fresh
    noise of `noise(t)` grey levels (pipelines.warp.feedback; None = none) drawn from
    (seed, t)."""

    def __init__(self, first: np.ndarray, motion: Callable[[int], tuple[float, ...]],
                 noise: Callable[[int], float] | None = None, seed: int = 0) -> None:
        self.first = first
        self.motion = motion  # frame -> (zoom, angle, translate_x, translate_y)
        self.noise = noise
        self.seed = seed
        self.size = (first.shape[1], first.shape[0])

    def start(self) -> np.ndarray:
        return self.first

    def move(self, t: int, previous: np.ndarray) -> np.ndarray:
        moved = warp(previous, affine_matrix(self.size, *self.motion(t)))
        if self.noise is None:
            return moved
        return add_noise(moved, self.noise(t), self.seed, t)

    def carry(self, t: int, previous: np.ndarray) -> np.ndarray:
        """A frame that is not dreamed (`dream.cadence`) moves the same way, without noise:
        only a dream turns the noise into detail."""
        return warp(previous, affine_matrix(self.size, *self.motion(t)))

    def prefetch(self, t: int) -> None:
        """Nothing to prepare: the warp is cheap."""

    def close(self) -> None:
        """Nothing to stop."""
