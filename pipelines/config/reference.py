"""The declared keys (pipelines.config.keys) as a reference: one row per key with the
pipelines that take it (`key_rows`, printed by `dreamreel keys`), and a JSON Schema per
pipeline (`json_schema`, `dreamreel keys PIPELINE --json`) that a web form can be built from.
Both are made from the same declarations validation uses; nothing here is written by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipelines.config.keys import PIPELINE_KEYS, schema_for
from pipelines.config.schema import Schema
from render.fields import Field, describe

_SIZE = {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 16384},
         "minItems": 2, "maxItems": 2}
_KINDS: dict[str, dict[str, Any]] = {
    "int": {"type": "integer"}, "float": {"type": "number"}, "str": {"type": "string"},
    "path": {"type": "string", "minLength": 1}, "bool": {"type": "boolean"},
    "paths": {"anyOf": [{"type": "string", "minLength": 1},
                        {"type": "array", "items": {"type": "string"}, "minItems": 1}]},
    "size": _SIZE, "schedule": {"anyOf": [{"type": "number"}, {"type": "string"}]},
    "frames": {"anyOf": [{"type": "integer"}, {"const": "audio"}]}, "any": {},
}


@dataclass(frozen=True)
class KeyRow:
    """One declared key: its dotted name, its declaration and the pipelines that take it."""

    key: str
    field: Field
    pipelines: tuple[str, ...]

    @property
    def allowed(self) -> str:
        return describe(self.field)


def _flat(schema: Schema, prefix: str = "") -> dict[str, Field]:
    out: dict[str, Field] = {}
    for name, spec in schema.items():
        if isinstance(spec, Mapping):
            out.update(_flat(spec, f"{prefix}{name}."))
        else:
            out[prefix + name] = spec
    return out


def key_rows(pipeline: str | None = None) -> list[KeyRow]:
    """Every declared key (of one pipeline, or of all), in declaration order. A key whose
    declaration differs between pipelines (a video's `frames`) has one row per declaration."""
    names = [pipeline] if pipeline else list(PIPELINE_KEYS)
    rows: list[tuple[str, Field, list[str]]] = []
    for name in names:
        for key, spec in _flat(schema_for(name)).items():
            same = [where for k, f, where in rows if k == key and f == spec]
            if same:
                same[0].append(name)
            else:
                rows.append((key, spec, [name]))
    return [KeyRow(key, spec, tuple(where)) for key, spec, where in rows]


def field_schema(f: Field) -> dict[str, Any]:
    """The JSON Schema of one declared key."""
    if f.kind == "choice":
        out: dict[str, Any] = {"enum": list(f.choices)}
    else:
        out = dict(_KINDS[f.kind])
    if f.kind in ("int", "float"):
        if f.low is not None:
            out["minimum"] = f.low
        if f.high is not None:
            out["maximum"] = f.high
        if f.above is not None:
            out["exclusiveMinimum"] = f.above
    if f.nullable and f.kind != "any":
        out = {"anyOf": [out, {"type": "null"}]}
    if f.default is not None:
        out["default"] = f.default
    if f.help:
        out["description"] = f.help
    return out


def _object(schema: Schema) -> dict[str, Any]:
    props = {name: _object(spec) if isinstance(spec, Mapping) else field_schema(spec)
             for name, spec in schema.items()}
    return {"type": "object", "properties": props, "additionalProperties": False}


def json_schema(pipeline: str) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of a `pipeline` preset's keys. It checks types, bounds
    and choices key by key; what spans keys (and keyframe strings, expressions, files) is
    checked by `dreamreel render` itself."""
    body = _object(schema_for(pipeline))
    body["properties"]["pipeline"] = {"const": pipeline,
                                      "description": "which pipeline renders this preset"}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"dreamreel {pipeline} preset", **body}
