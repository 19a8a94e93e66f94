"""`--preview`: what a zoom or video render will do, in seconds instead of minutes — the
camera path as a draft MP4 (the input moved by the motion schedule, or the source clip, with
no dreaming, at reduced size, with the soundtrack) and a PNG plot of every scheduled value and
audio feature over the frames (matplotlib), so the dream's movement can be checked before
paying for it. Written beside the first output: NAME.preview.mp4 and NAME.preview.png.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.audio import soundtrack
from pipelines.config.expressions import FEATURES, PLAIN_VARIABLES
from pipelines.config.presets import Preset
from pipelines.config.settings import Settings
from pipelines.run_options import RunOptions
from pipelines.sequence.lock import output_lock
from pipelines.source.inputs import reading
from pipelines.warp.affine import affine_matrix, warp
from render.encoding.encoder import AudioTrack, FrameEncoder
from render.encoding.options import Mp4Options
from render.media.image import atomic_write_bytes, resize

MAX_WIDTH = 320  # px: the draft's width at most (even sides)


DRAFT = Mp4Options(crf=28, preset="veryfast")  # a quick look, not a deliverable


def preview_paths(outputs: list[Path]) -> tuple[Path, Path]:
    """out/zoom.mp4 -> out/zoom.preview.mp4, out/zoom.preview.png."""
    first = outputs[0]
    return (first.with_name(f"{first.stem}.preview.mp4"),
            first.with_name(f"{first.stem}.preview.png"))


def draft_size(size: tuple[int, int]) -> tuple[int, int]:
    """`size` scaled to at most MAX_WIDTH wide, sides even."""
    w, h = size
    scale = min(1.0, MAX_WIDTH / w)
    return max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2)


def camera_path(first: np.ndarray, motion: Callable[[int], tuple[float, ...]],
                count: int) -> Iterator[np.ndarray]:
    """The zoom's frames without dreaming: `first`, then each frame the previous one moved by
    the motion at t (as pipelines.warp.affine.AffineMotion moves them)."""
    size = (first.shape[1], first.shape[0])
    frame = first
    yield frame
    for t in range(1, count):
        frame = warp(frame, affine_matrix(size, *motion(t)))
        yield frame


def render(preset: Preset, settings: Settings, outputs: list[Path],
           frames: Callable[[], Iterator[np.ndarray]], count: int, fps: float,
           values: Mapping[str, Any], track: soundtrack.Track | None,
           opts: RunOptions) -> list[Path]:
    """Write the draft MP4 (`count` frames of `frames()` at `fps`, shrunk; a zoom is moved at
    full size, as rendered, and shrunk after) and the plot; returns their paths."""
    video_path, plot_path = preview_paths(outputs)
    # a track made here (the generated one) is written beside the draft, then removed
    work = video_path.with_name(f".{video_path.name}.audio")
    with output_lock([video_path]):
        work.mkdir(parents=True, exist_ok=True)
        try:
            _write(video_path, plot_path, settings, frames, count, fps, values, opts,
                   soundtrack.mp4_track(track, fps, count, "none", 0, work), preset.name)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return [video_path, plot_path]


def _write(video_path: Path, plot_path: Path, settings: Settings,
           frames: Callable[[], Iterator[np.ndarray]], count: int, fps: float,
           values: Mapping[str, Any], opts: RunOptions, audio: AudioTrack | None,
           title: str) -> None:
    """The draft MP4 and the plot (see render)."""
    with reading(frames()) as source:
        first = next(source)
        size = draft_size((first.shape[1], first.shape[0]))
        with FrameEncoder(video_path, size, fps, mp4=DRAFT, audio=audio,
                          notify=opts.notify) as encoder:
            encoder.write(resize(first, size))
            for _, image in zip(range(count - 1), source, strict=False):
                encoder.write(resize(image, size))
    atomic_write_bytes(plot_path, plot(settings, values, count, fps, title))
    opts.notify(f"preview: {count} frames of the camera path at {size[0]}x{size[1]}, no "
                "dreaming; the plot shows every scheduled value")
    finish = settings.finish
    if finish.active:  # what the render will deliver, which the draft does not show
        w, h = finish.size((first.shape[1], first.shape[0]))
        opts.notify(f"preview: the render dreams {count} frames at {first.shape[1]}x"
                    f"{first.shape[0]}, {fps:g} fps and delivers {count * finish.interpolate} "
                    f"at {w}x{h}, {finish.fps(fps):g} fps (finish.interpolate "
                    f"{finish.interpolate}, finish.upscale {finish.upscale})")


def plot(settings: Settings, values: Mapping[str, Any], count: int, fps: float,
         title: str) -> bytes:
    """PNG bytes of `figure`."""
    buffer = io.BytesIO()
    figure(settings, values, count, fps, title).savefig(buffer, format="png")
    return buffer.getvalue()


DETAIL_SECONDS = 10.0  # a long render's plot also shows its first seconds in full detail
FRAMES_PER_PIXEL = 1.0  # beyond this a panel draws each value's range per column of pixels


def figure(settings: Settings, values: Mapping[str, Any], count: int, fps: float,
           title: str) -> Any:
    """A matplotlib Figure: one panel per scheduled key and per audio feature, over the
    frames (beats marked on every panel when the beat is tracked). A render longer than the
    panel has pixels (a whole song: thousands of frames, a beat every few pixels, which drew
    a solid block) gets each series as its range per pixel column over the whole length,
    with times in m:ss and no beat lines, beside the first DETAIL_SECONDS in full detail."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    series = [(key, np.array([sched.at(i) for i in range(count)]))
              for key, sched in settings.schedules()]
    series += [(f"audio: {name}", np.broadcast_to(np.asarray(v, np.float64), (count,)))
               for name, v in values.items()
               if name not in PLAIN_VARIABLES and name != "bpm" and (
                   name in FEATURES or name.startswith("band_"))]
    width_px, dpi = 810, 90
    long = count / (width_px * 0.8) > FRAMES_PER_PIXEL
    detail = min(count, max(2, round(DETAIL_SECONDS * fps))) if long else count
    fig = Figure(figsize=(width_px / dpi * (1.5 if long else 1), 1.3 * len(series) + 0.8),
                 dpi=dpi, layout="constrained")
    grid = fig.subplots(len(series), 2 if long else 1, squeeze=False, sharex="col",
                        width_ratios=[2, 1] if long else None)
    beats = np.flatnonzero(np.asarray(values.get("beat", np.zeros(count))) >= 0.999)
    for row, (name, y) in enumerate(series):
        colour = "tab:purple" if name.startswith("audio") else "tab:blue"
        ax = grid[row, -1]  # full detail: the whole render, or its first seconds
        ax.plot(np.arange(detail), y[:detail], lw=1.2, color=colour)
        for b in beats[beats < detail]:
            ax.axvline(b, color="0.85", lw=0.6, zorder=0)
        ax.margins(x=0)
        ax.tick_params(labelsize=7)
        if long:
            over = grid[row, 0]
            bins = np.array_split(y, int(width_px * 0.8 * 2 / 3))
            centres = np.cumsum([len(b) for b in bins]) - np.array([len(b) for b in bins]) / 2
            lo, hi = [b.min() for b in bins], [b.max() for b in bins]
            over.fill_between(centres / fps, lo, hi, color=colour, alpha=0.35, lw=0)
            over.plot(centres / fps, [b.mean() for b in bins], lw=0.8, color=colour)
            over.xaxis.set_major_formatter(FuncFormatter(
                lambda s, _: f"{int(s // 60)}:{int(s % 60):02d}"))
            over.margins(x=0)
            over.tick_params(labelsize=7)
            over.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        else:
            ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    if long:
        grid[-1, 0].set_xlabel(f"time (m:ss) over all {count} frames: each value's range "
                               "per pixel column, its mean as the line")
        grid[-1, 1].set_xlabel(f"frame: the first {detail / fps:g} s (at {fps:g} fps)")
    else:
        grid[-1, 0].set_xlabel(f"frame (at {fps:g} fps)")
    bpm = values.get("bpm")
    fig.suptitle(f"{title}: schedules over {count} frames"
                 + (f", {bpm:.1f} BPM" if isinstance(bpm, float) else ""), fontsize=10)
    return fig
