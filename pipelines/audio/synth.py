"""Soundtracks the project makes itself with NumPy, so the music preset runs with no file: a
drum pattern (kick on every beat, snare on 2 and 4, closed hi-hats on the eighths) whose
second half adds a bass line, so both the beat and the loudness move; and a plain click
track (the beat-tracking measure's ground truth).

Made at render time rather than shipped as a WAV: nothing binary in the repository, and the
pattern is readable (and changeable) here; it takes milliseconds.
"""

from __future__ import annotations

import numpy as np

RATE = 44100
BPM = 120.0
BARS = 2  # 4 beats each: 4 s at 120 BPM


def _hit(length: float, rate: int) -> np.ndarray:
    return np.arange(int(length * rate)) / rate


def drum_pattern(bpm: float = BPM, bars: int = BARS, rate: int = RATE,
                 seed: int = 0) -> np.ndarray:
    """Stereo float32 PCM (samples, 2) in -1..1: `bars` bars of 4/4 at `bpm`."""
    rng = np.random.default_rng(seed)
    beat = 60.0 / bpm
    total = int(bars * 4 * beat * rate)
    out = np.zeros(total, np.float64)

    def add(sound: np.ndarray, at: float) -> None:
        i = int(round(at * rate))
        n = min(len(sound), total - i)
        if n > 0:
            out[i:i + n] += sound[:n]

    s = _hit(0.35, rate)
    kick = np.sin(2 * np.pi * (45 * s + (120 - 45) * 0.03 * (1 - np.exp(-s / 0.03)))) * np.exp(
        -s / 0.12)
    s = _hit(0.2, rate)
    snare = (0.6 * rng.uniform(-1, 1, len(s)) + 0.4 * np.sin(2 * np.pi * 185 * s)) * np.exp(
        -s / 0.05)
    s = _hit(0.05, rate)
    hat = np.diff(rng.uniform(-1, 1, len(s) + 1)) * np.exp(-s / 0.012) * 0.25
    for b in range(bars * 4):
        at = b * beat
        add(kick, at)
        if b % 4 in (1, 3):
            add(snare * 0.7, at)
        add(hat, at)
        add(hat * 0.6, at + beat / 2)
    half = total // 2  # the second half: a bass line on the root and the fifth
    s = np.arange(total - half) / rate
    notes = np.where((s // beat) % 2 == 0, 55.0, 82.41)
    bass = np.sin(2 * np.pi * np.cumsum(notes) / rate) * 0.45 * (
        1 - np.exp(-(s % beat) / 0.01)) * np.exp(-(s % beat) / 0.4)
    out[half:] += bass
    out *= 0.8 / max(float(np.abs(out).max()), 1e-9)
    return np.stack([out, out], axis=1).astype(np.float32)


def click_track(bpm: float, seconds: float, rate: int = RATE,
                offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Mono float32 PCM (samples, 1) of 5 ms 1 kHz clicks at `bpm` from `offset` seconds,
    and the click times (seconds)."""
    times = np.arange(offset, seconds, 60.0 / bpm)
    out = np.zeros(int(seconds * rate), np.float32)
    s = _hit(0.005, rate)
    click = (np.sin(2 * np.pi * 1000 * s) * np.exp(-s / 0.002)).astype(np.float32)
    for at in times:
        i = int(round(at * rate))
        n = min(len(click), len(out) - i)
        out[i:i + n] += click[:n]
    return out[:, None], times
