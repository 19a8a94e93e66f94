"""The frame scheduler shared by every sequence pipeline: frame 0 is dreamed from the input;
each later frame is the previous *dreamed* frame, moved by a motion source, dreamed again.

Finished frames come from / go to a checkpoint store, so a resumed render continues after the
last finished frame and equals an uninterrupted one (frames are lossless uint8 RGB, and frame t
always uses seed + t).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from pipelines.checkpoints import CheckpointStore
from render.engine import DreamEngine, DreamSettings

# (frame index, previous dreamed frame) -> the image to dream at that frame
MotionSource = Callable[[int, np.ndarray], np.ndarray]
# (frame index, dreamed frame, finished frame 0) -> the finished frame (e.g. colour-matched)
Finish = Callable[[int, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class FramePlan:
    """How frame t is dreamed: engine settings and (possibly scheduled) layer weights."""

    settings: DreamSettings
    layer_weights: Sequence[float] | None = None


@dataclass(frozen=True)
class Frame:
    """A finished frame: uint8 RGB image, dream seconds (0 when taken from a checkpoint)."""

    index: int
    image: np.ndarray
    seconds: float
    resumed: bool


class FrameScheduler:
    """Walks frames 0..n-1: checkpoint, or move + dream + finish + checkpoint."""

    def __init__(self, engine: DreamEngine, first: np.ndarray, motion: MotionSource,
                 plan: Callable[[int], FramePlan], store: CheckpointStore, seed: int,
                 finish: Finish | None = None) -> None:
        self.engine = engine
        self.first = first
        self.motion = motion
        self.plan = plan
        self.store = store
        self.seed = seed
        self.finish = finish

    def frames(self, count: int) -> Iterator[Frame]:
        """Yield frames in order; resumed ones are read back from their checkpoints."""
        done = self.store.finished()
        previous: np.ndarray | None = None
        first: np.ndarray | None = None
        for t in range(count):
            if t < done:
                previous = self.store.load(t)
                first = previous if t == 0 else first
                yield Frame(t, previous, 0.0, True)
                continue
            start = time.perf_counter()
            source = self.first if previous is None else self.motion(t, previous)
            plan = self.plan(t)
            previous = self.engine.dream(source, plan.settings, seed=self.seed + t,
                                         layer_weights=plan.layer_weights)
            if self.finish is not None:
                previous = self.finish(t, previous, previous if first is None else first)
            first = previous if t == 0 else first
            self.store.save(t, previous)
            yield Frame(t, previous, time.perf_counter() - start, False)
