"""Presets: find a YAML preset by name or path, apply `key=value` overrides, validate it
against the common schema plus its pipeline's own keys.

YAML is read with yaml.safe_load only.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipelines import schedule
from pipelines.schema import Field, Schema, validate
from render.errors import UserError, show
from render.gradients import SMOOTHING
from render.models import MODELS, parse_layers

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
# no preset comes near these; they stop YAML alias bombs and runaway nesting early
MAX_PRESET_BYTES = 1 << 20
MAX_NODES = 10_000
MAX_DEPTH = 32

COMMON: dict[str, Any] = {
    "pipeline": Field("str", help="which pipeline renders this preset"),
    "input": Field("path", nullable=True, help="input file; omitted = generated image"),
    "output": Field("paths", nullable=True, help="output file(s); default out/<preset>.<ext>"),
    "size": Field("size", nullable=True, help="[width, height]; omitted = input size"),
    "seed": Field("int", 0, low=0, high=2**31 - 1, help="random seed (rolls)"),
    "model": {
        "name": Field("choice", "inception_v3", choices=tuple(MODELS), help="network"),
        "layers": Field("any", nullable=True, help="layer objective; omitted = model default"),
        "weights": Field("str", "imagenet", nullable=True,
                         help="imagenet, none (random) or a weights file"),
    },
    "dream": {
        "steps": Field("int", 10, low=1, high=1000, help="ascent steps per octave"),
        "step_size": Field("float", 0.01, above=0, high=1.0, help="step per unit-RMS gradient"),
        "octaves": Field("int", 4, low=1, high=12, help="octave count"),
        "octave_scale": Field("float", 1.4, above=1.0, high=4.0, help="size ratio of octaves"),
        "tile": Field("int", None, low=64, high=8192, nullable=True,
                      help="gradient tile size (px); omitted = 512 on a CPU, 1024 on a GPU"),
        "smoothing": Field("choice", None, choices=(None, *SMOOTHING), nullable=True,
                           help="gradient smoothing; omitted = model default"),
    },
}


@dataclass(frozen=True)
class Preset:
    """A resolved preset: validated settings plus where they came from."""

    name: str
    source: Path
    config: dict[str, Any]

    def record(self) -> dict[str, Any]:
        """What every sidecar says about the preset: name, file, digest, resolved settings."""
        return {"preset": self.name, "source": str(self.source), "digest": self.digest,
                "config": self.config}

    @property
    def digest(self) -> str:
        """Hash of the resolved settings (what a render's checkpoints are valid for)."""
        blob = json.dumps(self.config, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def available() -> list[str]:
    """Names of the presets shipped in presets/."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def find(name_or_path: str) -> Path:
    """Resolve a preset name (presets/NAME.yaml) or a path to a YAML file."""
    candidate = Path(name_or_path)
    looks_like_path = candidate.suffix in (".yaml", ".yml") or "/" in name_or_path
    if looks_like_path:
        if candidate.is_dir():
            raise UserError(f"preset file {candidate}: is a directory, expected a YAML file")
        if not candidate.is_file():
            raise UserError(f"preset file {candidate} not found")
        return candidate
    path = PRESETS_DIR / f"{name_or_path}.yaml"
    if path.is_file():
        return path
    names = available()
    close = difflib.get_close_matches(name_or_path, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UserError(f"unknown preset {name_or_path!r}{hint} (available: {', '.join(names)})")


def read_yaml(path: Path) -> dict[str, Any]:
    """safe_load a YAML mapping; syntax errors report line and column."""
    try:
        if path.stat().st_size > MAX_PRESET_BYTES:
            raise UserError(f"{path}: preset is larger than {MAX_PRESET_BYTES >> 20} MB")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UserError(f"{path}: cannot read preset ({reason})") from None
    data = safe_yaml(text, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: a preset must be a mapping of keys, got {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """'dream.steps=5' -> (['dream', 'steps'], 5); values are YAML scalars or lists."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UserError(f"override {text!r}: expected key=value (e.g. dream.steps=5)")
    parts = key.split(".")
    if any(not p for p in parts):
        raise UserError(f"override {text!r}: malformed key {key!r}")
    parsed = safe_yaml(value, f"override {text!r}", syntax="value is not valid YAML") \
        if value.strip() else None
    return parts, parsed


def safe_yaml(text: str, where: str, syntax: str = "YAML syntax error") -> Any:
    """yaml.safe_load `text`; any failure, or a result no preset needs (recursive or
    multiplying aliases, deep nesting, keys that are not text, integers beyond 64 bits), is a
    UserError naming `where` (with line and column for syntax errors)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or (str(exc).splitlines() or [""])[0]
        raise UserError(f"{where}{at}: {syntax}: {problem}") from None
    except RecursionError:
        raise UserError(f"{where}: nested too deeply") from None
    except Exception as exc:  # the constructors' own errors: '!!int x', 5000-digit numbers...
        raise UserError(f"{where}: {syntax}: {(str(exc).splitlines() or [''])[0][:80]}"
                        ) from None
    _check_tree(data, where)
    return data


def _check_tree(data: Any, where: str) -> None:
    """Walk the loaded YAML once, with bounds (see safe_yaml)."""
    stack, seen = [(data, 0)], 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > MAX_NODES or depth > MAX_DEPTH:
            raise UserError(f"{where}: too large or nested too deeply (at most {MAX_NODES} "
                            f"values, {MAX_DEPTH} levels; recursive YAML aliases?)")
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    raise UserError(f"{where}: key {show(key, 40)} is not text; quote it")
                stack.append((value, depth + 1))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, int) and node.bit_length() > 64:
            raise UserError(f"{where}: number too large")


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Merge dotted `key=value` overrides into a copy of `data`."""
    merged: dict[str, Any] = json.loads(json.dumps(data, default=str))  # deep copy
    for text in overrides:
        parts, value = parse_override(text)
        node = merged
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise UserError(f"override {text!r}: {'.'.join(parts[:i + 1])} is not a mapping")
            node = child
        node[parts[-1]] = value
    return merged


def load(name_or_path: str, overrides: Sequence[str] = (),
         schemas: Mapping[str, Schema] | None = None) -> Preset:
    """Load, override and validate a preset. `schemas` maps pipeline name -> extra keys."""
    if schemas is None:
        from pipelines.registry import PIPELINES

        schemas = {name: p.schema for name, p in PIPELINES.items()}
    path = find(name_or_path)
    data = apply_overrides(read_yaml(path), overrides)
    pipes = schemas
    pipeline = data.get("pipeline")
    if not isinstance(pipeline, str) or pipeline not in pipes:
        raise UserError(
            f"{path}: key 'pipeline' must be one of {', '.join(pipes)}, got {show(pipeline, 40)}"
        )
    extra = pipes[pipeline]
    schema = {**COMMON, **{k: v for k, v in extra.items() if k not in ("model", "dream")}}
    for section in ("model", "dream"):
        schema[section] = {**COMMON[section], **extra.get(section, {})}
    try:
        config = validate(data, schema)
        check_consistency(config, schema)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    return Preset(path.stem, path, config)


def check_consistency(config: Mapping[str, Any], schema: Schema) -> None:
    """Checks across keys that would otherwise fail only once rendering has begun: layer
    names against the model, a weights file that must exist, and keyframes within `frames`."""
    model = config["model"]
    frames = config.get("frames")
    layers = model["layers"]
    if isinstance(layers, Mapping) and "frames" in config:  # sequences may schedule weights
        layers = {name: _first_weight(f"model.layers.{name}", value, frames)
                  for name, value in layers.items()}
    if layers is not None:
        parse_layers(MODELS[model["name"]], layers)
    weights = model["weights"]
    if (weights is not None and str(weights).lower() not in ("imagenet", "none")
            and not Path(weights).expanduser().is_file()):
        raise UserError(f"model.weights: file {weights} not found (or use imagenet, none)")
    if isinstance(frames, int):
        for key, value in _scheduled(config, schema):
            schedule.check(key, schedule.parse(key, value), frames)


def _first_weight(key: str, value: Any, frames: int | None) -> Any:
    """A layer entry with a scheduled weight checked and replaced by a number."""
    weight = value.get("weight") if isinstance(value, Mapping) else value
    if not isinstance(weight, str):
        return value
    sched = schedule.parse(key, weight)
    if isinstance(frames, int):
        schedule.check(key, sched, frames)
    return {**value, "weight": sched.at(0)} if isinstance(value, Mapping) else sched.at(0)


def _scheduled(config: Mapping[str, Any], schema: Schema, prefix: str = ""
               ) -> list[tuple[str, str]]:
    """(dotted key, value) of every schedule-kind key set to a keyframe string."""
    found = []
    for key, spec in schema.items():
        value = config.get(key)
        if isinstance(spec, Mapping) and isinstance(value, Mapping):
            found += _scheduled(value, spec, f"{prefix}{key}.")
        elif isinstance(spec, Field) and spec.kind == "schedule" and isinstance(value, str):
            found.append((prefix + key, value))
    return found
