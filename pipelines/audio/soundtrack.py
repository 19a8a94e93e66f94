"""The soundtrack of a sequence render (zoom, video, loop): which track, how many frames it
lasts (`frames: audio`), the per-frame variables its expressions read (t, s, fps, pi and the
audio features), the track as the MP4s get it (trimmed, or cross-faded at a loop's seam), and
what the sidecar says about it. Everything here runs before any dreaming, so a bad track is
one clear line and nothing is written.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.audio import synth as audio_synth
from pipelines.config.expressions import plain_variables
from pipelines.config.keys import GENERATED_AUDIO
from pipelines.config.settings import AudioConfig, SequenceSettings
from pipelines.sequence import loop
from render.encoding.encoder import AudioTrack, output_kind
from render.errors import ConfigError, UserError
from render.media import audio as audio_io

MUX_RATE = 48000  # Hz: a track this module writes itself (generated, or a cross-faded loop)


@dataclass(frozen=True)
class Track:
    """A soundtrack: a file ffmpeg reads from `start` seconds on (`path`, `codec`), or PCM the
    project made (`pcm`, stereo at MUX_RATE); `seconds`: how long it lasts from `start`
    (None: unknown); `label`: what the sidecar calls it."""

    label: str
    start: float
    seconds: float | None
    path: Path | None = None
    codec: str | None = None
    pcm: np.ndarray | None = None

    @property
    def salt(self) -> str:
        """What checkpoints are valid for besides the preset: the file's size and time stamp
        (another song under the same name moves the frames differently)."""
        if self.path is None:
            return ""
        stat = self.path.stat()
        return f"-{stat.st_size}-{stat.st_mtime_ns}"

    def frames(self, fps: float) -> int:
        """Whole frames at `fps` the track lasts from `start`."""
        if self.seconds is None:
            raise UserError(f"{self.label}: its length is unknown, so frames: audio cannot "
                            "be used; set frames=")
        return math.floor(self.seconds * fps + 1e-6)

    def decode(self, rate: int, channels: int, seconds: float, offset: float = 0.0
               ) -> np.ndarray:
        """Float PCM (samples, channels) of `seconds` from `start + offset` (offset >= -start;
        shorter at the end)."""
        if self.pcm is not None:
            pcm = self.pcm[round((self.start + offset) * MUX_RATE):]
            pcm = pcm[:round(seconds * MUX_RATE)]
            if rate != MUX_RATE:
                idx = np.arange(int(len(pcm) * rate / MUX_RATE)) * MUX_RATE / rate
                pcm = np.stack([np.interp(idx, np.arange(len(pcm)), pcm[:, c])
                                for c in range(pcm.shape[1])], axis=1).astype(np.float32)
            return pcm.mean(axis=1, keepdims=True) if channels == 1 else pcm[:, :channels]
        assert self.path is not None
        return audio_io.decode(self.path, rate, channels, self.start + offset, seconds)


def open_track(audio: AudioConfig | None) -> Track | None:
    """The track of `audio` (None when it has none of its own); a file that cannot be read or
    holds no audio stream is a ConfigError on audio.file."""
    if audio is None or audio.track is None:
        return None
    if audio.track == GENERATED_AUDIO:
        pcm = audio_synth.drum_pattern(rate=MUX_RATE)
        seconds = max(len(pcm) / MUX_RATE - audio.start, 0.0)
        return _checked(Track(f"{GENERATED_AUDIO} ({audio_synth.BPM:g} BPM drum pattern)",
                              audio.start, seconds, pcm=pcm), audio)
    try:
        info = audio_io.probe(Path(audio.track))
        # no length in the header (or 0 s): decode a moment to tell an empty track (a WAV
        # header without samples) from one whose length is merely unknown
        empty = not info.duration and not len(audio_io.decode(info.path, 8000, 1, 0.0, 1.0))
    except UserError as exc:
        raise ConfigError("audio.file", f"audio.file: {exc}") from None
    if empty:
        raise ConfigError("audio.file", f"audio.file: {info.path} holds no sound (an audio "
                          "stream without samples)")
    left = None if info.duration is None else max(info.duration - audio.start, 0.0)
    return _checked(Track(str(info.path), audio.start, left, info.path, info.codec), audio)


def _checked(track: Track, audio: AudioConfig) -> Track:
    if track.seconds is not None and track.seconds <= 0:
        raise ConfigError("audio.start", f"audio.start: {audio.start:g} s is past the end of "
                          f"{track.label}")
    return track


def source_track(clip_audio: AudioTrack | None) -> Track | None:
    """A video's own sound as a Track (to cross-fade it at a loop's seam)."""
    if clip_audio is None:
        return None
    return Track(str(clip_audio.path), clip_audio.start, clip_audio.duration, clip_audio.path,
                 clip_audio.codec)


def variables(settings: SequenceSettings, track: Track | None, fps: float, frames: int
              ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """What expressions read at frames 0..frames-1 (t, s, fps, pi and, with a track, the
    features they use), and the sidecar's `audio` record (None without a track)."""
    values: dict[str, Any] = plain_variables(frames, fps)
    if track is None:
        return values, None
    from pipelines.audio import features as audio_features

    names, bands = settings.features()
    rate = audio_features.analysis_rate(bands)
    lead = min(track.start, audio_features.CONTEXT)  # the tracker hears the song around it
    pcm = track.decode(rate, 1, lead + frames / fps + audio_features.CONTEXT, -lead)[:, 0]
    found = audio_features.cached(pcm, rate, fps, frames, names, bands,
                                  settings.audio.beat_decay, lead)
    values.update(found.values)
    values["bpm"] = found.bpm
    record: dict[str, Any] = {
        "source": track.label, "start": track.start, "bpm": round(found.bpm, 3),
        "beat_frames": list(found.beat_frames),
        "features": {name: [round(float(v), 4) for v in found.values[name]]
                     for name in sorted(found.values)}}
    if "bpm" in names:
        record["features"]["bpm"] = [round(found.bpm, 3)] * frames
    return values, record


