"""Batches: `input` a folder or a glob (still, zoom, video) renders each file into an output
folder, one output per input (`output` names the folder; default out/<preset>/). Without a
cluster the inputs run here one after another; with one, each input is one Ray task (files
travel through the object store: no shared filesystem needed). A bad file is reported in one
line and the others go on; the exit code then says that some failed (3).

A single still or zoom with a cluster also runs as one task: a zoom is sequential by nature
(each frame is the previous dream), so it is never split. A single video is chunked instead
(pipelines.cluster.video)."""

from __future__ import annotations

import glob
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipelines.config.presets import Preset
from pipelines.config.settings import ClusterConfig, Settings
from pipelines.outputs import check_writable, sidecar_path
from pipelines.run_options import RunOptions
from render.errors import ConfigError, UserError, os_reason
from render.media.image import atomic_write_bytes

BATCH_PIPELINES = ("still", "zoom", "video")
EXTENSIONS = {"still": ".png", "zoom": ".mp4", "video": ".mp4"}
SOME_FAILED = 3  # the exit code of a batch in which some inputs failed

Run = Callable[[Preset, RunOptions], list[Path]]


class BatchIncomplete(UserError):
    """Some inputs of a batch failed (each said in its own line); the others were written."""

    exit_code = SOME_FAILED


def batch_inputs(settings: Settings) -> list[Path] | None:
    """The files of a batch `input` (a folder, or a glob that names no file itself), sorted;
    None when `input` is one file (or none)."""
    source = settings.input
    if source is None or settings.pipeline not in BATCH_PIPELINES:
        return None
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
        what = "an image" if settings.pipeline in ("still", "zoom") else "a video"
        where = f"is a directory, expected {what} file (or a folder of them: this one has none)"
    elif glob.has_magic(str(source)) and not source.exists():
        files = sorted(Path(p) for p in glob.glob(str(source)) if Path(p).is_file())
        where = "no file matches"
    else:
        return None
    if not files:
        raise ConfigError("input", f"input {source}: {where}")
    return files


def output_folder(preset: Preset, count: int) -> Path:
    """The folder a batch writes into, checked before any work."""
    settings = preset.settings
    if settings.output and len(settings.output) == 1:
        folder = settings.output[0]
        if folder.suffix and not folder.is_dir():
            raise ConfigError("output", (
                f"output {folder}: a batch of {count} inputs writes one output per input into a "
                f"folder; give a folder (e.g. output=out/{preset.name}/)"))
    elif settings.output:
        raise ConfigError("output", f"output: a batch writes into one folder, got "
                          f"{len(settings.output)} paths")
    else:
        folder = Path("out") / preset.name
    if folder.exists() and not folder.is_dir():
        raise ConfigError("output", f"output {folder}: is a file, expected a folder")
    check_writable(folder / "x", f"output {folder}")
    return folder


def _names(files: list[Path], folder: Path, ext: str) -> list[Path]:
    """One output per input: the input's stem, or its whole name where stems repeat."""
    stems = [f.stem for f in files]
    return [folder / f"{f.stem if stems.count(f.stem) == 1 else f.name}{ext}" for f in files]


def for_input(preset: Preset, source: Path, output: Path) -> Preset:
    """`preset` for one input of the batch, rendered in this process."""
    config = {**preset.config, "input": str(source), "output": [str(output)]}
    if "cluster" in config:
        config["cluster"] = {**config["cluster"], "address": "none"}
    settings = replace(preset.settings, input=source, output=(output,),
                       cluster=ClusterConfig())
    return replace(preset, config=config, settings=settings)


def _silent(message: str) -> None:
    """Notices of a remote render stay there."""


def _render_one(preset: Preset, opts: RunOptions, runner: Run) -> tuple[list[Path], str | None]:
    """Render one input; (outputs, None) or ([], the one-line reason it failed)."""
    try:
        return runner(preset, opts), None
    except ConfigError as exc:
        return [], str(preset.refuse(exc))
    except UserError as exc:
        return [], str(exc)
    except OSError as exc:
        return [], os_reason(exc)


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
        _, error = _render_one(local, replace(opts, quiet=True, notify=_silent),
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


def run(preset: Preset, opts: RunOptions) -> list[Path]:
    """Render every input of the batch (see the module's docstring)."""
    from pipelines.registry import runner

    settings = preset.settings
    files = batch_inputs(settings)
    if files is None and opts.preview:  # a preview dreams nothing: here, not on the cluster
        return runner(settings.pipeline)(preset, opts)
    if files is None:  # one still or zoom as one task on the cluster
        if settings.pipeline == "zoom":
            opts.notify("a zoom is sequential (each frame is the previous dream): it runs on "
                        "the cluster as one task")
        return _on_cluster_single(preset, opts)
    outputs = _names(files, output_folder(preset, len(files)), EXTENSIONS[settings.pipeline])
    jobs = [for_input(preset, f, o) for f, o in zip(files, outputs, strict=True)]
    if settings.cluster.enabled and not opts.preview:
        results = _on_cluster(jobs, settings.cluster, opts)
    else:
        results = [_render_one(job, opts, runner(settings.pipeline)) for job in jobs]
    return _report(files, results, opts)


def _report(files: list[Path], results: list[tuple[list[Path], str | None]],
            opts: RunOptions) -> list[Path]:
    """Each failure in one line; BatchIncomplete when there was any."""
    written = [p for paths, _ in results for p in paths]
    failed = [(f, error) for f, (_, error) in zip(files, results, strict=True) if error]
    for source, error in failed:
        opts.notify(f"failed: {error}" if str(source) in error else f"failed: {source}: {error}")
    if failed:
        done = f"; wrote {', '.join(map(str, written))}" if written else ""
        raise BatchIncomplete(f"{len(failed)} of {len(files)} inputs failed (each said "
                              f"above){done}")
    return written


def _on_cluster(jobs: list[Preset], cfg: ClusterConfig, opts: RunOptions
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
            refs.append(task.remote(job, source and source.name, data, opts))
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


def _on_cluster_single(preset: Preset, opts: RunOptions) -> list[Path]:
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
    ((written, error),) = _on_cluster([job], settings.cluster, opts)
    if error is not None:
        raise UserError(error)
    return written
