"""The `video` pipeline on a Ray cluster (`cluster.address` other than none): the same
outputs, checkpoints, lock and sidecar as pipelines.video, but the frames are dreamed in chunks
by workers (see driver.py). The sidecar gains `cluster`: where, how many workers and chunks,
the retries allowed and restarts seen, and the seconds each chunk took."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any

from pipelines.cluster.chunks import plan_chunks
from pipelines.cluster.connect import connected
from pipelines.cluster.cuts import scene_cuts
from pipelines.cluster.driver import ChunkedScheduler, keep_or_stop, start_workers
from pipelines.config.presets import Preset
from pipelines.run_options import RunOptions
from pipelines.sequence.lock import output_lock
from pipelines.sequence.render import SequenceJob, open_store, render_sequence
from pipelines.video import VideoSetup, prepare, preview
from render.errors import UserError


def run(preset: Preset, opts: RunOptions) -> list[Path]:
    """Render the dreamed clip to MP4/GIF with chunks dreamed on the cluster."""
    setup = prepare(preset, opts)  # the same checks, inputs and soundtrack as one process
    if opts.preview:  # nothing is dreamed: no cluster needed
        return preview(setup, preset, opts)
    settings, outputs = setup.settings, setup.outputs
    cfg = settings.cluster
    with connected(cfg) as conn, output_lock(outputs):
        workers, info = start_workers(settings, conn)  # too many for the cluster: said first
        try:
            return _render(preset, opts, setup, workers, info)
        finally:
            keep_or_stop(workers, settings, conn)


def _render(preset: Preset, opts: RunOptions, setup: VideoSetup, workers: list[Any],
            info: list[dict[str, Any]]) -> list[Path]:
    """Cut the clip into chunks, have `workers` dream them, encode here."""
    settings, outputs, clip = setup.settings, setup.outputs, setup.clip
    cfg = settings.cluster
    used = sorted({i["model"]["precision"]["used"] for i in info})
    if len(used) > 1:  # machines of different kinds: chunks would not match
        raise UserError(f"dream.precision: auto chose {' and '.join(used)} on different "
                        "workers; set dream.precision (e.g. float32) so that every chunk "
                        "is dreamed alike")
    with clip.read() as source:  # only the frames rendered: the decoder stops after them
        cuts = scene_cuts(islice(source, clip.count))
    chunks = plan_chunks(clip.count, cfg.chunk, cfg.overlap, cuts)
    cluster = {"address": cfg.address, "workers": cfg.workers, "chunks": len(chunks),
               "chunk": cfg.chunk, "overlap": cfg.overlap, "cuts": cuts,
               "boundaries": [c.start for c in chunks[1:]], "retries": cfg.retries,
               "restarts": 0, "load_seconds": [i["load_seconds"] for i in info],
               "seconds_per_chunk": []}
    store = open_store(outputs, preset, opts, setup.salt)
    audio = setup.mp4_audio(store.directory)
    model = info[0]["model"]
    for name in settings.model.weight_schedules:  # as BuiltEngine.record(scheduled)
        model["layers"][name]["weight"] = "scheduled"
    record = {"model": model, **setup.record(audio), "cluster": cluster}
    scheduler = ChunkedScheduler(settings, clip, chunks, store, workers,
                                 [i["pid"] for i in info], cluster)
    job = SequenceJob(scheduler, store, clip.count, clip.fps, clip.size, record, audio,
                      extend_loop=False)
    return render_sequence(preset, opts, outputs, job)