def mp4_track(track: Track | None, fps: float, rendered: int, mode: str, fade: int,
              workdir: Path) -> AudioTrack | None:
    """The track as an MP4 gets it, as long as the output: trimmed (copied or AAC), or for a
    crossfade loop cross-faded at the same seam as the frames (loop.compose_audio), written
    to a hidden WAV in `workdir` (the render's work directory, removed with it; encoded to
    AAC)."""
    if track is None:
        return None
    out_seconds = loop.output_count(rendered, mode, fade) / fps
    if mode == "crossfade":
        pcm = track.decode(MUX_RATE, 2, rendered / fps)
        looped = loop.compose_audio(pcm, MUX_RATE, fps, rendered, fade)
        return AudioTrack(audio_io.write_wav(workdir / ".soundtrack-loop.wav", looped, MUX_RATE))
    if track.pcm is not None:
        pcm = track.decode(MUX_RATE, 2, out_seconds)
        return AudioTrack(audio_io.write_wav(workdir / ".soundtrack.wav", pcm, MUX_RATE))
    assert track.path is not None
    return AudioTrack(track.path, track.start, out_seconds, track.codec)


def gif_only_notice(track: Track | None, outputs: list[Path],
                    notify: Callable[[str], None]) -> None:
    """Say once that GIFs have no sound (the track still drives the features)."""
    if track is not None and outputs and all(output_kind(p) == "gif" for p in outputs):
        notify(f"audio: a GIF has no sound; {track.label} only drives the audio features")


def mux_record(record: dict[str, Any] | None, audio: AudioTrack | None) -> dict[str, Any] | None:
    """The sidecar's `audio`: the track's record plus how the MP4s got it (copied or aac)."""
    if record is None and audio is None:
        return None
    mux = None if audio is None else ("copied" if audio.copy else "aac")
    return {**(record or {}), "mux": mux}
