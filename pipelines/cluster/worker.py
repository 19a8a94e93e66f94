"""The Ray actor that dreams whole chunks of a video: it builds the engine once (the slow
part: loading and tracing the model) and then runs today's FrameScheduler + FlowMotion over
each chunk it is handed, from source frames that came through Ray's object store.

A chunk is dreamed exactly as the single-process video pipeline dreams those frames, with
global frame numbers: frame t is seeded seed + t and colour-matched to the clip's frame 0
(dreamed first, handed to every chunk). The chunk holding frame 0 continues from that dreamed
frame; any other chunk starts fresh at its first (warm-up) frame with the dream.first_frame
settings. So a retried chunk (a lost worker) gives the same frames.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.cluster.chunks import Chunk
from pipelines.config.settings import DreamConfig, ModelConfig, VideoSettings
from pipelines.sequence.scheduler import FramePlan


@dataclass(frozen=True)
class ChunkResult:
    """A dreamed chunk: frames [warm, end) as uint8 (n, H, W, 3), the seconds it took, and
    which worker process made it (a changed pid = a restarted worker)."""

    index: int
    frames: np.ndarray
    seconds: float
    pid: int


class ArrayWindow:
    """Source frames of a chunk by chunk-local index (a carry.SourceWindow)."""

    def __init__(self, frames: np.ndarray) -> None:
        self.frames = frames
        self.count = len(frames)

    def __getitem__(self, t: int) -> np.ndarray:
        return self.frames[t]


class MemoryStore:
    """The store a chunk's scheduler talks to (a scheduler.FrameStore): nothing is written
    (the driver checkpoints); frame 0, when given, is 'resumed' so the scheduler carries on
    from it."""

    directory = Path("<worker>")

    def __init__(self, first: np.ndarray | None) -> None:
        self.first = first

    def finished(self) -> int:
        return 0 if self.first is None else 1

    def checked(self, count: int) -> int:
        return min(self.finished(), count)

    def resume(self, t: int) -> np.ndarray | None:
        return self.first

    def save(self, t: int, frame: np.ndarray) -> None:
        """The driver keeps the frames."""

    def notify(self, message: str) -> None:
        """Resuming from the given frame 0 is not news."""


class ChunkWorker:
    """One engine, many chunks (see the module's docstring). Built by Ray as an actor; the
    engine depends only on the model (and its smoothing), so one worker serves any number of
    renders of that model: the settings of each come with each chunk."""

    def __init__(self, model: ModelConfig, dream: DreamConfig) -> None:
        from pipelines import dreaming

        start = time.perf_counter()
        self.built = dreaming.build(model, dream, lambda message: None)
        self.load_seconds = time.perf_counter() - start

    def info(self) -> dict[str, Any]:
        """The model actually used (for the sidecar), the seconds the engine took to build
        here, and this worker's process id."""
        return {"model": self.built.record(), "load_seconds": round(self.load_seconds, 3),
                "pid": os.getpid()}

    def dream_chunk(self, settings: VideoSettings, chunk: Chunk, sources: np.ndarray,
                    first_source: np.ndarray | None, first_dream: np.ndarray | None
                    ) -> ChunkResult:
        """Frames [chunk.warm, chunk.end) from source frames [warm, end + 1) (the frame after
        the chunk, when there is one, tells a damaged last frame). `first_dream` None: this is
        frame 0 itself (a one-frame chunk)."""
        from pipelines.sequence.frame_plan import make_plan
        from pipelines.sequence.scheduler import FrameScheduler
        from pipelines.warp.carry import FlowMotion
        from pipelines.warp.finish import video_finish

        start = time.perf_counter()
        warm, video = chunk.warm, settings.video
        continues = warm == 0 and first_dream is not None
        # a chunk that does not continue from frame 0 starts afresh at its first frame
        global_plan = make_plan(settings.dream, settings.model, self.built.terms,
                                every_frame_first=video.flow.method == "none", start=warm)
        window = ArrayWindow(sources)
        motion = FlowMotion(video.flow, window)

        def plan(i: int) -> FramePlan:
            return global_plan(warm + i)  # global frame numbers: a retried chunk is the same

        finish = None
        if first_source is not None and first_dream is not None:
            finish = video_finish(video, window.__getitem__, offset=warm,
                                  first=(first_source, first_dream))
        store = MemoryStore(first_dream if continues else None)
        scheduler = FrameScheduler(self.built.engine, motion, plan, store, settings.seed + warm,
                                   finish)
        frames = np.stack([f.image for f in scheduler.frames(chunk.end - warm)])
        return ChunkResult(chunk.index, frames, time.perf_counter() - start, os.getpid())
