"""One declaration per key feeds validation, the JSON Schema and the README: the three agree."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from pipelines.cli import main
from pipelines.config import presets
from pipelines.config.keys import PIPELINE_KEYS, schema_for
from pipelines.config.reference import json_schema, key_rows
from pipelines.config.schema import validate
from render.errors import ConfigError

README = Path(__file__).resolve().parent.parent / "README.md"


def _nest(key: str, value: object) -> dict:
    node: dict = {}
    parts = key.split(".")
    inner = node
    for part in parts[:-1]:
        inner = inner.setdefault(part, {})
    inner[parts[-1]] = value
    return node


@pytest.mark.parametrize("name", presets.available())
def test_every_shipped_preset_resolves_to_a_config_its_json_schema_accepts(name):
    preset = presets.load(name)
    jsonschema.validate(preset.config, json_schema(preset.settings.pipeline))


def _bad_values():
    """(pipeline, key, value): one value out of bounds or choices per bounded key."""
    cases = []
    for pipeline in PIPELINE_KEYS:
        for row in key_rows(pipeline):
            f = row.field
            if f.kind in ("int", "float") and f.high is not None:
                cases.append((pipeline, row.key, f.high + 1))
            if f.kind in ("int", "float") and f.low is not None:
                cases.append((pipeline, row.key, f.low - 1))
            if f.kind == "choice":
                cases.append((pipeline, row.key, "no-such-choice"))
            if f.kind == "bool":
                cases.append((pipeline, row.key, "yes"))
    return cases


BAD = _bad_values()


def test_the_bad_values_cover_every_pipeline():
    assert {p for p, _, _ in BAD} == set(PIPELINE_KEYS) and len(BAD) > 60


@pytest.mark.parametrize("pipeline,key,value", BAD)
def test_validation_and_the_json_schema_refuse_the_same_values(pipeline, key, value):
    raw = {"pipeline": pipeline, **_nest(key, value)}
    with pytest.raises(ConfigError) as info:
        validate(raw, schema_for(pipeline))
    assert info.value.key == key
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(raw, json_schema(pipeline))


def test_the_json_schema_refuses_unknown_keys_like_validation():
    raw = {"pipeline": "zoom", "dream": {"stepz": 3}}
    with pytest.raises(ConfigError, match="did you mean 'dream.steps'"):
        validate(raw, schema_for("zoom"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(raw, json_schema("zoom"))


def test_every_declared_key_is_in_the_readme():
    named = set(re.findall(r"`([a-z_][a-z_.0-9]*)`", README.read_text()))
    missing = sorted({row.key for row in key_rows()} - named)
    assert not missing, f"declared keys the README does not name: {missing}"


def _readme_key_cells() -> list[str]:
    """Dotted names in the first cell of every `| key | default | meaning |` table row."""
    cells, in_table = [], False
    for line in README.read_text().splitlines():
        if line.startswith("| key |"):
            in_table = True
        elif not line.startswith("|"):
            in_table = False
        elif in_table and not line.startswith("|---"):
            cells += re.findall(r"`([a-z_][a-z_.0-9*]*)`", line.split("|")[1])
    return cells


def test_every_key_the_readme_tables_name_is_declared():
    declared = {row.key for row in key_rows()}
    cells = _readme_key_cells()
    assert len(cells) > 40
    unknown = [c for c in cells if c not in declared and not (
        c.endswith(".*") and any(k.startswith(c[:-1]) for k in declared))]
    assert not unknown, f"README key tables name undeclared keys: {unknown}"


def test_keys_command_prints_the_table_and_the_json_schema(capsys):
    assert main(["keys", "zoom"]) == 0
    table = capsys.readouterr().out
    assert "gif.encoder = imagequant  (one of ffmpeg, imagequant)" in table
    assert "motion.zoom = 1.03" in table
    assert main(["keys", "video", "--json"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["properties"]["flow"]["properties"]["blend"]["maximum"] == 1
    assert main(["keys", "nosuch"]) == 2
    assert "unknown pipeline 'nosuch'" in capsys.readouterr().err
