"""Batches: `input` a folder or a glob (still, zoom, video) renders each file into an output
folder, one output per input (`output` names the folder; default out/<preset>/). Without a
cluster the inputs run here one after another; with one, each input is one Ray task (the route
goes to pipelines.cluster.batch only then). A bad file is reported in one line and the others
go on; the exit code then says that some failed (3).

A single still or zoom with a cluster also runs as one task: a zoom is sequential by nature
(each frame is the previous dream), so it is never split. A single video is chunked instead
(pipelines.cluster.video)."""

from __future__ import annotations

import glob
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from pipelines.config.presets import Preset, read_yaml
from pipelines.config.settings import ClusterConfig, Settings
from pipelines.outputs import check_writable
from pipelines.run_options import RunOptions
from render.errors import ConfigError, UserError, os_reason
from render.media.image import IMAGE_EXTENSIONS

BATCH_PIPELINES = ("still", "zoom", "video")
EXTENSIONS = {"still": ".png", "zoom": ".mp4", "video": ".mp4"}
OUTPUT_KINDS = {"still": IMAGE_EXTENSIONS, "zoom": (".mp4", ".gif"),
                "video": (".mp4", ".gif")}
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


def render_one(preset: Preset, opts: RunOptions, runner: Run
               ) -> tuple[list[Path], str | None]:
    """Render one input; (outputs, None) or ([], the one-line reason it failed)."""
    try:
        return runner(preset, opts), None
    except ConfigError as exc:
        return [], str(preset.refuse(exc))
    except UserError as exc:
        return [], str(exc)
    except OSError as exc:
        return [], os_reason(exc)


def output_extension(preset: Preset) -> str:
    """What each output of a batch is: the kind the preset file's own `output` names (the
    loop preset's out/loop.gif: GIFs), else its pipeline's default."""
    own = read_yaml(preset.source).get("output")
    suffix = Path(own).suffix.lower() if isinstance(own, str) else ""
    return suffix if suffix in OUTPUT_KINDS.get(preset.settings.pipeline, ()) else (
        EXTENSIONS[preset.settings.pipeline])


def batch_jobs(preset: Preset, files: list[Path]) -> list[Preset]:
    """One preset per input file, each writing its own output into the batch's folder
    (checked before any work)."""
    outputs = _names(files, output_folder(preset, len(files)), output_extension(preset))
    return [for_input(preset, f, o) for f, o in zip(files, outputs, strict=True)]


def run(preset: Preset, opts: RunOptions) -> list[Path]:
    """Render every input of the batch here, one after another (see the module's docstring);
    a preset of one input (the preview of a still or zoom on a cluster) is rendered as is."""
    from pipelines.registry import runner

    settings = preset.settings
    files = batch_inputs(settings)
    if files is None:
        return runner(settings.pipeline)(preset, opts)
    jobs = batch_jobs(preset, files)
    results = []
    for i, job in enumerate(jobs, 1):  # a line before each, so a long batch is never silent
        opts.notify(f"batch {i} of {len(jobs)}: {job.settings.input} -> "
                    f"{job.settings.output[0]}")
        results.append(render_one(job, opts, runner(settings.pipeline)))
    return report(files, results, opts)


def report(files: list[Path], results: list[tuple[list[Path], str | None]],
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
