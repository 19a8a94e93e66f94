"""The README's key tables say what the shipped presets really resolve to (no drift)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.config import presets

README = Path(__file__).resolve().parent.parent / "README.md"
# README section -> the shipped preset whose resolved values its key table documents
SECTIONS = {"Keys every preset understands": "still", "Zoom sequences": "zoom",
            "Dreamed videos": "video", "Loops and GIFs": "zoom",
            "Rendering on a cluster": "video", "Music videos": "music"}
ROW = re.compile(r"^\|\s*`([a-z_.]+)`\s*\|([^|]*)\|")


def documented_defaults() -> list[tuple[str, str, str]]:
    """(section, key, default cell) of every one-key row with a single-value default."""
    rows, section = [], None
    for line in README.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip()
            section = title if title in SECTIONS else (section if line.startswith("###")
                                                       else None)
        elif section and (m := ROW.match(line)):
            text = m.group(2).strip()
            cell = re.split(r" \(|;", text)[0].strip().strip("`")
            if cell and " " not in cell and "→" not in text and "<" not in cell and cell != "—":
                rows.append((section, m.group(1), cell))
    return rows


def resolved(config: dict[str, Any], key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = node[part]
    return node


def test_the_readme_tables_are_found():
    keys = {key for _, key, _ in documented_defaults()}
    assert {"seed", "dream.steps", "frames", "flow.blend", "gif.dither"} <= keys


@pytest.mark.parametrize("section,key,cell", documented_defaults())
def test_documented_default_is_what_the_preset_resolves_to(section, key, cell):
    config = presets.load(SECTIONS[section]).config
    value = resolved(config, key)
    if isinstance(value, str):
        expected: Any = cell
    else:
        expected = None if cell == "none" else yaml.safe_load(cell)
    if isinstance(value, list):
        value = ",".join(map(str, value))
        expected = cell
    assert value == expected, f"README ({section}) says {key} = {cell}; the preset has {value}"
