"""Optical flow between source frames, the flow warp of a dreamed frame, and the mask of
pixels the flow can be trusted on (forward-backward consistency and motion boundaries, after
Ruder et al., "Artistic style transfer for videos").

Flow arrays are float32 (H, W, 2): for each pixel x of the first frame, the (dx, dy) in pixels
to its match in the second. Images are uint8 RGB (H, W, 3) or float32 of any channel count.
"""

from __future__ import annotations

import cv2
import numpy as np

FLOW_METHODS = ("dis", "farneback")


def _gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def optical_flow(first: np.ndarray, second: np.ndarray, method: str = "dis") -> np.ndarray:
    """Dense flow from uint8 RGB `first` to `second`: OpenCV DIS (medium preset) or
    Farneback (pyr_scale .5, 3 levels, window 15, 3 iterations, poly_n 5, sigma 1.2)."""
    a, b = _gray(first), _gray(second)
    if method == "dis":
        dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        # cv2's stub requires the output array; None (OpenCV allocates it) works at runtime
        flow = dis.calc(a, b, None)  # type: ignore[call-overload]
    elif method == "farneback":
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    else:
        raise ValueError(f"unknown flow method {method!r}")
    return flow.astype(np.float32, copy=False)


def _sample_grid(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return xs + flow[..., 0], ys + flow[..., 1]


def warp_by_flow(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """`image` sampled at x + flow(x) (bilinear; edges replicated): with `flow` from frame t to
    frame t-1, this carries a frame-(t-1) image into frame t's geometry."""
    map_x, map_y = _sample_grid(flow)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def reliable_mask(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """bool (H, W): pixels of frame t whose backward flow (t -> t-1) is trustworthy.

    A pixel is dropped when the forward flow (t-1 -> t) at its match does not lead back
    (|w + w'|^2 > 0.01 (|w|^2 + |w'|^2) + 0.5), when it lies on a motion boundary
    (|grad u|^2 + |grad v|^2 > 0.01 |w|^2 + 0.002), or when its match is outside the frame:
    these are the areas a moving object uncovers or a camera move brings in.
    """
    returned = warp_by_flow(forward, backward)
    sq = lambda f: (f * f).sum(axis=-1)  # noqa: E731
    consistent = sq(backward + returned) <= 0.01 * (sq(backward) + sq(returned)) + 0.5
    du_y, du_x = np.gradient(backward[..., 0])
    dv_y, dv_x = np.gradient(backward[..., 1])
    boundary = du_x**2 + du_y**2 + dv_x**2 + dv_y**2 > 0.01 * sq(backward) + 0.002
    return consistent & ~boundary & lands_inside(backward)


def lands_inside(flow: np.ndarray) -> np.ndarray:
    """bool (H, W): pixels whose match x + flow(x) lies inside the frame (elsewhere a warp
    only repeats the edge)."""
    h, w = flow.shape[:2]
    map_x, map_y = _sample_grid(flow)
    return (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)


def glitch_mask(before: np.ndarray, frame: np.ndarray, after: np.ndarray) -> np.ndarray | None:
    """bool (H, W) of `frame`: where it is unlike both its neighbours while they are alike
    (every channel compared at quarter size: a green band keeps its brightness) — a damaged
    source frame (a coloured band, a block of garbage, a one-frame flash), not motion or a
    cut. None when under 2% of the frame is: an object that moves further than its own size in
    one frame looks the same, but covered at most 1.5% of any frame of three real clips."""
    h, w = frame.shape[:2]
    small = [cv2.resize(f, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
             .astype(np.float32) for f in (before, frame, after)]
    diff = lambda a, b: np.abs(a - b).max(axis=-1)  # noqa: E731
    unlike = np.minimum(diff(small[1], small[0]), diff(small[1], small[2]))
    mask = unlike > 3 * diff(small[0], small[2]) + 60
    if mask.mean() < 0.02:
        return None
    mask = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
    return cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
