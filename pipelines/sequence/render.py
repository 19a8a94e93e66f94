"""Render a frame sequence to its outputs: checkpoints beside the output, one streaming
encoder per output (MP4/GIF), a progress bar, and the JSON sidecar. Shared by the zoom, video
and loop pipelines; they only say where frames come from."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pipelines.config.presets import Preset
from pipelines.config.settings import SequenceConfig, SequenceSettings
from pipelines.outputs import resolve_outputs, write_sidecar
from pipelines.run_options import RunOptions
from pipelines.sequence import loop
from pipelines.sequence.checkpoints import CheckpointStore, work_dir_for
from pipelines.sequence.finishing import Finisher
from pipelines.sequence.gif_fit import fit_gif
from pipelines.sequence.scheduler import Scheduler
from render import device
from render.encoding.encoder import AudioTrack, FrameEncoder, output_kind
from render.encoding.gif_palette import gif_timing
from render.errors import UserError


def sequence_outputs(preset: Preset[SequenceSettings]) -> list[Path]:
    """Output paths of a sequence render, checked before any work is done."""
    return resolve_outputs(preset.settings, preset.name, ".mp4", output_kind)


def open_store(outputs: list[Path], preset: Preset, opts: RunOptions,
               salt: str = "") -> CheckpointStore:
    """The checkpoint store of this render (beside the first output); its frames are valid for
    this preset digest plus `salt` (e.g. the input file's size and time stamp)."""
    return CheckpointStore(work_dir_for(outputs[0]), preset.digest + salt, fresh=opts.force,
                           reuse_stale=opts.reuse_frames, notify=opts.notify)


def open_encoder(path: Path, size: tuple[int, int], fps: float, seq: SequenceConfig,
                 opts: RunOptions, audio: AudioTrack | None = None,
                 colors: int | None = None, fps_notice: bool = True) -> FrameEncoder:
    """A FrameEncoder for `path` with the preset's encode/gif settings (`colors`: fewer GIF
    colours than the preset's, to fit gif.max_mb)."""
    gif = replace(seq.gif, colors=colors) if colors else seq.gif
    return FrameEncoder(path, size, fps, mp4=seq.encode, gif=gif,
                        audio=audio if output_kind(path) == "mp4" else None,
                        notify=opts.notify, fps_notice=fps_notice)


def users_fps(preset: Preset[SequenceSettings]) -> bool:
    """Whether the frame rate is the user's own choice (`fps=` on the command line) or the
    source video's, rather than a preset file's: only then is its rounding in a GIF worth a
    notice (a preset's fps that is not a whole number of centiseconds is the preset's
    problem, and every render of it would repeat the notice)."""
    seq = preset.settings.sequence
    given = any(text.split("=", 1)[0].strip() == "fps" for text in preset.overrides)
    return given or seq.fps is None


class FrameBar(tqdm):
    """A progress bar whose rate and ETA come from the frames dreamed after the first one:
    frame 0 is the slow full dream and resumed frames are instant, so counting either would
    make the estimate several times wrong. `dreamed()` marks the first dreamed frame done."""

    _mark: tuple[float, float] | None = None  # (frames done, when) at the first dreamed frame

    def dreamed(self) -> None:
        if self._mark is None:
            self._mark = (self.n, time.time())

    @property
    def format_dict(self) -> dict[str, Any]:
        d = dict(super().format_dict)
        if self.disable:
            return d
        done = self.n - self._mark[0] if self._mark else 0
        if done > 0 and self._mark is not None:
            d["rate"] = done / max(time.time() - self._mark[1], 1e-9)
        else:  # nothing to estimate from yet: tqdm then shows "?" for the rate and the ETA
            d["rate"], d["initial"] = None, self.n
        return d


class SeamMeter:
    """Collects what the loop seam measure needs while frames are written."""

    def __init__(self) -> None:
        self.first: np.ndarray | None = None
        self.last: np.ndarray | None = None
        self.steps: list[float] = []

    def add(self, image: np.ndarray) -> None:
        if self.last is not None:
            self.steps.append(float(np.abs(image.astype(np.float32) - self.last).mean()))
        self.first = image if self.first is None else self.first
        self.last = image

    def record(self) -> dict[str, float | None]:
        """The seam ratio and the largest step ratio of the frames as played, looped."""
        if not self.steps or self.first is None or self.last is None:
            return {"seam_ratio": None, "max_step_ratio": None}
        wrap = float(np.abs(self.first.astype(np.float32) - self.last).mean())
        median = max(float(np.median([*self.steps, wrap])), 1e-9)
        seam = wrap / max(float(np.median(self.steps)), 1e-9)
        return {"seam_ratio": round(seam, 3),
                "max_step_ratio": round(max(*self.steps, wrap) / median, 3)}


@dataclass(frozen=True)
class SequenceJob:
    """What render_sequence encodes: `count` frames of `size` (w, h) at `fps` from
    `scheduler`, checkpointed in `store`; MP4s get `audio`. `extend_loop`: a crossfade loop
    dreams extra frames (zoom) instead of fading the clip's own tail (video)."""

    scheduler: Scheduler  # FrameScheduler, or a cluster's ChunkedScheduler
    store: CheckpointStore
    count: int
    fps: float
    size: tuple[int, int]
    record: Mapping[str, Any]
    audio: AudioTrack | None = None
    extend_loop: bool = True


def render_sequence(preset: Preset[SequenceSettings], opts: RunOptions, outputs: list[Path],
                    seq: SequenceJob) -> list[Path]:
    """Dream the frames of `seq` and encode them to every output. Without a loop, frames
    stream to the encoders as they are dreamed; a loop is assembled from the checkpoints once
    every frame is there. A failed write (disk full, ...) says that the finished frames are
    kept. Checkpoints of another size are refused first with --reuse-frames (see
    CheckpointStore.expect)."""
    seq.store.expect(seq.size, reuse=opts.reuse_frames)
    try:
        return _render_sequence(preset, opts, outputs, seq)
    except KeyboardInterrupt as exc:  # the CLI says where the frames are, if there are any
        exc.kept_frames = (seq.store.finished(), seq.store.directory)  # type: ignore[attr-defined]
        raise
    except (UserError, OSError) as exc:
        raise UserError(failed_write(exc, seq.store)) from exc


def failed_write(exc: UserError | OSError, store: CheckpointStore) -> str:
    """One line for a render that failed while frames are checkpointed: why, where the finished
    frames are and how big (a full disk needs that much free space back first)."""
    reason = str(exc) if isinstance(exc, UserError) else (
        f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror or str(exc))
    kept = store.finished()
    if not kept:
        return f"{reason}; no frame was finished yet"
    size = _megabytes(store.kept_bytes())
    full = "no space left" in reason.lower() or "disk quota" in reason.lower()
    advice = ("free some space (or delete that directory to give up the frames), then run "
              "the same command to resume" if full else "run the same command to resume")
    return (f"{reason}; the {kept} finished frames ({size}) are kept in {store.directory}: "
            f"{advice}")


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{max(1, round(n / 1e3))} kB"


def _render_sequence(preset: Preset[SequenceSettings], opts: RunOptions, outputs: list[Path],
                     seq: SequenceJob) -> list[Path]:
    cfg = preset.settings.sequence
    finish = preset.settings.finish
    mode, fade = cfg.loop.mode, cfg.loop.frames
    rendered = loop.rendered_count(seq.count, mode, fade, extend=seq.extend_loop)
    w, h = seq.size
    fps, scheduler = seq.fps, seq.scheduler
    size, rate = finish.size((w, h)), finish.fps(fps)  # as delivered
    finisher = Finisher(finish, opts.notify) if finish.active else None
    timings: list[float] = []
    dreaming = 0.0
    resumed = 0
    start = time.perf_counter()
    seam = SeamMeter()
    streaming = mode == "none"
    notice = users_fps(preset)

    def finished(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        return finisher.stream(frames, loop=not streaming) if finisher else frames

    with ExitStack() as stack:
        encoders = [stack.enter_context(open_encoder(p, size, rate, cfg, opts, seq.audio,
                                                     fps_notice=notice))
                    for p in (outputs if streaming else [])]
        # streaming, the bar counts frames as delivered (a dreamed frame's k in-betweens)
        per = finish.interpolate if streaming else 1
        bar = FrameBar(total=rendered * per, unit="frame", desc=preset.name, disable=opts.quiet,
                       dynamic_ncols=True)

        def deliver(images: list[np.ndarray]) -> None:
            for image in images:
                for encoder in encoders:
                    encoder.write(image)
                seam.add(image)
            bar.update(len(images))

        # closing: the frame being checkpointed is on disk before an error leaves this block
        with bar, closing(scheduler.frames(rendered)) as frames:
            for frame in frames:
                if not streaming:
                    bar.update(1)
                elif finisher:  # the previous frame's outputs: frame's own wait for the next
                    deliver(finisher.push(frame.image))
                else:
                    deliver([frame.image])
                if frame.resumed:
                    resumed += 1
                else:
                    timings.append(round(frame.seconds, 3))
                    dreaming += frame.dream_seconds
                    bar.dreamed()
            if streaming and finisher:
                deliver(finisher.end(loop=False))
        for encoder in encoders:
            encoder.close()

    def loop_frames() -> Iterator[np.ndarray]:
        return loop.compose(seq.store.load, rendered, mode, fade)

    count = loop.output_count(rendered, mode, fade) * finish.interpolate  # as delivered
    if not streaming:
        with ExitStack() as stack:
            encoders = [stack.enter_context(open_encoder(p, size, rate, cfg, opts, seq.audio,
                                                         fps_notice=notice))
                        for p in outputs]
            finishing = stack.enter_context(tqdm(
                total=count, unit="frame", desc=f"{preset.name} finish", dynamic_ncols=True,
                disable=opts.quiet or finisher is None))
            for image in finished(loop_frames()):
                seam.add(image)
                for encoder in encoders:
                    encoder.write(image)
                finishing.update(1)
            for encoder in encoders:
                encoder.close()
    shrunk = {}
    max_mb = cfg.gif_max_mb
    for path in outputs:
        if output_kind(path) == "gif" and max_mb:
            shrunk[str(path)] = fit_gif(
                path, max_mb, lambda: finished(loop_frames()), size, rate,
                lambda p, size, rate, colors: open_encoder(p, size, rate, cfg, opts,
                                                           colors=colors, fps_notice=notice),
                cfg.gif.colors, opts.notify)
    if cfg.frames_dir:
        shutil.copytree(seq.store.directory, cfg.frames_dir, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.json", ".*"))
    full = {**preset.record(), **seq.record, "frames": count,
            "rendered_frames": rendered, "fps": rate, "size": list(size),
            "resumed_frames": resumed, "device": device.describe(),
            "loop": {"mode": mode, "fade_frames": fade if mode == "crossfade" else 0,
                     **seam.record()},
            "timings": {"total_seconds": round(time.perf_counter() - start, 3),
                        "dream_seconds": round(dreaming, 3), "frame_seconds": timings}}
    if finisher:
        full["finish"] = {**finisher.record(), "dreamed_fps": fps, "dreamed_size": [w, h]}
    for path in outputs:
        extra: dict[str, Any] = {"gif_fit": shrunk[str(path)]} if str(path) in shrunk else {}
        if output_kind(path) == "gif":  # the rate it plays at: whole centiseconds per frame
            extra["fps"] = gif_timing(shrunk[str(path)]["fps"] if str(path) in shrunk
                                      else rate)[1]
        write_sidecar(path, {**full, **extra, "output": str(path)})
    seq.store.remove()
    return outputs
