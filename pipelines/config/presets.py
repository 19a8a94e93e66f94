"""Presets: find a YAML preset by name or path, apply `key=value` overrides, validate it
against its pipeline's keys (pipelines.config.keys) into typed Settings.

YAML is read with yaml.safe_load only. A bad value is one line saying where it came from:
`command line: dream.stepz=3: ...` or `.../pipelines/presets/zoom.yaml: ...`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

from pipelines.config import keys
from pipelines.config.build import build
from pipelines.config.schema import validate
from pipelines.config.settings import Settings
from render.errors import ConfigError, UserError, show

# the shipped presets are package data (pipelines/presets/*.yaml), so an installed dreamreel
# has them too; a plain directory in a checkout and in a wheel's install alike
PRESETS_DIR = Path(str(resources.files("pipelines") / "presets")).resolve()
# no preset comes near these; they stop YAML alias bombs and runaway nesting early
MAX_PRESET_BYTES = 1 << 20
MAX_NODES = 10_000
MAX_DEPTH = 32


S = TypeVar("S", bound=Settings, covariant=True)


@dataclass(frozen=True)
class Preset(Generic[S]):
    """A resolved preset: the validated key tree (recorded in sidecars, hashed for resume),
    the typed settings built from it (of its pipeline's own Settings class, which is what the
    pipeline's `run` is typed to take), and the keys the command line set."""

    name: str
    source: Path
    config: dict[str, Any]
    settings: S
    overrides: tuple[str, ...] = ()  # the key=value texts of the command line

    def refuse(self, exc: ConfigError) -> UserError:
        """A ConfigError found after loading (e.g. once a video's length is known), as one
        line saying where the bad value came from."""
        return UserError(f"{origin(exc.key, self.overrides, self.source)}: {exc}")

    def record(self) -> dict[str, Any]:
        """What every sidecar says about the preset: name, file, digest, resolved settings."""
        return {"preset": self.name, "source": str(self.source), "digest": self.digest,
                "config": self.config}

    @property
    def digest(self) -> str:
        """Hash of the resolved settings (what a render's checkpoints are valid for)."""
        blob = json.dumps(_framing(self.config), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _framing(config: dict[str, Any]) -> dict[str, Any]:
    """`config` less what does not change the dreamed frames: where a render runs, except a
    cluster's chunking (issue 18), so a render resumes with other workers and one without a
    cluster has the digest it always had; and the finishing (issue 26): an interrupted render
    resumes its dreamed frames when only the finishing changed."""
    config = {k: v for k, v in config.items() if k != "finish"}
    cluster = config.get("cluster")
    if not isinstance(cluster, dict):
        return config
    rest = {k: v for k, v in config.items() if k != "cluster"}
    if cluster.get("address", "none") == "none":
        return rest
    return {**rest, "cluster": {k: cluster.get(k) for k in ("chunk", "overlap")}}


def available() -> list[str]:
    """Names of the presets shipped in pipelines/presets/."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def describe(name: str) -> str:
    """The one-line `description` of a shipped preset (empty when it has none or is broken)."""
    try:
        data = read_yaml(PRESETS_DIR / f"{name}.yaml")
    except UserError:
        return ""
    text = data.get("description")
    return text.strip() if isinstance(text, str) else ""


def find(name_or_path: str) -> Path:
    """Resolve a preset name (pipelines/presets/NAME.yaml) or a path to a YAML file."""
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
    for group, leaf in keys.SHORTHANDS.items():  # `audio: FILE` = `audio: {file: FILE}`
        if group in merged and not isinstance(merged[group], dict):
            merged[group] = {leaf: merged[group]}
    for text in overrides:
        parts, value = parse_override(text)
        if len(parts) == 1 and parts[0] in keys.SHORTHANDS and not isinstance(value, dict):
            parts = [parts[0], keys.SHORTHANDS[parts[0]]]
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


def setter(key: str, overrides: Sequence[str]) -> str | None:
    """The last override that set dotted `key` (or a key inside or above it), or None."""
    for text in reversed(overrides):
        set_key = text.partition("=")[0].strip()
        if key == set_key or key.startswith(set_key + ".") or set_key.startswith(key + "."):
            return text
    return None


ECHO_LIMIT = 100  # characters of a command-line override an error echoes


def origin(key: str | None, overrides: Sequence[str], path: Path) -> str:
    """Where the value of dotted `key` came from: the last override that set it (or a key
    inside or above it), else the preset file."""
    text = setter(key, overrides) if key is not None else None
    if text is not None and len(text) > ECHO_LIMIT:  # a 5000-character expression, echoed
        text = text[:ECHO_LIMIT - 3] + "..."
    return f"command line: {text}" if text is not None else str(path)


def written_for(data: dict[str, Any], pipeline: str) -> int | None:
    """The frame count a preset file's own keyframes describe (its `frames`, else the
    default); None when it has none (a video: its length is the source's)."""
    frames = keys.schema_for(pipeline).get("frames")
    value = data.get("frames", frames.default if frames is not None else None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def load(name_or_path: str, overrides: Sequence[str] = ()) -> Preset[Any]:
    """Load, override and validate a preset into typed Settings."""
    path = find(name_or_path)
    own = read_yaml(path)
    data = apply_overrides(own, overrides)
    try:
        pipeline = data.get("pipeline")
        if not isinstance(pipeline, str) or pipeline not in keys.PIPELINE_KEYS:
            raise ConfigError("pipeline", f"key 'pipeline' must be one of "
                              f"{', '.join(keys.PIPELINE_KEYS)}, got {show(pipeline, 40)}")
        config = validate(data, keys.schema_for(pipeline))
        settings = build(config, lambda key: setter(key, overrides) is not None,
                         written_for(own, pipeline))
    except ConfigError as exc:
        raise UserError(f"{origin(exc.key, overrides, path)}: {exc}") from None
    return Preset(path.stem, path, config, settings, tuple(overrides))
