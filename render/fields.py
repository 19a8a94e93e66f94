"""Declared keys: a key's type, default, bounds or choices and its one-line meaning (`Field`),
and the check of one value against it (`check_value`). The preset schema
(pipelines.config.keys) and the option classes of the encoders (render.encoding.options) use
the same declarations, so each key is declared once and checked with one message, whether it
came from a preset or from Python. Importable without TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from render.errors import ConfigError, show


@dataclass(frozen=True)
class Field:
    """One key. `kind` is int, float, str, path, paths, size, bool, choice, schedule (a
    number, a keyframe string or an expression), frames (an int or "audio") or any."""

    kind: str
    default: Any = None
    low: float | None = None  # inclusive lower bound
    high: float | None = None  # inclusive upper bound
    above: float | None = None  # exclusive lower bound
    choices: tuple[Any, ...] = ()
    nullable: bool = False
    help: str = ""


TYPE_NAMES = {"int": "an integer", "float": "a number", "str": "a string", "path": "a file path",
              "paths": "a path or a list of paths", "size": "[width, height]",
              "bool": "true or false",
              "schedule": "a number or a schedule like \"0:(1.02), 60:(1.05)\"",
              "frames": "an integer or audio"}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and not isinstance(v, bool)


def _check_range(key: str, value: float, f: Field) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(key, f"{key}: must be a finite number, got {value}")
    if f.low is not None and value < f.low:
        raise ConfigError(key, f"{key}: must be >= {f.low:g}, got {value}")
    if f.high is not None and value > f.high:
        raise ConfigError(key, f"{key}: must be <= {f.high:g}, got {value}")
    if f.above is not None and value <= f.above:
        raise ConfigError(key, f"{key}: must be > {f.above:g}, got {value}")


def check_value(key: str, value: Any, f: Field) -> Any:
    """Validate (and lightly normalise) one value of dotted `key` against its field
    (ConfigError naming the key). Kinds schedule and frames are pipelines.config.schema's."""
    if value is None:
        if f.nullable:
            return None
        raise ConfigError(key, f"{key}: a value is required ({describe(f)})")
    kind = f.kind
    if kind == "any":
        return value
    if kind == "choice":
        if value not in f.choices:
            allowed = ", ".join(str(c) for c in f.choices)
            raise ConfigError(key, f"{key}: {show(value)} is not allowed; allowed: {allowed}")
        return value
    if kind == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not _is_int(value):
            raise ConfigError(key, f"{key}: expected {describe(f)}, got {show(value)}"
                                   f"{_expression_hint(value)}")
        _check_range(key, value, f)
        return value
    if kind == "float":
        if not _is_number(value):
            raise ConfigError(key, f"{key}: expected {describe(f)}, got {show(value)}"
                                   f"{_expression_hint(value)}")
        try:
            number = float(value)
        except OverflowError:
            raise ConfigError(key, f"{key}: {show(value)} is out of range ({describe(f)})"
                              ) from None
        _check_range(key, number, f)
        return number
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(key, f"{key}: expected true or false, got {show(value)}")
        return value
    if kind in ("str", "path"):
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(key, f"{key}: expected {describe(f)}, got {show(value)}")
        if kind == "path" and "\0" in value:
            raise ConfigError(key, f"{key}: a file path cannot contain a NUL character")
        return value
    if kind == "paths":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(
                isinstance(v, str) and v.strip() for v in items):
            raise ConfigError(key, f"{key}: expected {describe(f)}, got {show(value)}")
        if any("\0" in v for v in items):
            raise ConfigError(key, f"{key}: a file path cannot contain a NUL character")
        return list(items)
    if kind == "size":
        if (not isinstance(value, (list, tuple)) or len(value) != 2
                or not all(_is_int(v) for v in value)):
            raise ConfigError(key, f"{key}: expected [width, height] in pixels, got {show(value)}")
        if min(value) < 1 or max(value) > 16384:
            raise ConfigError(key, f"{key}: width and height must be 1..16384, got {list(value)}")
        return [int(value[0]), int(value[1])]
    raise ValueError(f"schema error: unknown kind {kind!r} for {key}")


def describe(f: Field) -> str:
    """What a value of `f` must be, in words (for messages and help)."""
    if f.kind == "choice":
        return "one of " + ", ".join(str(c) for c in f.choices)
    text = TYPE_NAMES.get(f.kind, f.kind)
    bounds = []
    if f.low is not None:
        bounds.append(f">= {f.low:g}")
    if f.above is not None:
        bounds.append(f"> {f.above:g}")
    if f.high is not None:
        bounds.append(f"<= {f.high:g}")
    return text + (" " + " and ".join(bounds) if bounds else "")


def declared(spec: Field) -> Any:
    """A dataclass field whose default and declaration are `spec` (see `fields_of`)."""
    return dataclasses.field(default=spec.default, metadata={"declared": spec})


def fields_of(cls: type) -> dict[str, Field]:
    """The declared fields of dataclass `cls`, by name, in order."""
    return {f.name: f.metadata["declared"] for f in dataclasses.fields(cls)
            if "declared" in f.metadata}


def check_declared(obj: Any, prefix: str) -> None:
    """Check every declared field of dataclass instance `obj` (keys named `prefix` + name)."""
    for name, spec in fields_of(type(obj)).items():
        check_value(prefix + name, getattr(obj, name), spec)


def _expression_hint(value: object) -> str:
    """For a text that looks like an expression where a plain number is wanted (a still, or
    a key that is not keyframed): where expressions do work."""
    if isinstance(value, str) and any(c.isalpha() or c in "*/+()" for c in value):
        return ("; expressions (like 2+3*t) work only for the keyframed keys of a sequence "
                "(zoom, video, loop, music; README, Schedules)")
    return ""
