"""Preset schema: the validator that turns a raw YAML mapping into a resolved one against the
declared keys (pipelines.config.keys, fields declared with render.fields.Field) — or one clear
ConfigError naming the key — and the key names for did-you-mean.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pipelines.config import keyframes
from render import fields
from render.errors import ConfigError
from render.fields import Field

Schema = Mapping[str, Any]  # nested: key -> Field or Schema


def check_value(key: str, value: Any, f: Field) -> Any:
    """Validate (and lightly normalise) one value against its field: schedules and frame
    counts here, every other kind by render.fields.check_value."""
    if value is None or f.kind not in ("schedule", "frames"):
        return fields.check_value(key, value, f)
    if f.kind == "schedule":
        sched = keyframes.parse(key, value)
        keyframes.check(key, sched, low=f.low, above=f.above, high=f.high)
        return value if isinstance(value, str) else float(value)
    if value == "audio":  # frames: the soundtrack's length
        return value
    return fields.check_value(key, value, replace(f, kind="int"))


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
