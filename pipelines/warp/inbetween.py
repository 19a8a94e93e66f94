"""In-between frames by optical flow, with no network weights: the fallback of
`finish.interpolate` when RIFE's package is missing, and `finish.interpolate_model: flow`.

DIS flow both ways between frames a and b; the flows from time t back to each frame are
approximated from them as in Super SloMo (Jiang et al. 2018): F_t0 = -(1-t) t F01 + t^2 F10,
F_t1 = (1-t)^2 F01 - t (1-t) F10. Each frame is warped to t and the two are mixed by
closeness in time, each weighted down where its pixels have no match in the other frame
(forward-backward consistency and motion boundaries, pipelines.warp.flow.reliable_mask) or
where its warp would only repeat its edge: there the frame that still sees the place gives it.

Frames are uint8 RGB (H, W, 3).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pipelines.warp.flow import lands_inside, optical_flow, reliable_mask, warp_by_flow

UNSEEN = 0.05  # weight of a warped frame where its pixels have no match in the other


class FlowInbetween:
    """In-betweens by bidirectional DIS flow (see the module docstring)."""

    name = "dis-flow"

    def between(self, a: np.ndarray, b: np.ndarray, times: Sequence[float],
                large: tuple[np.ndarray, np.ndarray] | None = None) -> list[np.ndarray]:
        """Frames between `a` (t=0) and `b` (t=1) at each t in `times` (0 < t < 1). With
        `large` (a and b upscaled by a whole factor), the motion found on a and b moves
        those instead: in-betweens at the larger size for the cost of the flow at the
        smaller one."""
        f01, f10 = optical_flow(a, b), optical_flow(b, a)
        seen0 = reliable_mask(f01, f10).astype(np.float32)  # a's pixels found in b
        seen1 = reliable_mask(f10, f01).astype(np.float32)
        if large is not None:
            size = large[0].shape[1::-1]
            scale = size[0] / a.shape[1]
            f01, f10, seen0, seen1 = (
                cv2.resize(m, size, interpolation=cv2.INTER_LINEAR).astype(np.float32) * factor
                for m, factor in ((f01, scale), (f10, scale), (seen0, 1.0), (seen1, 1.0)))
            a, b = large
        fa, fb = a.astype(np.float32), b.astype(np.float32)
        out = []
        for t in times:
            ft0 = -(1 - t) * t * f01 + t * t * f10
            ft1 = (1 - t) ** 2 * f01 - t * (1 - t) * f10
            w0 = (1 - t) * (warp_by_flow(seen0, ft0) * lands_inside(ft0) + UNSEEN)
            w1 = t * (warp_by_flow(seen1, ft1) * lands_inside(ft1) + UNSEEN)
            mixed = (w0[..., None] * warp_by_flow(fa, ft0) + w1[..., None] * warp_by_flow(fb, ft1)
                     ) / (w0 + w1)[..., None]
            out.append(np.clip(mixed + 0.5, 0, 255).astype(np.uint8))
        return out
