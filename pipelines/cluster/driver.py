"""The driver of a chunked video render on Ray: it stands where the FrameScheduler stands in
the video pipeline (`frames(count)` yields finished frames in order and checkpoints them), so
the encoders, the progress bar, the sidecar, resume and the output lock work as they do today.

Order of work: finished checkpoints are read back (resume); frame 0 is dreamed first, on a
worker, since every chunk matches its colours to it; then chunks (see chunks.py) go to the
workers round-robin, a bounded number ahead, their source frames through the object store.
Frames come back per chunk; those in a chunk's warm-up are cross-faded with the previous
chunk's. A lost worker is restarted by Ray (`max_restarts`) and its chunk retried
(`max_task_retries`): seeded, so the retried frames are the same.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Generator, Iterator
from contextlib import closing
from typing import Any

import numpy as np

from pipelines.cluster.chunks import Chunk, cross_fade, fade_weight, owner
from pipelines.cluster.connect import Connection, first_paragraph
from pipelines.cluster.worker import ChunkResult, ChunkWorker
from pipelines.config.settings import Settings
from pipelines.sequence.checkpoints import CheckpointStore
from pipelines.sequence.scheduler import CheckpointWriter, Frame, Resumed
from pipelines.source.inputs import Clip, FrameWindow
from render.errors import ConfigError, UserError

AHEAD = 2  # chunks queued per worker beyond the one it is dreaming


# warm workers of this process, by what their engine is: kept when the Ray they live in
# outlives the render (a Ray the caller started: a notebook, a batch, a test session)
_WARM: dict[str, list[Any]] = {}


def _warm_key(settings: Settings, conn: Connection) -> str:
    """What a worker's engine depends on: warm workers are reused only for the same."""
    model, dream, cfg = settings.model, settings.dream, settings.cluster
    return json.dumps([model.name, repr(model.layers), model.weights, dream.smoothing,
                       repr(dream.directed), dream.precision, cfg.workers, cfg.retries,
                       conn.runtime_env], sort_keys=True, default=str)


def start_workers(settings: Settings, conn: Connection) -> tuple[list[Any], list[dict]]:
    """`cluster.workers` actors, each building the engine once, and what each says about
    itself (ChunkWorker.info); restarted (and their queued chunks retried) up to
    `cluster.retries` times when lost. Warm ones of an earlier render are reused."""
    import ray

    cfg = settings.cluster
    key = _warm_key(settings, conn)
    workers = _WARM.pop(key, None)
    if workers is not None:
        try:
            return workers, ray.get([w.info.remote() for w in workers])
        except ray.exceptions.RayError:  # gone with their Ray, or killed: start new ones
            pass
    total = int(ray.cluster_resources().get("CPU", 0))
    if total < cfg.workers:  # the actors would wait for CPUs forever
        raise ConfigError("cluster.workers", f"cluster.workers: the cluster has {total} CPUs, "
                          f"fewer than the {cfg.workers} workers asked for")
    if _WARM and ray.available_resources().get("CPU", 0) < cfg.workers:
        for idle in _WARM.values():  # warm workers of other settings hold the CPUs we need
            for worker in idle:
                ray.kill(worker)
        _WARM.clear()
    actor = ray.remote(ChunkWorker).options(
        num_cpus=1, max_restarts=cfg.retries, max_task_retries=cfg.retries,
        runtime_env=conn.runtime_env)
    workers = [actor.remote(settings.model, settings.dream) for _ in range(cfg.workers)]
    try:
        info = ray.get([w.info.remote() for w in workers])
    except ray.exceptions.RayError as exc:
        raise UserError(f"cluster: the workers could not start: {reason(exc)}") from None
    return workers, info


def keep_or_stop(workers: list[Any], settings: Settings, conn: Connection) -> None:
    """After a render: keep the workers warm when this process's Ray outlives it (else they
    stop with it)."""
    if conn.owned:  # they stop with the Ray this render started (killing them first would
        return      # only make Ray report their queued chunks as failed)
    key = _warm_key(settings, conn)
    _WARM[key] = workers


def reason(exc: BaseException) -> str:
    """One line for a failed chunk: the worker's own error, or that it was lost."""
    import ray

    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = exc.cause if getattr(exc, "cause", None) is not None else exc
        return first_paragraph(cause)
    if isinstance(exc, ray.exceptions.RayActorError):
        return "a worker was lost more often than cluster.retries allows"
    return first_paragraph(exc)


