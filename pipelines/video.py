"""The `video` pipeline: dream a video without flicker. Frame t starts from the previous
dreamed frame carried along the optical flow of the source (t-1 -> t), takes the fresh source
frame where the flow cannot be trusted, is blended with the source frame, dreamed lightly and
colour-matched to the first dreamed frame (see pipelines.warp)."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from pipelines import dreaming, soundtrack
from pipelines.config.presets import Preset
from pipelines.config.settings import VideoConfig
from pipelines.run_options import RunOptions
from pipelines.sequence import loop
from pipelines.sequence.frame_plan import make_plan
from pipelines.sequence.lock import output_lock
from pipelines.sequence.render import SequenceJob, open_store, render_sequence, sequence_outputs
from pipelines.sequence.scheduler import FrameScheduler
from pipelines.sources import Clip, video_input
from pipelines.warp.carry import FlowMotion, SharedWindow
from pipelines.warp.color import coherence_finish
from render.encode import output_kind


def clip_record(clip: Clip, video: VideoConfig, audio: bool) -> dict[str, Any]:
    """What the sidecar says about the source and how it was carried."""
    return {"clip": {**clip.record, "frames": clip.count, "fps": clip.fps,
                     "size": list(clip.size)},
            "audio": ("copied" if clip.audio.copy else "aac") if audio and clip.audio else None,
            "flow": asdict(video.flow), "color": {"coherence": video.color_coherence}}


def run(preset: Preset, opts: RunOptions) -> list[Path]:
    """Render the dreamed clip to MP4/GIF (see pipelines.sequence.render)."""
    settings = preset.settings
    seq, video = settings.sequence, settings.video
    assert seq is not None and video is not None
    outputs = sequence_outputs(preset)
    track = soundtrack.open_track(settings.audio)  # a file of its own replaces the source's
    clip = video_input(settings, opts.notify, even=any(
        output_kind(path) == "mp4" for path in outputs) or opts.preview)
    if settings.audio is not None and settings.audio.sets_frames:  # frames: audio
        assert track is not None
        clip = replace(clip, count=min(clip.count, max(track.frames(clip.fps), 2)))
    settings = settings.fit_keyframes(clip.count)
    mode, fade = seq.loop.mode, seq.loop.frames
    loop.rendered_count(clip.count, mode, fade, extend=False)
    values, audio_record = soundtrack.variables(settings, track, clip.fps, clip.count)
    settings = settings.resolved(clip.count, values)
    soundtrack.gif_only_notice(track, outputs, opts.notify)
    if track is None and video.audio == "source":
        track = soundtrack.source_track(clip.audio)
        audio_record = None if track is None else {"source": track.label, "start": track.start}
    if opts.preview:
        from pipelines import preview

        return preview.render(preset, settings, outputs, clip.frames, clip.count, clip.fps,
                              values, track, opts)
    built = dreaming.build(settings.model, settings.dream, opts.notify)
    plan = make_plan(settings.dream, settings.model, built.objective,
                     every_frame_first=video.flow.method == "none")
    salt = f"-{clip.record.get('bytes')}-{clip.record.get('mtime_ns')}" + (
        track.salt if track and settings.audio and settings.audio.track else "")
    with output_lock(outputs):
        store = open_store(outputs, preset, opts, salt)
        audio = soundtrack.mp4_track(track, clip.fps, clip.count, mode, fade, store.directory)
        record = {"model": built.record(), **clip_record(clip, video, audio is not None),
                  "audio": soundtrack.mux_record(audio_record, audio)}
        window = SharedWindow(clip)
        motion = FlowMotion(video.flow, window, opts.notify)
        try:
            finish = coherence_finish(window.__getitem__) if video.color_coherence else None
            scheduler = FrameScheduler(built.engine, motion, plan, store, settings.seed, finish)
            job = SequenceJob(scheduler, store, clip.count, clip.fps, clip.size, record,
                              audio, extend_loop=False)
            return render_sequence(preset, opts, outputs, job)
        finally:
            motion.close()  # the flow thread first: it reads the window
            window.close()
