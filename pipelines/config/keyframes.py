"""Keyframe schedules: "0:(1.02), 60:(1.05), 120:(1.02)" — a value per frame, interpolated
between keys (linear, or smooth monotone cubic) and held before the first and after the last.

A plain number is a constant schedule.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np

from render.errors import ConfigError, show

INTERPOLATIONS = ("linear", "smooth")
MAX_FRAME_DIGITS = 9  # keyframes past frame 999,999,999 are past any clip
_KEY = re.compile(r"^\s*(-?\d+)\s*:\s*\(\s*([^()]*?)\s*\)\s*$")


@dataclass(frozen=True)
class Schedule:
    """Keyframes (frame -> value), sorted by frame."""

    frames: tuple[int, ...]
    values: tuple[float, ...]
    interpolation: str = "linear"

    def at(self, t: int) -> float:
        """The value at frame `t`."""
        if len(self.frames) == 1:
            return self.values[0]
        if self.interpolation == "smooth":
            from scipy.interpolate import PchipInterpolator  # 1 s to import: only when used

            x = min(max(t, self.frames[0]), self.frames[-1])
            return float(PchipInterpolator(self.frames, self.values)(x))
        return float(np.interp(t, self.frames, self.values))

    def last_key(self) -> int:
        return self.frames[-1]


def parse(key: str, value: object, interpolation: str = "linear") -> Schedule:
    """Parse a number or a keyframe string for preset key `key` (named in errors)."""
    if isinstance(value, bool):
        raise ConfigError(key, f"{key}: expected a number or a schedule like "
                          "\"0:(1.02), 60:(1.05)\"")
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            raise ConfigError(key, f"{key}: {show(value)} is out of range") from None
        if not math.isfinite(number):
            raise ConfigError(key, f"{key}: must be a finite number, got {value}")
        return Schedule((0,), (number,), interpolation)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, f"{key}: expected a number or a schedule like "
                          f"\"0:(1.02), 60:(1.05)\", got {show(value)}")
    pairs: dict[int, float] = {}
    for part in _split_keys(key, value):
        m = _KEY.match(part)
        if not m:
            raise ConfigError(key, f"{key}: malformed keyframe {show(part.strip())} in schedule "
                            f"{show(value)}; expected FRAME:(VALUE), e.g. \"0:(1.02), 60:(1.05)\"")
        if len(m.group(1).lstrip("-")) > MAX_FRAME_DIGITS:
            raise ConfigError(key, f"{key}: keyframe {show(part.strip())}: frame number too large")
        frame = int(m.group(1))
        try:
            number = float(m.group(2))
        except ValueError:
            raise ConfigError(key, f"{key}: keyframe {show(part.strip())}: "
                              f"{show(m.group(2))} is not a number") from None
        if frame < 0:
            raise ConfigError(key, f"{key}: keyframe {show(part.strip())}: frames start at 0")
        if frame in pairs:
            raise ConfigError(key, f"{key}: frame {frame} appears twice in schedule {show(value)}")
        if not math.isfinite(number):
            raise ConfigError(key, f"{key}: keyframe {show(part.strip())}: value must be finite")
        pairs[frame] = number
    frames = tuple(sorted(pairs))
    return Schedule(frames, tuple(pairs[f] for f in frames), interpolation)


def _split_keys(key: str, text: str) -> list[str]:
    """Split at commas outside parentheses."""
    parts, depth, current = [], 0, []
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    if any(not p.strip() for p in parts):
        raise ConfigError(key, f"{key}: empty keyframe in schedule {show(text)}")
    return parts


def check(key: str, schedule: Schedule, frames: int | None = None, low: float | None = None,
          above: float | None = None, high: float | None = None) -> Schedule:
    """Check every keyframe value is in range and, given `frames`, every key is inside the
    clip."""
    if frames is not None and schedule.last_key() >= frames:
        raise ConfigError(key, f"{key}: keyframe {schedule.last_key()} is past the last frame "
                          f"({frames - 1}; frames={frames})")
    for v in schedule.values:
        if low is not None and v < low:
            raise ConfigError(key, f"{key}: {v:g} is not allowed; must be >= {low:g}")
        if above is not None and v <= above:
            raise ConfigError(key, f"{key}: {v:g} is not allowed; must be > {above:g}")
        if high is not None and v > high:
            raise ConfigError(key, f"{key}: {v:g} is not allowed; must be <= {high:g}")
    return schedule


def rescaled(schedule: Schedule, written_for: int, frames: int) -> Schedule:
    """`schedule` (keyed for `written_for` frames) with key k moved to
    round(k (frames - 1) / (written_for - 1)); of keys landing on one frame, the one landing
    nearest its exact place wins."""
    ratio = (frames - 1) / max(written_for - 1, 1)
    best: dict[int, tuple[float, float]] = {}
    for key, value in zip(schedule.frames, schedule.values, strict=True):
        miss = abs(round(key * ratio) - key * ratio)
        if round(key * ratio) not in best or miss < best[round(key * ratio)][0]:
            best[round(key * ratio)] = (miss, value)
    order = sorted(best)
    return replace(schedule, frames=tuple(order), values=tuple(best[k][1] for k in order))


def truncated(schedule: Schedule, frames: int) -> Schedule:
    """`schedule` cut at the last of `frames` frames: the keys before it, and there the value
    it has at that frame."""
    if schedule.last_key() < frames:
        return schedule
    kept = [(k, v) for k, v in zip(schedule.frames, schedule.values, strict=True)
            if k < frames - 1] + [(frames - 1, schedule.at(frames - 1))]
    return replace(schedule, frames=tuple(k for k, _ in kept), values=tuple(v for _, v in kept))
