"""Preset schema: every key a preset may set, its type, range and default, and the validator
that turns a raw YAML mapping into a resolved one — or one clear UserError naming the key.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipelines.config import keyframes
from render.errors import ConfigError, show


@dataclass(frozen=True)
class Field:
    """One preset key. `kind` is int, float, str, path, paths, size, bool, choice, schedule
    (a number, a keyframe string or an expression), frames (an int or "audio") or any."""

    kind: str
    default: Any = None
    low: float | None = None  # inclusive lower bound
    high: float | None = None  # inclusive upper bound
    above: float | None = None  # exclusive lower bound
    choices: tuple[Any, ...] = ()
    nullable: bool = False
    help: str = ""


Schema = Mapping[str, Any]  # nested: key -> Field or Schema

_TYPE_NAMES = {"int": "an integer", "float": "a number", "str": "a string", "path": "a file path",
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
    """Validate (and lightly normalise) one value against its field."""
    if value is None:
        if f.nullable:
            return None
        raise ConfigError(key, f"{key}: a value is required ({_describe(f)})")
    kind = f.kind
    if kind == "any":
        return value
    if kind == "choice":
        if value not in f.choices:
            allowed = ", ".join(str(c) for c in f.choices)
            raise ConfigError(key, f"{key}: {show(value)} is not allowed; allowed: {allowed}")
        return value
    if kind == "schedule":
        sched = keyframes.parse(key, value)
        keyframes.check(key, sched, low=f.low, above=f.above,
                       high=f.high)
        return value if isinstance(value, str) else float(value)
    if kind == "frames":  # a count, or "audio": the soundtrack's length
        if value == "audio":
            return value
        kind = "int"
    if kind == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not _is_int(value):
            raise ConfigError(key, f"{key}: expected {_describe(f)}, got {show(value)}")
        _check_range(key, value, f)
        return value
    if kind == "float":
        if not _is_number(value):
            raise ConfigError(key, f"{key}: expected {_describe(f)}, got {show(value)}")
        try:
            number = float(value)
        except OverflowError:
            raise ConfigError(key, f"{key}: {show(value)} is out of range ({_describe(f)})"
                              ) from None
        _check_range(key, number, f)
        return number
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(key, f"{key}: expected true or false, got {show(value)}")
        return value
    if kind in ("str", "path"):
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(key, f"{key}: expected {_describe(f)}, got {show(value)}")
        if kind == "path" and "\0" in value:
            raise ConfigError(key, f"{key}: a file path cannot contain a NUL character")
        return value
    if kind == "paths":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(
                isinstance(v, str) and v.strip() for v in items):
            raise ConfigError(key, f"{key}: expected {_describe(f)}, got {show(value)}")
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


def _describe(f: Field) -> str:
    if f.kind == "choice":
        return "one of " + ", ".join(str(c) for c in f.choices)
    text = _TYPE_NAMES.get(f.kind, f.kind)
    bounds = []
    if f.low is not None:
        bounds.append(f">= {f.low:g}")
    if f.above is not None:
        bounds.append(f"> {f.above:g}")
    if f.high is not None:
        bounds.append(f"<= {f.high:g}")
    return text + (" " + " and ".join(bounds) if bounds else "")


def flat_keys(schema: Schema, prefix: str = "") -> list[str]:
    """All dotted keys of a schema, for did-you-mean and docs."""
    keys = []
    for k, v in schema.items():
        dotted = prefix + k
        keys.extend(flat_keys(v, dotted + ".") if isinstance(v, Mapping) else [dotted])
    return keys


def unknown_key(key: str, schema_root: Schema) -> ConfigError:
    """A ConfigError for an unknown dotted key, with a did-you-mean when one is close."""
    candidates = flat_keys(schema_root)
    leaf = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6) or [
        c for c in candidates if c.rsplit(".", 1)[-1] == leaf
    ][:1]
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(key, f"unknown key {key!r}{hint}")


def validate(raw: Mapping[str, Any], schema: Schema, prefix: str = "",
             root: Schema | None = None) -> dict[str, Any]:
    """Check `raw` against `schema`, fill defaults, and return the resolved nested dict."""
    root = schema if root is None else root
    if not isinstance(raw, Mapping):
        where = prefix.rstrip(".") or None
        raise ConfigError(where, f"{where or 'preset'}: expected a mapping of keys")
    for key in raw:
        if not isinstance(key, str) or key not in schema:
            raise unknown_key(prefix + str(key), root)
    out: dict[str, Any] = {}
    for key, spec in schema.items():
        dotted = prefix + key
        if isinstance(spec, Mapping):
            sub = raw.get(key)
            out[key] = validate({} if sub is None else sub, spec, dotted + ".", root)
        elif key in raw:
            out[key] = check_value(dotted, raw[key], spec)
        else:
            out[key] = spec.default
    return out
