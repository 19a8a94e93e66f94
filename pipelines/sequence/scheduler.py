"""The frame scheduler shared by every sequence pipeline: frame 0 is dreamed from the input;
each later frame is the previous *dreamed* frame, moved by a motion source, dreamed again.

With cadence, frames the plan marks `dream=False` are only carried (moved, not dreamed).

Finished frames come from / go to a checkpoint store, so a resumed render continues after the
last finished frame and equals an uninterrupted one (frames are lossless uint8 RGB, and frame t
always uses seed + t). Each reused checkpoint is checked first: from the first damaged one on,
frames are rendered again. Checkpoints are written in a background thread while the next frame is
dreamed; an interrupted render still waits for the frame being written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from render.engine import DreamEngine, DreamSettings

# (frame index, dreamed frame, finished frame 0) -> the finished frame (e.g. colour-matched)
Finish = Callable[[int, np.ndarray, np.ndarray], np.ndarray]


class Motion(Protocol):
    """Where frames come from: frame 0's image, and the previous dream moved into frame t.
    Images are uint8 RGB (H, W, 3)."""

    def start(self) -> np.ndarray:
        """The image frame 0 is dreamed from."""

    def move(self, t: int, previous: np.ndarray) -> np.ndarray:
        """The image frame t is dreamed from, given the previous finished frame."""

    def carry(self, t: int, previous: np.ndarray) -> np.ndarray:
        """Frame t when it is not dreamed (`dream.cadence`)."""

    def prefetch(self, t: int) -> None:
        """Start work for frame t in the background (e.g. its optical flow)."""

    def close(self) -> None:
        """Stop background work."""


class FrameStore(Protocol):
    """Where a render's finished frames are kept, so it can go on after them: the checkpoint
    files of a render (checkpoints.CheckpointStore), or a cluster worker's frame 0 in memory
    (pipelines.cluster.worker.MemoryStore)."""

    @property
    def directory(self) -> Path:
        """Where the frames are (said when resuming)."""

    def finished(self) -> int:
        """Number of consecutive finished frames from frame 0."""

    def checked(self, count: int) -> int:
        """Finished frames (at most `count`) up to the first that cheap checks find unusable;
        that one and every later one are dropped, with a notice."""

    def resume(self, t: int) -> np.ndarray | None:
        """Finished frame t; None when it is unusable (it and every later one are gone)."""

    def save(self, t: int, frame: np.ndarray) -> None:
        """Keep finished frame t."""

    def notify(self, message: str) -> None:
        """Say something about the kept frames (resumed, discarded)."""


@dataclass(frozen=True)
class FramePlan:
    """How frame t is made: engine settings, (possibly scheduled) layer weights, and whether it
    is dreamed at all (False: only carried, see `dream.cadence`)."""

    settings: DreamSettings
    layer_weights: Sequence[float] | None = None
    dream: bool = True
    mask: np.ndarray | None = None  # gradient mask of this frame (render.masks)


@dataclass(frozen=True)
class Frame:
    """A finished frame: uint8 RGB image; seconds it took in all and in the dream step (both 0
    when taken from a checkpoint)."""

    index: int
    image: np.ndarray
    seconds: float
    resumed: bool
    dream_seconds: float = 0.0


class Scheduler(Protocol):
    """What a sequence render takes its finished frames from, in order: FrameScheduler in one
    process, or the cluster's ChunkedScheduler (pipelines.cluster.driver)."""

    def frames(self, count: int) -> Generator[Frame, None, None]:
        """Frames 0..count-1 in order (resumed ones read back from the store)."""


class Resumed:
    """The finished frames of a render read back from its store, in order, up to the first
    unusable one (the store then drops it and every later one: they are rendered again).
    Once `frames()` is exhausted, `done` says how many there were, `first` and `last` are
    frame 0's and the last one's image (None when there was none). FrameScheduler and the
    cluster's driver both resume through it."""

    def __init__(self, store: FrameStore, count: int) -> None:
        self.store = store
        self.count = count
        self.done = 0
        self.first: np.ndarray | None = None
        self.last: np.ndarray | None = None

    def frames(self) -> Iterator[Frame]:
        finished = self.store.checked(self.count)  # a damaged one is said before resuming
        if finished:
            self.store.notify(f"resuming after {finished} finished frames in "
                              f"{self.store.directory}")
        for t in range(finished):
            image = self.store.resume(t)
            if image is None:  # damaged: re-rendered from here on
                return
            self.first = image if t == 0 else self.first
            self.last = image
            self.done = t + 1
            yield Frame(t, image, 0.0, True)


class CheckpointWriter:
    """Saves frames to the store in one background thread, in order, one frame in flight."""

    def __init__(self, store: FrameStore) -> None:
        self.store = store
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="checkpoint")
        self._pending: Future[None] | None = None

    def save(self, t: int, image: np.ndarray) -> None:
        self.wait()
        self._pending = self._pool.submit(self.store.save, t, image)

    def wait(self) -> None:
        """Block until the frame in flight is on disk (re-raising its write error)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown()


class FrameScheduler:
    """Walks frames 0..n-1: checkpoint, or move + dream + finish + checkpoint.

    `motion.prefetch(t + 1)` is called once frame t is moved, before it is dreamed, so that
    frame t + 1's inputs are ready in time. The scheduler closes `motion` when it is done.
    """

    def __init__(self, engine: DreamEngine, motion: Motion, plan: Callable[[int], FramePlan],
                 store: FrameStore, seed: int, finish: Finish | None = None) -> None:
        self.engine = engine
        self.motion = motion
        self.plan = plan
        self.store = store
        self.seed = seed
        self.finish = finish

    def frames(self, count: int) -> Generator[Frame, None, None]:
        """Yield frames in order; resumed ones are read back from their checkpoints."""
        resumed = Resumed(self.store, count)
        # however this ends: the checkpoint in flight is written, then the motion stops
        with closing(self.motion), closing(CheckpointWriter(self.store)) as writer:
            yield from resumed.frames()
            previous, first = resumed.last, resumed.first
            for t in range(resumed.done, count):
                start = time.perf_counter()
                plan = self.plan(t)
                dream = previous is None or plan.dream
                if previous is None:
                    image = self.motion.start()
                elif dream:
                    image = self.motion.move(t, previous)
                else:
                    image = self.motion.carry(t, previous)
                if t + 1 < count:
                    self.motion.prefetch(t + 1)
                dreamed_at = time.perf_counter()
                if dream:
                    image = self.engine.dream(image, plan.settings, seed=self.seed + t,
                                              layer_weights=plan.layer_weights,
                                              mask=plan.mask)
                dream_seconds = time.perf_counter() - dreamed_at if dream else 0.0
                if self.finish is not None:
                    image = self.finish(t, image, image if first is None else first)
                previous = image
                first = previous if t == 0 else first
                writer.save(t, previous)
                yield Frame(t, previous, time.perf_counter() - start, False, dream_seconds)
