"""The `zoom` pipeline: an infinite dream zoom. Each frame is the previous dreamed frame,
zoomed/rotated/translated by keyframed motion, then dreamed again.

What loads TensorFlow (the engine, the frame scheduler) is imported once `run` knows it will
dream: a `--preview` never loads it (seconds saved of a preview that takes seconds)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.audio import soundtrack
from pipelines.config.expressions import Values
from pipelines.config.presets import Preset
from pipelines.config.settings import ZoomSettings, rounding_notice
from pipelines.outputs import resolve_outputs
from pipelines.run_options import RunOptions
from pipelines.sequence import finishing, loop
from pipelines.sequence.lock import output_lock
from pipelines.source.fit import fit_masks
from pipelines.source.inputs import masks as read_masks
from pipelines.source.inputs import still_input
from pipelines.warp.affine import AffineMotion
from pipelines.warp.color import hold_finish
from render.encoding.encoder import output_kind
from render.errors import ConfigError


@dataclass(frozen=True)
class Timeline:
    """A zoom's frames in time: its settings with keyframes fitted and every expression
    computed per frame, the frame counts (`rendered`: with a crossfade loop's extra frames),
    the values expressions read (t, audio features) and the soundtrack."""

    settings: ZoomSettings
    frames: int
    rendered: int
    values: Values
    track: soundtrack.Track | None
    audio_record: dict[str, Any] | None


def timeline(preset: Preset[ZoomSettings]) -> Timeline:
    """The zoom's timeline, every scheduled value checked at every frame (ConfigError)."""
    settings = preset.settings
    seq = settings.sequence
    assert seq.fps is not None  # a zoom's fps is never None (only a video's may be)
    fps = seq.fps
    mode, fade = seq.loop.mode, seq.loop.frames
    track = soundtrack.open_track(settings.audio)
    frames = seq.frames
    if frames is None:  # frames: audio; a crossfade loop's fade comes from the track's end
        assert track is not None
        frames = track.frames(fps) - (fade if mode == "crossfade" else 0)
        if not 1 <= frames <= 100_000:
            raise ConfigError("frames", f"frames: audio gives {frames} frames at {fps:g} "
                              f"fps from {track.label}; a zoom needs 1 to 100000")
        settings = settings.fit_keyframes(frames)
    rendered = loop.rendered_count(frames, mode, fade, extend=True)
    values, audio_record = soundtrack.variables(settings, track, fps, rendered)
    return Timeline(settings.resolved(rendered, values), frames, rendered, values, track,
                    audio_record)


def run(preset: Preset[ZoomSettings], opts: RunOptions) -> list[Path]:
    """Render the zoom sequence to MP4/GIF (see pipelines.sequence.render); with
    `opts.preview`, only its preview (pipelines.preview)."""
    seq = preset.settings.sequence
    assert seq.fps is not None
    fps = seq.fps
    outputs = resolve_outputs(preset.settings, preset.name, ".mp4", output_kind)
    mode, fade = seq.loop.mode, seq.loop.frames
    # expressions computed and checked at every frame before any work
    line = timeline(preset)
    settings, frames, rendered = line.settings, line.frames, line.rendered
    values, track, audio_record = line.values, line.track, line.audio_record
    masks = read_masks(settings.dream, rendered, fps)  # before the input and the model
    rounded = rounding_notice(settings.dream, rendered)
    if rounded:
        opts.notify(rounded)
    motion = settings.motion  # resolved: its expressions computed at every frame
    assert motion is not None
    soundtrack.gif_only_notice(track, outputs, opts.notify)
    first = still_input(settings, opts.notify, even=any(
        output_kind(path) == "mp4" for path in outputs) or opts.preview)
    masks = fit_masks(masks, first.shape[1::-1], settings.fit, opts.notify)
    finishing.check(settings.finish, first.shape[1::-1], fps, "fps")
    if opts.preview:
        from pipelines import preview

        return preview.render(preset, settings, outputs,
                              lambda: preview.camera_path(first, motion.at, rendered),
                              rendered, fps, values, track, opts)
    from pipelines import dreaming
    from pipelines.sequence.frame_plan import make_plan
    from pipelines.sequence.render import SequenceJob, open_store, render_sequence
    from pipelines.sequence.scheduler import FrameScheduler

    built = dreaming.build(settings.model, settings.dream, opts.notify)
    plan = make_plan(settings.dream, settings.model, built.terms, masks=masks)
    with output_lock(outputs):
        # frames are valid for this starting image too: another photo under the same name
        # (or one of another shape) must not resume from the old one's frames
        store = open_store(outputs, preset, opts,
                           f"-{hashlib.sha256(first.tobytes()).hexdigest()[:16]}"
                           + dreaming.directed_salt(settings.dream)
                           + (track.salt if track else ""))
        audio = soundtrack.mp4_track(track, fps, rendered, mode, fade, store.directory)
        noise = settings.feedback.noise
        scheduler = FrameScheduler(built.engine,
                                   AffineMotion(first, motion.at, noise.at, settings.seed),
                                   plan, store, settings.seed,
                                   hold_finish() if settings.color_coherence else None)
        record = {"config": settings.recorded(preset.config),
                  "model": built.record(settings.model.weight_schedules),
                  "mask": masks and masks.record(),
                  "audio": soundtrack.mux_record(audio_record, audio)}
        job = SequenceJob(scheduler, store, frames, fps, first.shape[1::-1], record, audio)
        return render_sequence(preset, opts, outputs, job)
