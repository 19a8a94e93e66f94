"""Batches on a Ray cluster (see pipelines.batch): each input is one Ray task, its file
travelling through the object store (no shared filesystem needed), its outputs and sidecars
written back here; one still or zoom with a cluster is one such task (a zoom is sequential by
nature: each frame is the previous dream, so it is never split)."""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipelines import batch
from pipelines.config.presets import Preset
from pipelines.config.settings import ClusterConfig
from pipelines.outputs import sidecar_path
from pipelines.run_options import RunOptions
from render.errors import UserError
from render.media.image import atomic_write_bytes


def _silent(message: str) -> None:
    """Notices of a remote render stay there."""


def render_remote(preset: Preset, name: str | None, data: bytes | None, opts: RunOptions
                  ) -> dict[str, Any]:
    """A Ray task: render one input (its bytes; None: the generated input) in a temporary
    folder; the bytes of every output and sidecar, or the error in one line (with paths as
    the driver knows them)."""
    from pipelines.registry import runner

    start = time.perf_counter()
    given, targets = preset.settings.input, preset.settings.output
    assert targets is not None
    with tempfile.TemporaryDirectory(prefix="dreamreel-task-") as tmp:
        source = None if name is None else Path(tmp) / "in" / name
        if source is not None and data is not None:
            source.parent.mkdir()
            source.write_bytes(data)
        outputs = tuple(Path(tmp) / f"out{i}{t.suffix}" for i, t in enumerate(targets))
        local = replace(preset, settings=replace(preset.settings, input=source,
                                                 output=outputs))
        _, error = batch.render_one(local, replace(opts, quiet=True, notify=_silent),
                                    runner(preset.settings.pipeline))
        if error is not None:
            if source is not None:
                error = error.replace(str(source), str(given))
            for here, there in zip(outputs, targets, strict=True):
                error = error.replace(str(here), str(there))
            return {"error": error}
        return {"outputs": [p.read_bytes() for p in outputs],
                "sidecars": [sidecar_path(p).read_bytes() for p in outputs],
                "seconds": time.perf_counter() - start}


def _write(outputs: tuple[Path, ...], source: Path | None, result: dict[str, Any],
           cfg: ClusterConfig) -> None:
    """The remote render's outputs and sidecars, written here (atomically); the sidecar says
    it ran on the cluster as one task."""
    for output, data, sidecar in zip(outputs, result["outputs"], result["sidecars"],
                                     strict=True):
        record = json.loads(sidecar)
        record.update(output=str(output), input=None if source is None else str(source),
                      cluster={"address": cfg.address, "workers": cfg.workers, "chunks": 1,
                               "task": True, "retries": cfg.retries,
                               "seconds_per_chunk": [round(result["seconds"], 3)]})
        output.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(output, data)
        atomic_write_bytes(sidecar_path(output), (json.dumps(record, indent=2) + "\n").encode())


def on_cluster(jobs: list[Preset], cfg: ClusterConfig, opts: RunOptions
               ) -> list[tuple[list[Path], str | None]]:
    """Every job as one Ray task, in parallel; outputs written here as they come back."""
    import ray

    from pipelines.cluster.connect import connected
    from pipelines.cluster.driver import reason
    from pipelines.sequence.lock import output_lock

    outputs = [p for job in jobs for p in job.settings.output or ()]
    with connected(cfg) as conn, output_lock(outputs):
        task = ray.remote(render_remote).options(num_cpus=1, max_retries=cfg.retries,
                                                 runtime_env=conn.runtime_env)
        refs: list[Any] = []
        for job in jobs:
            source = job.settings.input
            try:
                data = None if source is None else source.read_bytes()
            except OSError as exc:
                refs.append(f"{source}: cannot read ({exc.strerror})")
                continue
            refs.append(task.remote(job, None if source is None else source.name, data, opts))
        results: list[tuple[list[Path], str | None]] = []
        for job, ref in zip(jobs, refs, strict=True):
            if isinstance(ref, str):
                results.append(([], ref))
                continue
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as exc:
                results.append(([], f"the task failed: {reason(exc)}"))
                continue
            if "error" in result:
                results.append(([], result["error"]))
                continue
            targets = job.settings.output or ()
            _write(targets, job.settings.input, result, cfg)
            results.append((list(targets), None))
    return results


def on_cluster_single(preset: Preset, opts: RunOptions) -> list[Path]:
    """One still or zoom (to its own outputs) as one task on the cluster."""
    from pipelines.outputs import resolve_outputs
    from render.encoding.encoder import output_kind
    from render.media.image import check_image_output

    settings = preset.settings
    still = settings.pipeline == "still"
    outputs = resolve_outputs(settings, preset.name, ".png" if still else ".mp4",
                              check_image_output if still else output_kind)
    job = replace(preset, settings=replace(settings, output=tuple(outputs),
                                           cluster=ClusterConfig()))
    ((written, error),) = on_cluster([job], settings.cluster, opts)
    if error is not None:
        raise UserError(error)
    return written


def run(preset: Preset, opts: RunOptions) -> list[Path]:
    """Render every input of the batch as a Ray task, or the one still or zoom as one task;
    a preview dreams nothing: it is made here, not on the cluster (pipelines.batch)."""
    if opts.preview:
        return batch.run(preset, opts)
    settings = preset.settings
    files = batch.batch_inputs(settings)
    if files is None:
        if settings.pipeline == "zoom":
            opts.notify("a zoom is sequential (each frame is the previous dream): it runs on "
                        "the cluster as one task")
        return on_cluster_single(preset, opts)
    jobs = batch.batch_jobs(preset, files)
    return batch.report(files, on_cluster(jobs, settings.cluster, opts), opts)
