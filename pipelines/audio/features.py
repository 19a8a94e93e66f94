"""Audio features at the video frame rate, for expressions (pipelines.config.expressions):
rms (loudness), onset (onset strength), beat (1 on each tracked beat, decaying until the
next), band(lo, hi) (energy between two frequencies) — each normalised to 0..1 over the part
of the track that is rendered — and bpm (the tracked tempo, a constant, in beats per minute).

The tracker hears more than the rendered part: up to CONTEXT seconds of the track before and
after it (`lead`), so a two-second excerpt gets the song's tempo and beats, not what two
seconds alone suggest (an 8-frame window once read 304 BPM on a 120 BPM song).

librosa does the analysis: it is the field's standard for onset strength and beat tracking
(Ellis' dynamic-programming tracker), well kept, and already what music-visualiser tools
build on; aubio and essentia would do too but are C++ extensions with thinner Python wheels.
It is imported here only, and only when a render has a soundtrack (it takes seconds to load).
Audio is decoded by the bundled ffmpeg (render.media.audio), never by librosa's own loaders.

Each feature is computed every HOP samples (11.6 ms at 22050 Hz), then pooled into video
frames: frame t covers [t / fps, (t + 1) / fps) of the track; loudness and bands are averaged
over it, onset strength takes its peak (a short onset must not vanish between two frames).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from pipelines.config.expressions import band_name

SAMPLE_RATE = 22050  # Hz: the analysis rate (librosa's default); bands up to 11 kHz
HIGH_SAMPLE_RATE = 44100  # for bands above SAMPLE_RATE / 2
HOP = 256
N_FFT = 2048
CONTEXT = 30.0  # s of the track heard on each side of the rendered part (when there is some)


@dataclass(frozen=True)
class Features:
    """Per-frame features (name -> array of `frames` values in 0..1), the tempo, and the
    video frames the beats fell on."""

    values: dict[str, np.ndarray]
    bpm: float
    beat_frames: tuple[int, ...] = ()
    extra: dict[str, float] = field(default_factory=dict)


def analysis_rate(bands: Iterable[tuple[float, float]]) -> int:
    """The sample rate to decode at: high enough for every band asked for."""
    return HIGH_SAMPLE_RATE if any(hi > SAMPLE_RATE / 2 for _, hi in bands) else SAMPLE_RATE


def compute(pcm: np.ndarray, rate: int, fps: float, frames: int, names: Iterable[str],
            bands: Iterable[tuple[float, float]], beat_decay: float,
            lead: float = 0.0) -> Features:
    """The features `names` (and the bands `bands`) of mono float PCM `pcm` at `rate` Hz, for
    video frames 0..frames-1 at `fps` (frame t at lead + t / fps seconds into `pcm`; silence
    past its end). The tracker hears all of `pcm` (context before and after the frames);
    values are normalised over the frames only. `bpm` is always tracked."""
    import librosa  # slow to import: only renders with a soundtrack get here

    names, bands = set(names), set(bands)
    need = int(np.ceil((lead + frames / fps) * rate)) + N_FFT
    y = np.zeros(max(need, len(pcm)), np.float32)
    y[:len(pcm)] = pcm
    hop_times = np.arange(1 + len(y) // HOP) * HOP / rate  # centred STFT frames
    onset = librosa.onset.onset_strength(y=y, sr=rate, hop_length=HOP)
    hop_times = hop_times[:len(onset)]
    # trim=False: a beat on the track's first (or last) instant is a beat too
    tempo, beat_hops = librosa.beat.beat_track(onset_envelope=onset, sr=rate, hop_length=HOP,
                                               trim=False)
    # the onset envelope peaks 13-28 ms after a hit (measured on clicks and drums); moved back
    # to where it starts rising, a beat is within 5 ms of the hit (median), so it falls on the
    # frame that shows the hit rather than the next one
    beat_hops = np.asarray(beat_hops, int)
    beat_times = (librosa.onset.onset_backtrack(beat_hops, onset) if beat_hops.size
                  else beat_hops) * HOP / rate - lead  # silence has no beats
    bpm = float(np.atleast_1d(tempo)[0])
    beat_times = beat_times[beat_times < frames / fps]
    before = beat_times[beat_times < -0.5 / fps]  # the beat the excerpt starts after, if heard
    heard = sorted({int(round(b * fps)) for b in beat_times[beat_times >= -0.5 / fps]})
    beat_frames = tuple(b for b in heard if b < frames)
    hop_times = hop_times - lead
    values: dict[str, np.ndarray] = {}
    if "onset" in names:
        values["onset"] = _normalised(_pool(onset, hop_times, fps, frames, np.max))
    if "rms" in names:
        rms = librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP)[0]
        values["rms"] = _normalised(_pool(rms, hop_times[:len(rms)], fps, frames, np.mean))
    if bands:
        power = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP)) ** 2
        freqs = librosa.fft_frequencies(sr=rate, n_fft=N_FFT)
        for lo, hi in sorted(bands):
            inside = (freqs >= lo) & (freqs < hi)
            if not inside.any():  # narrower than one bin: the bin nearest its middle
                inside = np.abs(freqs - (lo + hi) / 2) == np.abs(freqs - (lo + hi) / 2).min()
            energy = power[inside].sum(axis=0)
            values[band_name(lo, hi)] = _normalised(
                _pool(energy, hop_times[:len(energy)], fps, frames, np.mean))
    if "beat" in names:  # the curve goes on from the beat before frame 0 (heard in the lead)
        first = min(int(round(before[-1] * fps)), -1) if before.size else 0
        shifted = ((0,) if first < 0 else ()) + tuple(b - first for b in heard)
        curve = beat_curve(shifted, frames - first, beat_decay)
        values["beat"] = curve[-first:] if first < 0 else curve
    return Features(values, bpm, beat_frames)


CACHE_VERSION = 2  # bump when compute() changes what it returns


def cached(pcm: np.ndarray, rate: int, fps: float, frames: int, names: Iterable[str],
           bands: Iterable[tuple[float, float]], beat_decay: float,
           lead: float = 0.0) -> Features:
    """`compute`, kept in the cache (render.weights.cache: plain .npz, never pickles) under a
    digest of the PCM and every argument: a second preview, or the render after its preview,
    skips librosa (seconds of import and JIT) altogether."""
    from render.weights.cache import cache_dir, read_cache, write_cache

    names, bands = sorted(set(names)), sorted(set(bands))
    digest = hashlib.sha256(np.ascontiguousarray(pcm, np.float32).tobytes())
    digest.update(json.dumps([CACHE_VERSION, rate, fps, frames, names, bands,
                              beat_decay, lead]).encode())
    path = cache_dir() / "audio" / f"features-{digest.hexdigest()[:32]}.npz"
    kept = read_cache(path)
    if kept is not None and "bpm" in kept and "beat_frames" in kept:
        values = {k[2:]: v for k, v in kept.items() if k.startswith("f:")}
        return Features(values, float(kept["bpm"]),
                        tuple(int(b) for b in kept["beat_frames"]))
    found = compute(pcm, rate, fps, frames, names, bands, beat_decay, lead)
    with contextlib.suppress(OSError):  # a read-only cache only costs the analysis next time
        path.parent.mkdir(parents=True, exist_ok=True)
    write_cache(path, {"bpm": np.asarray(found.bpm, np.float64),
                       "beat_frames": np.asarray(found.beat_frames, np.int64),
                       **{f"f:{k}": v for k, v in found.values.items()}})
    return found


def beat_curve(beat_frames: tuple[int, ...], frames: int, decay: float) -> np.ndarray:
    """1 on each beat frame, exp(-decay * phase) between beats, where phase goes from 0 on
    a beat to 1 on the next (after the last beat: the last interval goes on); 0 before the
    first beat."""
    out = np.zeros(frames)
    if not beat_frames:
        return out
    beats = np.asarray(beat_frames, dtype=np.float64)
    gaps = np.diff(beats)
    last_gap = gaps[-1] if gaps.size else max(frames - beats[0], 1.0)
    t = np.arange(frames, dtype=np.float64)
    i = np.searchsorted(beats, t, side="right") - 1
    after = i >= 0
    gap = np.where(i < len(gaps), np.append(gaps, last_gap)[np.clip(i, 0, None)], last_gap)
    phase = (t - beats[np.clip(i, 0, None)]) / np.maximum(gap, 1.0)
    out[after] = np.exp(-decay * phase[after])
    return out


def _pool(values: np.ndarray, times: np.ndarray, fps: float, frames: int, how) -> np.ndarray:
    """Per video frame t: `how` of the values whose time is in [t / fps, (t + 1) / fps), or
    the value nearest t / fps when none is (a frame shorter than a hop)."""
    edges = np.searchsorted(times, np.arange(frames + 1) / fps)
    out = np.empty(frames)
    for t in range(frames):
        a, b = edges[t], edges[t + 1]
        out[t] = how(values[a:b]) if b > a else values[min(a, len(values) - 1)]
    return out


def _normalised(x: np.ndarray) -> np.ndarray:
    """x scaled to 0..1 (all zeros when it is constant)."""
    low, span = float(x.min()), float(x.max() - x.min())
    return (x - low) / span if span > 1e-12 else np.zeros_like(x)
