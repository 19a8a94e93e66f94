"""The `video` pipeline on a Ray cluster (`cluster.address` other than none): the same
outputs, checkpoints, lock and sidecar as pipelines.video, but the frames are dreamed in chunks
by workers (see driver.py). The sidecar gains `cluster`: where, how many workers and chunks,
the retries allowed and restarts seen, and the seconds each chunk took."""

from __future__ import annotations

from dataclasses import replace
from itertools import islice
from pathlib import Path

from pipelines.cluster.chunks import plan_chunks
from pipelines.cluster.connect import connected
from pipelines.cluster.cuts import scene_cuts
from pipelines.cluster.driver import ChunkedScheduler, keep_or_stop, start_workers
from pipelines.config.presets import Preset
from pipelines.run_options import RunOptions
from pipelines.sequence import loop
from pipelines.sequence.lock import output_lock
from pipelines.sequence.render import SequenceJob, open_store, render_sequence, sequence_outputs
from pipelines.sources import video_input
from pipelines.video import clip_record
from render.encode import output_kind


def run(preset: Preset, opts: RunOptions) -> list[Path]:
    """Render the dreamed clip to MP4/GIF with chunks dreamed on the cluster."""
    settings = preset.settings
    seq, video, cfg = settings.sequence, settings.video, settings.cluster
    assert seq is not None and video is not None
    outputs = sequence_outputs(preset)
    clip = video_input(settings, opts.notify, even=any(
        output_kind(path) == "mp4" for path in outputs))
    settings = settings.fit_keyframes(clip.count)
    mode, fade = seq.loop.mode, seq.loop.frames
    loop.rendered_count(clip.count, mode, fade, extend=False)
    audio = None
    if video.audio == "source" and clip.audio is not None:  # as long as the output
        audio = replace(clip.audio, duration=loop.output_count(clip.count, mode, fade) / clip.fps)
    salt = f"-{clip.record.get('bytes')}-{clip.record.get('mtime_ns')}"
    with connected(cfg) as conn, output_lock(outputs):
        source = clip.frames()
        try:  # only the frames rendered: the decoder would go on to the end of the file
            cuts = scene_cuts(islice(source, clip.count))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()
        chunks = plan_chunks(clip.count, cfg.chunk, cfg.overlap, cuts)
        workers, info = start_workers(settings, conn)
        cluster = {"address": cfg.address, "workers": cfg.workers, "chunks": len(chunks),
                   "chunk": cfg.chunk, "overlap": cfg.overlap, "cuts": cuts,
                   "boundaries": [c.start for c in chunks[1:]], "retries": cfg.retries,
                   "restarts": 0, "load_seconds": [i["load_seconds"] for i in info],
                   "seconds_per_chunk": []}
        record = {"model": info[0]["model"], **clip_record(clip, video, audio is not None),
                  "cluster": cluster}
        store = open_store(outputs, preset, opts, salt)
        scheduler = ChunkedScheduler(settings, clip, chunks, store, workers,
                                     [i["pid"] for i in info], cluster)
        job = SequenceJob(scheduler, store, clip.count, clip.fps, clip.size,  # type: ignore[arg-type]
                          record, audio, extend_loop=False)
        try:
            return render_sequence(preset, opts, outputs, job)
        finally:
            keep_or_stop(workers, settings, conn)

