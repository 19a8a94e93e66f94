"""Affine camera motion for zoom sequences: zoom, rotate and translate the previous frame.

Frames are uint8 RGB (H, W, 3). Zoom is a scale per frame about the centre (1.0 = still,
> 1 zooms in); angle is degrees per frame, counter-clockwise; translation in pixels per frame.
"""

from __future__ import annotations

import cv2
import numpy as np


def affine_matrix(size: tuple[int, int], zoom: float, angle: float, translate_x: float,
                  translate_y: float) -> np.ndarray:
    """2x3 matrix that zooms/rotates about the centre of a (width, height) frame, then shifts."""
    w, h = size
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, zoom)
    m[:, 2] += (translate_x, translate_y)
    return m


def warp(frame: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix; reflected borders keep black edges from creeping in."""
    h, w = frame.shape[:2]
    return cv2.warpAffine(frame, matrix, (w, h), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT_101)

