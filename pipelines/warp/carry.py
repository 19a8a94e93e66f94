"""The video's motion (see pipelines.sequence.scheduler.Motion): the previous dream carried
into frame t along the source's optical flow (t-1 -> t), the fresh source frame taken where the
flow cannot be trusted, blended with the source frame. The source frames and flow of the next
LOOKAHEAD frames are computed in a background thread while frame t-1 is dreamed.

Images are uint8 RGB (H, W, 3); flows float32 (H, W, 2); trust float32 (H, W) in 0..1.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from pipelines.config.settings import FlowConfig
from pipelines.sources import Clip, FrameWindow
from pipelines.warp.flow import FLOW_METHODS, optical_flow, reliable_mask, warp_by_flow

# frames whose flow is computed ahead: with cadence, a carried frame and the next dreamed one
# both get their flow while the dream before them runs
LOOKAHEAD = 2


def carry(previous_dream: np.ndarray, previous_source: np.ndarray, source: np.ndarray,
          backward: np.ndarray | None, trust: np.ndarray | None, blend: float,
          mode: str) -> np.ndarray:
    """The image frame t is dreamed from (uint8 RGB): the source frame plus, weighted by
    `blend` x `trust` (float32 HxW in 0..1), the previous dream carried along `backward`
    (flow t -> t-1; None = no motion) — whole (`full`) or as dream-minus-source (`residual`)."""
    src = source.astype(np.float32)
    carried = previous_dream.astype(np.float32)
    if mode == "residual":
        carried -= previous_source.astype(np.float32)
    if backward is not None:
        carried = warp_by_flow(carried, backward)
    if mode == "full":
        carried -= src
    weight = blend if trust is None else blend * trust[..., None]
    return np.clip(src + weight * carried + 0.5, 0, 255).astype(np.uint8)


def soft_trust(mask: np.ndarray) -> np.ndarray:
    """A bool reliability mask as float32 weights with soft edges (no seams at its borders)."""
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 2.0)


class SharedWindow:
    """The source frames of `clip`, read forward, that the flow thread (up to LOOKAHEAD frames
    ahead) and the main thread can both read, one at a time."""

    def __init__(self, clip: Clip) -> None:
        self.window = FrameWindow(clip, keep=LOOKAHEAD + 2)
        self.count = clip.count
        self._lock = threading.Lock()

    def __getitem__(self, t: int) -> np.ndarray:
        with self._lock:
            return self.window[t]

    def close(self) -> None:
        """Stop reading the source."""
        with self._lock:
            self.window.close()


@dataclass(frozen=True)
class Prepared:
    """What frame t needs from the source before the previous dream can be carried into it."""

    before: np.ndarray  # source t-1, uint8 RGB
    source: np.ndarray  # source t, uint8 RGB
    backward: np.ndarray | None  # flow t -> t-1, float32 HxWx2; None = no motion
    trust: np.ndarray | None  # float32 HxW in 0..1; None = trust everywhere


class FlowMotion:
    """Frame t from the previous dream carried as `flow` says (flow.method `none`: the source
    frame alone, dreamed independently)."""

    def __init__(self, flow: FlowConfig, window: SharedWindow) -> None:
        self.flow = flow
        self.window = window
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="flow")
        self._ready: dict[int, Future[Prepared]] = {}

    def prepare(self, t: int) -> Prepared:
        """Source frames t-1 and t, and the flow and trust between them."""
        method, before, source = self.flow.method, self.window[t - 1], self.window[t]
        backward = trust = None
        if method in FLOW_METHODS:
            backward = optical_flow(source, before, method)
            if self.flow.consistency:
                forward = optical_flow(before, source, method)
                trust = soft_trust(reliable_mask(backward, forward))
        return Prepared(before, source, backward, trust)

    def start(self) -> np.ndarray:
        return self.window[0]

    def prefetch(self, t: int) -> None:
        for ahead in range(t, min(t + LOOKAHEAD, self.window.count)):
            if ahead not in self._ready:
                self._ready[ahead] = self._pool.submit(self.prepare, ahead)

    def _prepared(self, t: int) -> Prepared:
        pending = self._ready.pop(t, None)
        return pending.result() if pending is not None else self.prepare(t)

    def move(self, t: int, previous: np.ndarray) -> np.ndarray:
        """The image frame t is dreamed from."""
        p = self._prepared(t)
        if self.flow.method == "none":
            return p.source
        return carry(previous, p.before, p.source, p.backward, p.trust, self.flow.blend,
                     self.flow.mode)

    def carry(self, t: int, previous: np.ndarray) -> np.ndarray:
        """Frame t when it is not dreamed (cadence): the previous dream carried whole, the
        source only where the flow cannot be trusted."""
        p = self._prepared(t)
        return carry(previous, p.before, p.source, p.backward, p.trust, 1.0, self.flow.mode)

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)
