"""Render a frame sequence to its outputs: checkpoints beside the output, one streaming
encoder per output (MP4/GIF), a progress bar, and the JSON sidecar. Shared by the zoom, video
and loop pipelines; they only say where frames come from."""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipelines import schedule
from pipelines.checkpoints import CheckpointStore, work_dir_for
from pipelines.frame_plan import DREAM_BOUNDS
from pipelines.outputs import resolve_outputs, write_sidecar
from pipelines.presets import Preset
from pipelines.run_options import RunOptions
from pipelines.scheduler import FrameScheduler
from pipelines.schema import Field
from render.encode import GIF_DITHERS, X264_PRESETS, AudioTrack, FrameEncoder, output_kind

SEQUENCE_SCHEMA: dict[str, Any] = {
    "frames": Field("int", 48, low=1, high=100_000, help="number of frames"),
    "fps": Field("float", 24.0, above=0, high=240, help="frames per second"),
    "interpolation": Field("choice", "linear", choices=schedule.INTERPOLATIONS,
                           help="between keyframes: linear or smooth (monotone cubic)"),
    "frames_dir": Field("path", nullable=True, help="also keep every frame as PNG here"),
    "dream": {
        **{k: Field("schedule", d, **b) for (k, b), d in zip(
            DREAM_BOUNDS.items(), (4, 0.015, 2, 1.4), strict=True)},
        "first_frame": {
            "steps": Field("int", None, low=1, high=1000, nullable=True),
            "octaves": Field("int", None, low=1, high=12, nullable=True),
            "step_size": Field("float", None, above=0, high=1.0, nullable=True),
        },
    },
    "encode": {
        "crf": Field("int", 18, low=0, high=51, help="H.264 quality (lower = better)"),
        "preset": Field("choice", "medium", choices=tuple(X264_PRESETS)),
    },
    "gif": {
        "dither": Field("str", "sierra2_4a", help=f"one of {', '.join(GIF_DITHERS)}"),
        "colors": Field("int", 256, low=2, high=256),
        "loop_count": Field("int", 0, low=-1, high=65535, help="0 = loop forever"),
    },
}


def sequence_outputs(preset: Preset) -> list[Path]:
    """Output paths of a sequence render, checked before any work is done."""
    return resolve_outputs(preset.config, preset.name, ".mp4", output_kind)


def open_store(outputs: list[Path], preset: Preset, opts: RunOptions,
               salt: str = "") -> CheckpointStore:
    """The checkpoint store of this render (beside the first output); its frames are valid for
    this preset digest plus `salt` (e.g. the input file's size and time stamp)."""
    return CheckpointStore(work_dir_for(outputs[0]), preset.digest + salt, fresh=opts.force,
                           reuse_stale=opts.reuse_frames)


def render_sequence(preset: Preset, opts: RunOptions, outputs: list[Path],
                    scheduler: FrameScheduler, count: int, fps: float,
                    record: Mapping[str, Any], audio: AudioTrack | None = None) -> list[Path]:
    """Dream `count` frames through `scheduler` and stream them to every output (MP4s get
    `audio`)."""
    cfg = preset.config
    enc, gif = cfg["encode"], cfg["gif"]
    h, w = scheduler.first.shape[:2]
    timings: list[float] = []
    resumed = 0
    start = time.perf_counter()
    with ExitStack() as stack:
        encoders = [
            stack.enter_context(FrameEncoder(
                path, (w, h), fps, crf=enc["crf"], preset=enc["preset"],
                gif_dither=gif["dither"], gif_colors=gif["colors"], gif_loop=gif["loop_count"],
                audio=audio if output_kind(path) == "mp4" else None, notify=opts.notify))
            for path in outputs
        ]
        bar = tqdm(total=count, unit="frame", desc=preset.name, disable=opts.quiet,
                   dynamic_ncols=True)
        with bar:
            for frame in scheduler.frames(count):
                for encoder in encoders:
                    encoder.write(frame.image)
                if frame.resumed:
                    resumed += 1
                else:
                    timings.append(round(frame.seconds, 3))
                bar.update(1)
        for encoder in encoders:
            encoder.close()
    frames_dir = cfg.get("frames_dir")
    if frames_dir:
        shutil.copytree(scheduler.store.directory, frames_dir, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.json", ".*"))
    full = {**record, **preset.record(), "frames": count, "fps": fps,
            "size": [w, h], "resumed_frames": resumed,
            "timings": {"total_seconds": round(time.perf_counter() - start, 3),
                        "frame_seconds": timings}}
    for path in outputs:
        write_sidecar(path, {**full, "output": str(path)})
    scheduler.store.remove()
    return outputs
