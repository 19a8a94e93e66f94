"""The `video` pipeline: dream a video without flicker. Frame t starts from the previous
dreamed frame carried along the optical flow of the source (t-1 -> t), takes the fresh source
frame where the flow cannot be trusted, is blended with the source frame, dreamed lightly and
colour-matched to the first dreamed frame (see pipelines.warp)."""

from __future__ import annotations

from contextlib import closing
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from pipelines import dreaming
from pipelines.audio import soundtrack
from pipelines.audio.soundtrack import Track
from pipelines.config.presets import Preset
from pipelines.config.settings import VideoConfig, VideoSettings, rounding_notice
from pipelines.run_options import RunOptions
from pipelines.sequence import finishing, loop
from pipelines.sequence.frame_plan import make_plan
from pipelines.sequence.lock import output_lock
from pipelines.sequence.render import SequenceJob, open_store, render_sequence, sequence_outputs
from pipelines.sequence.scheduler import FrameScheduler
from pipelines.source.fit import fit_masks
from pipelines.source.inputs import Clip, video_input
from pipelines.source.inputs import masks as read_masks
from pipelines.warp.carry import FlowMotion, SharedWindow
from pipelines.warp.finish import video_finish
from pipelines.warp.masked import MaskedMotion
from render.encoding.encoder import AudioTrack, output_kind
from render.masks import Masks


def clip_record(clip: Clip, video: VideoConfig) -> dict[str, Any]:
    """What the sidecar says about the source and how it was carried (its sound: `audio`)."""
    return {"clip": {**clip.record, "frames": clip.count, "fps": clip.fps,
                     "size": list(clip.size)},
            "flow": asdict(video.flow), "color": {"coherence": video.color_coherence}}


@dataclass(frozen=True)
class VideoSetup:
    """A video render once its inputs are read and every scheduled value is checked: what
    both the single-process and the cluster renders start from."""

    settings: VideoSettings  # keyframes fitted, expressions resolved for every frame
    outputs: list[Path]
    clip: Clip
    track: Track | None  # the soundtrack: a file of its own, else the source's sound
    values: dict[str, Any]  # what expressions read (t, s, audio features ...)
    audio_record: dict[str, Any] | None
    salt: str  # checkpoints are valid for these input files only
    masks: Masks | None  # dream.mask, one per frame

    def mp4_audio(self, workdir: Path) -> AudioTrack | None:
        """The soundtrack as the MP4s get it (trimmed or cross-faded like the frames)."""
        seq = self.settings.sequence
        return soundtrack.mp4_track(self.track, self.clip.fps, self.clip.count,
                                    seq.loop.mode, seq.loop.frames, workdir)

    def record(self, audio: AudioTrack | None) -> dict[str, Any]:
        """The sidecar's clip, flow, colour and audio entries."""
        return {**clip_record(self.clip, self.settings.video),
                "audio": soundtrack.mux_record(self.audio_record, audio)}


def prepare(preset: Preset[VideoSettings], opts: RunOptions) -> VideoSetup:
    """Read the clip and the soundtrack, fit the keyframes to the clip and check every
    scheduled value at every frame: all before any dreaming or writing."""
    settings = preset.settings
    seq, video = settings.sequence, settings.video
    outputs = sequence_outputs(preset)
    track = soundtrack.open_track(settings.audio)  # a file of its own replaces the source's
    clip = video_input(settings, opts.notify, even=any(
        output_kind(path) == "mp4" for path in outputs) or opts.preview)
    if settings.audio.sets_frames:  # frames: audio
        assert track is not None
        clip = replace(clip, count=min(clip.count, max(track.frames(clip.fps), 2)))
    masks = fit_masks(read_masks(settings.dream, clip.count, clip.fps),  # before any dreaming
                      clip.size, settings.fit, opts.notify)
    settings = settings.fit_keyframes(clip.count)
    finishing.check(settings.finish, clip.size, clip.fps,
                    "fps" if seq.fps is not None else f"the frame rate of {settings.input}:")
    loop.rendered_count(clip.count, seq.loop.mode, seq.loop.frames, extend=False)
    values, audio_record = soundtrack.variables(settings, track, clip.fps, clip.count)
    settings = settings.resolved(clip.count, values)
    rounded = rounding_notice(settings.dream, clip.count)
    if rounded:
        opts.notify(rounded)
    soundtrack.gif_only_notice(track, outputs, opts.notify)
    salt = f"-{clip.record.get('bytes')}-{clip.record.get('mtime_ns')}" + (
        track.salt if track and settings.audio.track else "")
    if track is None and video.audio == "source":
        track = soundtrack.source_track(clip.audio)
        audio_record = None if track is None else {"source": track.label, "start": track.start}
    return VideoSetup(settings, outputs, clip, track, values, audio_record,
                      salt + dreaming.directed_salt(settings.dream), masks)


def preview(setup: VideoSetup, preset: Preset[VideoSettings], opts: RunOptions) -> list[Path]:
    """The draft of the clip and the plot of its schedules (pipelines.preview)."""
    from pipelines import preview as draft

    clip = setup.clip
    return draft.render(preset, setup.settings, setup.outputs, clip.frames, clip.count,
                        clip.fps, setup.values, setup.track, opts)


def run(preset: Preset[VideoSettings], opts: RunOptions) -> list[Path]:
    """Render the dreamed clip to MP4/GIF (see pipelines.sequence.render)."""
    setup = prepare(preset, opts)
    if opts.preview:
        return preview(setup, preset, opts)
    settings, outputs, clip = setup.settings, setup.outputs, setup.clip
    video = settings.video
    masks = setup.masks
    built = dreaming.build(settings.model, settings.dream, opts.notify)
    plan = make_plan(settings.dream, settings.model, built.terms,
                     every_frame_first=video.flow.method == "none", masks=masks)
    with output_lock(outputs):
        store = open_store(outputs, preset, opts, setup.salt)
        audio = setup.mp4_audio(store.directory)
        record = {"config": settings.recorded(preset.config),
                  "model": built.record(settings.model.weight_schedules), **setup.record(audio),
                  "mask": masks and masks.record()}
        # the flow thread stops first (it reads the window), then the window
        with (SharedWindow(clip) as window,
              closing(FlowMotion(video.flow, window, opts.notify)) as motion):
            finish = video_finish(video, window.__getitem__)
            moved = motion if masks is None else MaskedMotion(motion, window.__getitem__, masks)
            scheduler = FrameScheduler(built.engine, moved, plan, store, settings.seed, finish)
            job = SequenceJob(scheduler, store, clip.count, clip.fps, clip.size, record,
                              audio, extend_loop=False)
            return render_sequence(preset, opts, outputs, job)