class ChunkedScheduler:
    """Finished frames of a video dreamed in chunks on Ray workers (see the module's
    docstring). `record` is filled in for the sidecar as the render goes."""

    def __init__(self, settings: Settings, clip: Clip, chunks: tuple[Chunk, ...],
                 store: CheckpointStore, workers: list[Any], pids: list[int],
                 record: dict[str, Any]) -> None:
        self.settings = settings
        self.clip = clip
        self.chunks = chunks
        self.store = store
        self.workers = workers
        self.record = record
        # worker process ids per worker, as it started and as seen since: a new one is a restart
        self.pids: dict[int, set[int]] = {slot: {pid} for slot, pid in enumerate(pids)}

    def _get(self, ref: Any, what: str) -> ChunkResult:
        import ray

        try:
            result: ChunkResult = ray.get(ref)
        except (ray.exceptions.RayError, UserError) as exc:
            raise UserError(f"cluster: {what} failed: {reason(exc)}") from None
        return result

    def _note(self, slot: int, result: ChunkResult) -> None:
        self.pids.setdefault(slot, set()).add(result.pid)
        self.record["restarts"] = sum(len(p) - 1 for p in self.pids.values())
        if result.index < 0:
            self.record["first_frame_seconds"] = round(result.seconds, 3)
        else:
            self.record["seconds_per_chunk"].append(round(result.seconds, 3))

    def frames(self, count: int) -> Generator[Frame, None, None]:
        """Yield frames 0..count-1 in order; finished ones are read back from checkpoints."""
        import ray

        resumed = Resumed(self.store, count)
        yield from resumed.frames()
        # however this ends: the checkpoint in flight is written, then the source is closed
        with FrameWindow(self.clip) as reader, closing(CheckpointWriter(self.store)) as writer:
            yield from self._dream(count, resumed.done, resumed.first, reader, writer, ray)

    def _dream(self, count: int, done: int, first: np.ndarray | None, reader: FrameWindow,
               writer: CheckpointWriter, ray: Any) -> Iterator[Frame]:
        chunks, workers = self.chunks, self.workers
        source0 = reader.take(0, min(2, count))
        if first is None:  # frame 0: the colour reference of every chunk
            start = time.perf_counter()
            zero = self._get(workers[0].dream_chunk.remote(
                self.settings, Chunk(-1, 0, 1, 0, True), source0, None, None), "frame 0")
            self._note(0, zero)
            first = zero.frames[0]
            writer.save(0, first)
            done = 1
            yield Frame(0, first, time.perf_counter() - start, False, zero.seconds)
        if done >= count:
            return
        refs = ray.put(self.settings), ray.put(source0[0]), ray.put(first)
        pending = deque(c for c in chunks if c.end > done)
        queued: dict[int, tuple[int, Any]] = {}  # chunk -> (worker slot, result ref)
        results: dict[int, ChunkResult] = {}

        def submit() -> None:
            while pending and len(queued) < len(workers) * (1 + AHEAD):
                c = pending.popleft()
                sources = reader.take(c.warm, min(c.end + 1, count))
                slot = c.index % len(workers)
                ref = workers[slot].dream_chunk.remote(refs[0], c, ray.put(sources), *refs[1:])
                queued[c.index] = (slot, ref)

        def result(k: int) -> ChunkResult:
            if k not in results:
                submit()
                slot, ref = queued.pop(k)
                results[k] = self._get(ref, f"chunk {k} (frames {chunks[k].start}-"
                                            f"{chunks[k].end - 1})")
                self._note(slot, results[k])
                submit()
            return results[k]

        last = time.perf_counter()
        for t in range(done, count):
            k = owner(chunks, t)
            own = result(k)
            image = own.frames[t - chunks[k].warm]
            nxt = chunks[k + 1] if k + 1 < len(chunks) else None
            if nxt is not None and not nxt.at_cut and t >= nxt.warm:
                image = cross_fade(image, result(k + 1).frames[t - nxt.warm], fade_weight(nxt, t))
            for old in [j for j in results if j < k]:
                del results[old]  # every frame of an earlier chunk is out
            writer.save(t, image)
            now = time.perf_counter()
            yield Frame(t, image, now - last, False, own.seconds / own.frames.shape[0])
            last = now
