"""The key table (pipelines.config.reference) as form fields, and edited fields back into the
CLI's `key=value` overrides. Values are shown as YAML scalars or flow lists, as on the command
line, so what a field holds is exactly what an override would say."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from pipelines.config import presets
from pipelines.config.reference import key_rows
from render.errors import UserError

# keys the studio sets itself: the files are the server's, never named by the page
SERVER_KEYS = ("input", "output", "frames_dir", "dream.guide", "dream.mask", "audio.file")
# keys that take a file path as one of their values: the page may only pick these words
WORDS_ONLY = {"model.weights": ("imagenet", "none", "null", "")}


@dataclass(frozen=True)
class FormField:
    """One field of the form: its dotted key, its one-line meaning and what it allows."""

    key: str
    help: str
    allowed: str
    scheduled: bool = False  # a keyframe schedule or an expression: the plot follows it


def fields(pipeline: str) -> list[FormField]:
    """The form of `pipeline`'s keys, in declaration order (less the server's own)."""
    return [FormField(row.key, row.field.help, row.allowed,
                      row.field.kind == "schedule" or row.key == "model.layers")
            for row in key_rows(pipeline)
            if row.key not in SERVER_KEYS and not row.key.startswith("cluster.")
            and row.key != "pipeline"]


def shown(value: Any) -> str:
    """A resolved value as a field shows it (as it would be typed in an override)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def lookup(config: Mapping[str, Any], key: str) -> Any:
    """The value of dotted `key` in a resolved config (None where absent)."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def values(preset: str) -> dict[str, str]:
    """Every field's value as `preset` resolves it."""
    loaded = presets.load(preset)
    return {f.key: shown(lookup(loaded.config, f.key))
            for f in fields(loaded.settings.pipeline)}


def overrides(preset: str, edited: Mapping[str, str]) -> list[str]:
    """The `key=value` overrides of the fields that differ from `preset`'s own values (an
    emptied field is `null`: the key's default)."""
    base = values(preset)
    out = []
    for key, text in edited.items():
        text = text.strip()
        if key in WORDS_ONLY and text.lower() not in WORDS_ONLY[key]:
            raise UserError(f"{key}: the studio takes {' or '.join(WORDS_ONLY[key][:2])} "
                            f"(a weights file on the server is the command line's), got "
                            f"{text!r}")
        if key in base and text != base[key]:
            out.append(f"{key}={text if text else 'null'}")
    return out


def pipeline_of(preset: str) -> str:
    return str(presets.load(preset).config["pipeline"])


def keys_for(pipelines: Sequence[str]) -> dict[str, list[FormField]]:
    """Each pipeline's form."""
    return {name: fields(name) for name in pipelines}


def plot(preset: str, edited: Mapping[str, str]) -> bytes:
    """PNG of every scheduled value per frame of `preset` as edited (the `--preview` plot), in
    this process and without TensorFlow; zoom presets only (a video's length comes from its
    clip: its Preview plots it). UserError: the CLI's one line."""
    from pipelines import preview, zoom
    from render.errors import ConfigError

    loaded = presets.load(preset, overrides(preset, edited))
    if loaded.config["pipeline"] != "zoom":
        raise UserError(f"plot: {preset} is a {loaded.config['pipeline']}; the plot of a video's "
                        "schedules comes with its Preview")
    try:
        line = zoom.timeline(loaded)  # type: ignore[arg-type]
    except ConfigError as exc:
        raise loaded.refuse(exc) from None
    fps = line.settings.sequence.fps or 24.0
    return preview.plot(line.settings, line.values, line.rendered, fps, preset)
