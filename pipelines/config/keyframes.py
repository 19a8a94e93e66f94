"""Keyframe schedules: "0:(1.02), 60:(1.05), 120:(1.02)" — a value per frame, interpolated
between keys (linear, or smooth monotone cubic) and held before the first and after the last.

A plain number is a constant schedule. A value may also be an expression (see
pipelines.config.expressions): the whole value (`"1.01 + 0.04 * beat"`) or a key's value
(`"0:(1.02), 48:(1 + 0.05 * beat)"`). Such a schedule is *dynamic*: each key's expression is
computed at every frame, the keys are interpolated between at each frame as numbers are, and
the result is a per-frame table (`resolve`), checked against the key's bounds at every frame.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np

from pipelines.config import expressions
from pipelines.config.expressions import Expr
from render.errors import ConfigError, show

INTERPOLATIONS = ("linear", "smooth")
MAX_FRAME_DIGITS = 9  # keyframes past frame 999,999,999 are past any clip
_KEY = re.compile(r"^\s*(-?\d+)\s*:\s*\((.*)\)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Schedule:
    """Keyframes (frame -> value), sorted by frame."""

    frames: tuple[int, ...]
    values: tuple[float | Expr, ...]
    interpolation: str = "linear"
    table: tuple[float, ...] | None = None  # per-frame values of a resolved dynamic schedule

    @property
    def dynamic(self) -> bool:
        """Whether a value is an expression (then `resolve` must give it a table)."""
        return any(isinstance(v, Expr) for v in self.values)

    @property
    def features(self) -> frozenset[str]:
        """The audio features its expressions read."""
        return frozenset().union(*(v.features for v in self.values if isinstance(v, Expr)))

    @property
    def bands(self) -> frozenset[tuple[float, float]]:
        """The band(lo, hi) of its expressions."""
        return frozenset().union(*(v.bands for v in self.values if isinstance(v, Expr)))

    def at(self, t: int) -> float:
        """The value at frame `t` (held after the last frame of a resolved table)."""
        if self.table is not None:
            return self.table[min(max(t, 0), len(self.table) - 1)]
        if self.dynamic:
            raise RuntimeError("a schedule with expressions is used before resolve()")
        values = self.numbers()
        if len(self.frames) == 1:
            return values[0]
        if self.interpolation == "smooth":
            from scipy.interpolate import PchipInterpolator  # 1 s to import: only when used

            x = min(max(t, self.frames[0]), self.frames[-1])
            return float(PchipInterpolator(self.frames, values)(x))
        return float(np.interp(t, self.frames, values))

    def numbers(self) -> tuple[float, ...]:
        """The key values of a schedule without expressions."""
        return tuple(v for v in self.values if not isinstance(v, Expr))

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
    if ":" not in value:  # no keyframes: a number or one expression for every frame
        only = _number_or_expression(key, value, 0)
        if not isinstance(only, Expr) and not math.isfinite(only):
            raise ConfigError(key, f"{key}: must be a finite number, got {show(value)}")
        return Schedule((0,), (only,), interpolation)
    pairs: dict[int, float | Expr] = {}
    for part, offset in _split_keys(key, value):
        m = _KEY.match(part)
        if not m:
            raise ConfigError(key, f"{key}: malformed keyframe {show(part.strip())} in schedule "
                            f"{show(value)}; expected FRAME:(VALUE), e.g. \"0:(1.02), 60:(1.05)\"")
        if len(m.group(1).lstrip("-")) > MAX_FRAME_DIGITS:
            raise ConfigError(key, f"{key}: keyframe {show(part.strip())}: frame number too large")
        frame = int(m.group(1))
        at = _number_or_expression(key, m.group(2), offset + m.start(2))
        if frame < 0:
            raise ConfigError(key, f"{key}: keyframe {show(part.strip())}: frames start at 0")
        if frame in pairs:
            raise ConfigError(key, f"{key}: frame {frame} appears twice in schedule {show(value)}")
        if not isinstance(at, Expr) and not math.isfinite(at):
            raise ConfigError(key, f"{key}: keyframe {show(part.strip())}: value must be finite")
        pairs[frame] = at
    frames = tuple(sorted(pairs))
    return Schedule(frames, tuple(pairs[f] for f in frames), interpolation)


def _number_or_expression(key: str, text: str, column: int) -> float | Expr:
    """A number, or else a checked expression (`column`: where `text` starts in the value)."""
    try:
        return float(text)
    except ValueError:
        return expressions.parse(key, text, column)


def _split_keys(key: str, text: str) -> list[tuple[str, int]]:
    """Split at commas outside parentheses: (part, where it starts in `text`)."""
    parts: list[tuple[str, int]] = []
    current: list[str] = []
    depth = start = 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(("".join(current), start))
            current, start = [], i + 1
        else:
            current.append(ch)
    parts.append(("".join(current), start))
    if any(not p.strip() for p, _ in parts):
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
        if isinstance(v, Expr):
            continue  # checked at every frame by resolve()
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
    best: dict[int, tuple[float, float | Expr]] = {}
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
            if k < frames - 1] + [(frames - 1, _value_at(schedule, frames - 1))]
    return replace(schedule, frames=tuple(k for k, _ in kept), values=tuple(v for _, v in kept))


def _value_at(schedule: Schedule, t: int) -> float | Expr:
    """The value at frame `t` as a key value: a number, or for a dynamic schedule the
    expression blending its two neighbouring keys' expressions with the linear weight at `t`
    (also for smooth interpolation: an approximation, used only to cut a schedule)."""
    if not schedule.dynamic:
        return schedule.at(t)
    after = next(i for i, k in enumerate(schedule.frames) if k >= t)
    if schedule.frames[after] == t or after == 0:
        return schedule.values[after]
    k0, k1 = schedule.frames[after - 1], schedule.frames[after]
    w = (t - k0) / (k1 - k0)
    text = lambda v: v.text if isinstance(v, Expr) else repr(float(v))  # noqa: E731
    a, b = schedule.values[after - 1], schedule.values[after]
    return expressions.parse("", f"({1 - w!r}) * ({text(a)}) + ({w!r}) * ({text(b)})")


def resolve(key: str, schedule: Schedule, frames: int, variables: expressions.Values,
            low: float | None = None, above: float | None = None,
            high: float | None = None) -> Schedule:
    """A dynamic `schedule` with its value at each of `frames` frames in a table, each one
    checked against the bounds: a ConfigError names the first bad frame, its value and the
    expression. `variables`: see expressions.evaluate. Other schedules are returned as they
    are (their keys were checked by `check`)."""
    if not schedule.dynamic:
        return schedule
    rows = []
    for value in schedule.values:
        if isinstance(value, Expr):
            try:
                rows.append(expressions.evaluate(value, frames, variables))
            except expressions.EvalError as exc:
                raise ConfigError(key, f"{key}: {exc.reason} at frame {exc.frame} in "
                                  f"expression {show(value.text)}") from None
        else:
            rows.append(np.full(frames, float(value)))
    table = _interpolate(schedule, np.stack(rows), frames)
    for name, bound, bad in (("must be >= ", low, lambda v, b: v < b),
                             ("must be > ", above, lambda v, b: v <= b),
                             ("must be <= ", high, lambda v, b: v > b)):
        if bound is None:
            continue
        hits = np.flatnonzero(bad(table, bound))
        if hits.size:
            t = int(hits[0])
            raise ConfigError(key, f"{key}: {table[t]:g} at frame {t} (from "
                              f"{show(_source(schedule, t))}) is not allowed; {name}{bound:g}")
    return replace(schedule, table=tuple(float(v) for v in table))


def _source(schedule: Schedule, t: int) -> str:
    """The schedule's text that decides frame t (its whole keyframe list when there are
    several keys)."""
    if len(schedule.values) == 1:
        v = schedule.values[0]
        return v.text if isinstance(v, Expr) else f"{v:g}"
    return ", ".join(f"{k}:({v.text if isinstance(v, Expr) else f'{v:g}'})"
                     for k, v in zip(schedule.frames, schedule.values, strict=True))


def _interpolate(schedule: Schedule, rows: np.ndarray, frames: int) -> np.ndarray:
    """Per frame t: the keys' values at t (rows[k, t]) interpolated at t as `Schedule.at`
    does with numbers (linear, or monotone cubic through the keys' values at t)."""
    t = np.arange(frames)
    keys = np.asarray(schedule.frames)
    if len(keys) == 1:
        return rows[0]
    if schedule.interpolation == "smooth":
        from scipy.interpolate import PchipInterpolator

        x = np.clip(t, keys[0], keys[-1])
        return np.array([float(PchipInterpolator(keys, rows[:, i])(x[i]))
                         for i in range(frames)])
    x = np.clip(t, keys[0], keys[-1]).astype(np.float64)
    right = np.clip(np.searchsorted(keys, x, side="right"), 1, len(keys) - 1)
    left = right - 1
    w = (x - keys[left]) / (keys[right] - keys[left])
    return (1 - w) * rows[left, t] + w * rows[right, t]


def as_config(schedule: Schedule) -> float | str:
    """`schedule` as a preset writes it: a number (one key at frame 0), else
    "frame:(value), ..." (values as numbers or expression texts)."""
    def text(v: float | Expr) -> str:
        return v.text if isinstance(v, Expr) else f"{v:g}"

    if schedule.frames == (0,) and not isinstance(schedule.values[0], Expr):
        return float(schedule.values[0])
    if schedule.frames == (0,):
        return text(schedule.values[0])
    return ", ".join(f"{f}:({text(v)})"
                     for f, v in zip(schedule.frames, schedule.values, strict=True))
