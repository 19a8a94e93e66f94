"""The video's motion (see pipelines.sequence.scheduler.Motion): the previous dream carried
into frame t along the source's optical flow (t-1 -> t), the fresh source frame taken where the
flow cannot be trusted, blended with the source frame. The source frames and flow of the next
LOOKAHEAD frames are computed in a background thread while frame t-1 is dreamed.

A damaged source frame (unlike both its neighbours, see flow.glitch_mask) is treated like a
cut where it is damaged: the dream is not carried into it there, nor out of it into the next
frame, so a one-frame glitch is dreamed once and not dragged along the flow for seconds.

Images are uint8 RGB (H, W, 3); flows float32 (H, W, 2); trust float32 (H, W) in 0..1.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

import cv2
import numpy as np

from pipelines.config.settings import FlowConfig
from pipelines.source.inputs import Clip, FrameWindow
from pipelines.warp.flow import FLOW_METHODS, glitch_mask, optical_flow, reliable_mask, warp_by_flow
from render.notify import Notify

# frames whose flow is computed ahead: with cadence, a carried frame and the next dreamed one
# both get their flow while the dream before them runs
LOOKAHEAD = 2
MAX_GLITCH_NOTICES = 3


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


class SourceWindow(Protocol):
    """The source frames FlowMotion reads, by index (uint8 RGB), and how many there are: a
    clip read forward (SharedWindow), or the frames of one chunk a cluster worker was handed
    (pipelines.cluster.worker.ArrayWindow)."""

    @property
    def count(self) -> int:
        """Number of source frames."""

    def __getitem__(self, t: int) -> np.ndarray:
        """Source frame t."""


class SharedWindow:
    """The source frames of `clip`, read forward, that the flow thread (up to LOOKAHEAD + 1
    frames ahead: a glitch is told by the next frame) and the main thread can both read, one
    at a time. A context manager: closing it stops reading the source."""

    def __init__(self, clip: Clip) -> None:
        self.window = FrameWindow(clip, keep=LOOKAHEAD + 3)
        self.count = clip.count
        self._lock = threading.Lock()

    def __enter__(self) -> SharedWindow:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

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

    def __init__(self, flow: FlowConfig, window: SourceWindow,
                 notify: Notify | None = None) -> None:
        self.flow = flow
        self.window = window
        self.notify = notify
        self._glitches = 0
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
        if method != "none":
            trust = self._drop_glitches(t, backward, trust)
        return Prepared(before, source, backward, trust)

    def _damaged(self, t: int) -> np.ndarray | None:
        """Where source frame t is damaged (None: nowhere, or t lacks a neighbour)."""
        if t < 1 or t + 1 >= self.window.count:
            return None
        return glitch_mask(self.window[t - 1], self.window[t], self.window[t + 1])

    def _drop_glitches(self, t: int, backward: np.ndarray | None,
                       trust: np.ndarray | None) -> np.ndarray | None:
        """`trust` of frame t, zero where source frame t is damaged and where frame t's carry
        would sample a damaged part of frame t-1."""
        here, before = self._damaged(t), self._damaged(t - 1)
        if before is not None and backward is not None:
            before = warp_by_flow(before.astype(np.float32), backward) > 0
        if here is None and before is None:
            return trust
        if here is not None and self.notify is not None and self._glitches < MAX_GLITCH_NOTICES:
            self._glitches += 1
            more = " (further ones are not listed)" if self._glitches == MAX_GLITCH_NOTICES else ""
            self.notify(f"source frame {t} looks damaged over {here.mean():.0%} of it (unlike "
                        f"both neighbours): the dream is not carried through it there{more}")
        dropped = here if before is None else before if here is None else here | before
        assert dropped is not None  # both None returned above
        # widened by the soft edge (3 sigma), so no damaged pixel keeps part of its carry
        keep = soft_trust(~cv2.dilate(dropped.astype(np.uint8), np.ones((13, 13), np.uint8))
                          .astype(bool))
        return keep if trust is None else trust * keep

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
