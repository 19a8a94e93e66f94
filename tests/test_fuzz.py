"""Fuzzing (issue 7, section 3): whatever the preset loader, the override parser, the schema
validator and the schedule parser are given, they either succeed or raise UserError — never
another exception — and a UserError message is always one line.

Inputs mix arbitrary text with text shaped like the real thing (known keys, YAML values,
keyframe strings), so the examples reach past the first syntax check. Example counts are
modest (the whole file runs in seconds); set DREAMREEL_FUZZ_EXAMPLES for a deeper run.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipelines.config import keyframes as schedule
from pipelines.config import presets
from pipelines.config.expressions import Expr, plain_variables
from pipelines.config.keys import PIPELINE_KEYS, schema_for
from pipelines.config.schema import Field, check_value, flat_keys, validate
from render.errors import UserError
from render.models import MODELS

# DREAMREEL_FUZZ_EXAMPLES=5000 for a deeper run
FUZZ = settings(max_examples=int(os.environ.get("DREAMREEL_FUZZ_EXAMPLES", "150")),
                deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


SCHEMAS = {name: schema_for(name) for name in PIPELINE_KEYS}
KEYS = sorted({k for s in SCHEMAS.values() for k in flat_keys(s)})


def _fields(schema: dict[str, Any]) -> list[Field]:
    out = []
    for v in schema.values():
        out.extend(_fields(v) if isinstance(v, dict) else [v])
    return out


FIELDS = [f for s in SCHEMAS.values() for f in _fields(s)]


def outcome(call: Callable[[], Any]) -> Any:
    """Run `call`: its result, or None after a UserError (which must be one line); any other
    exception fails the test."""
    try:
        result = call()
    except UserError as exc:
        message = str(exc)
        assert message and "\n" not in message and "\r" not in message, repr(message)
        event("UserError")  # --hypothesis-show-statistics: how often each path is reached
        return None
    event("accepted")
    return result


# ---------------------------------------------------------------- strategies

SPECIAL_TEXT = st.sampled_from([
    "", " ", "~", "null", ".nan", "-.inf", ".inf", "1e400", "1.0e400", "0x" + "f" * 40,
    "7" * 5000, "[0,10]", "[60000,60000]", "[1,1]", "{a: 1}", "&a [*a]", "!!python/name:os.system",
    "!!binary AAAA", "!!timestamp 99999-01-01", "!!int x", "2024-01-01", "yes", "'0:(1)'",
    "'0:(1.02), 60:(1.05)'", "'0:(nan)'", "'-1:(2)'", "'0:(1),,2:(3)'", "[" * 200,
    "a\x00b", "\t", "é☃", "$(touch /tmp/x)", "; rm -rf /", "all", "none", "imagenet",
])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                    st.text(max_size=20), SPECIAL_TEXT)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(KEYS).map(lambda k: k.split(".")[-1]),
                              st.text(max_size=8)), inner, max_size=4)), max_leaves=12)


def as_yaml(value: Any) -> str:
    """A value written as one-line YAML."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix(
        "\n...").removesuffix("...").strip()


VALUE_TEXT = st.one_of(st.text(max_size=30), SPECIAL_TEXT, VALUES.map(as_yaml))
KEY_TEXT = st.one_of(st.sampled_from(KEYS), st.text(max_size=15),
                     st.sampled_from(KEYS).map(lambda k: k + ".x"),
                     st.sampled_from(KEYS).map(lambda k: k.upper()))
OVERRIDES = st.one_of(st.text(max_size=40),
                      st.builds(lambda k, v: f"{k}={v}", KEY_TEXT, VALUE_TEXT))

NUMBER_TEXT = st.one_of(st.integers(-10, 10**12).map(str), st.floats().map(repr),
                        st.text(alphabet="0123456789-+.eE_naifNI ", max_size=8))
KEYFRAME = st.builds(lambda f, v, a, b: f"{f}{a}:({v}){b}", NUMBER_TEXT, NUMBER_TEXT,
                     st.sampled_from(["", " "]), st.sampled_from(["", " ", ")", "("]))
SCHEDULE_TEXT = st.one_of(
    st.lists(KEYFRAME, min_size=1, max_size=5).map(", ".join),
    st.lists(KEYFRAME, min_size=1, max_size=5).map(",".join),
    st.text(alphabet="0123456789:(),.-e ", max_size=30),
    st.text(max_size=30),
    # expressions (pipelines.config.expressions): alone, inside keyframes, and near-misses
    st.text(alphabet="0123456789tsfpi+-*/%(), .sincoabmxl", max_size=30),
    st.builds(lambda f, e: f"0:(1), {f}:({e})", st.integers(0, 90),
              st.text(alphabet="0123456789t+-*/().s ", min_size=1, max_size=12)))
SCHEDULE_VALUES = st.one_of(SCHEDULE_TEXT, SCALARS, VALUES)


def nested(dotted: dict[str, Any]) -> dict[str, Any]:
    """{'dream.steps': 3} -> {'dream': {'steps': 3}} (later keys win over clashes)."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.get(part)
            node[part] = node = child if isinstance(child, dict) else {}
        node[leaf] = value
    return out


def _dotted(schema: dict[str, Any], prefix: str = "") -> list[tuple[str, Field]]:
    out = []
    for k, v in schema.items():
        out += _dotted(v, f"{prefix}{k}.") if isinstance(v, dict) else [(prefix + k, v)]
    return out


KEYED_FIELDS = sorted({k: f for s in SCHEMAS.values() for k, f in _dotted(s)}.items())
LAYER_NAMES = sorted({n for m in MODELS.values() for n in m.layers}) + ["nope", "all"]


def plausible(field: Field) -> st.SearchStrategy[Any]:
    """Values of the field's own kind, in range or just outside it, so that examples get
    past the type checks to the range and cross-key checks."""
    low = field.low if field.low is not None else field.above
    lo = -1000 if low is None else low
    hi = 1000 if field.high is None else field.high
    numbers = st.one_of(st.integers(int(lo) - 2, int(min(hi, 10**6)) + 2),
                        st.floats(lo - 1, min(hi, 1e6) + 1), st.sampled_from([lo, hi]))
    kinds = {
        "int": numbers, "float": numbers, "bool": st.booleans(),
        "choice": st.one_of(st.sampled_from(field.choices or (None,)), st.text(max_size=8)),
        "size": st.lists(st.integers(-1, 20000), min_size=1, max_size=3),
        "frames": st.one_of(numbers, st.just("audio")),
        "schedule": st.one_of(numbers, st.lists(st.tuples(st.integers(0, 80), numbers),
                                                min_size=1, max_size=4).map(
            lambda kv: ", ".join(f"{k}:({v})" for k, v in kv))),
        "str": st.sampled_from(["bayer:3", "none", "imagenet", "x"]),
        "path": st.sampled_from(["in.png", "out/a.png", "a b/ç.mp4", "$(x)"]),
        "paths": st.one_of(st.sampled_from(["o.png", "o.mp4", "o.gif", "o.avi"]),
                           st.lists(st.sampled_from(["o.mp4", "o.gif", "o.png"]), max_size=3)),
        "any": st.one_of(st.sampled_from(LAYER_NAMES), st.lists(st.sampled_from(LAYER_NAMES),
                                                                max_size=3),
                         st.dictionaries(st.sampled_from(LAYER_NAMES), st.one_of(
                             numbers, st.just("0:(1), 5:(0)"),
                             st.fixed_dictionaries({"weight": numbers, "channels": st.lists(
                                 st.integers(-1, 2000), max_size=3)})), max_size=3)),
    }
    return st.one_of(kinds[field.kind], SCALARS) if field.nullable else kinds[field.kind]


PLAUSIBLE = st.sampled_from(KEYED_FIELDS).flatmap(
    lambda kf: plausible(kf[1]).map(lambda v: f"{kf[0]}={as_yaml(v)}"))
ANY_OVERRIDE = st.one_of(OVERRIDES, PLAUSIBLE, PLAUSIBLE)

PAIRS = st.one_of(st.tuples(KEY_TEXT, VALUES), st.sampled_from(KEYED_FIELDS).flatmap(
    lambda kf: st.tuples(st.just(kf[0]), plausible(kf[1]))))
PRESET_DATA = st.builds(
    lambda pipeline, pairs: {"pipeline": pipeline, **nested(dict(pairs))},
    st.one_of(st.sampled_from(sorted(PIPELINE_KEYS)), st.sampled_from(sorted(PIPELINE_KEYS)),
              SCALARS),
    st.lists(PAIRS, max_size=6))


# ---------------------------------------------------------------- the loader and overrides


@pytest.fixture(scope="module")
def preset_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(text=OVERRIDES)
def test_parse_override_succeeds_or_raises_user_error(text):
    parsed = outcome(lambda: presets.parse_override(text))
    if parsed is not None:
        parts, _ = parsed
        assert parts and all(parts)


@FUZZ
@given(preset=st.sampled_from(presets.available()),
       overrides=st.lists(ANY_OVERRIDE, max_size=4))
def test_overrides_on_shipped_presets_succeed_or_raise_user_error(preset, overrides):
    loaded = outcome(lambda: presets.load(preset, overrides))
    if loaded is not None:
        assert loaded.config["pipeline"] in PIPELINE_KEYS and len(loaded.digest) == 16


@FUZZ
@given(text=st.one_of(st.text(max_size=300), PRESET_DATA.map(
    lambda d: yaml.safe_dump(d, allow_unicode=True))))
def test_preset_files_load_or_raise_user_error(preset_dir, text):
    path = preset_dir / "p.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    outcome(lambda: presets.load(str(path)))


@FUZZ
@given(data=PRESET_DATA, overrides=st.lists(ANY_OVERRIDE, max_size=3))
def test_structured_presets_with_overrides_load_or_raise_user_error(preset_dir, data,
                                                                   overrides):
    path = preset_dir / "q.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    outcome(lambda: presets.load(str(path), overrides))


@FUZZ
@given(name=st.one_of(st.text(max_size=30), st.sampled_from(presets.available()),
                     st.sampled_from(presets.available()).map(lambda n: n + "x")))
def test_preset_names_resolve_or_raise_user_error(name):
    outcome(lambda: presets.find(name))


@FUZZ
@given(data=st.data(), field=st.sampled_from(FIELDS))
def test_check_value_succeeds_or_raises_user_error(data, field):
    value = data.draw(st.one_of(VALUES, plausible(field)))
    outcome(lambda: check_value("key", value, field))


@FUZZ
@given(pipeline=st.sampled_from(sorted(SCHEMAS)), raw=st.one_of(VALUES, PRESET_DATA))
def test_validate_succeeds_or_raises_user_error(pipeline, raw):
    outcome(lambda: validate(raw, SCHEMAS[pipeline]))


# ---------------------------------------------------------------- schedules


@FUZZ
@given(value=SCHEDULE_VALUES, frames=st.integers(1, 10**6),
       how=st.sampled_from(schedule.INTERPOLATIONS),
       bounds=st.sampled_from([{}, {"low": 1, "high": 1000}, {"above": 0, "high": 10},
                               {"low": -180, "high": 180}]))
def test_schedules_parse_and_check_or_raise_user_error(value, frames, how, bounds):
    parsed = outcome(lambda: schedule.parse("motion.zoom", value, how))
    if parsed is None:
        return
    assert list(parsed.frames) == sorted(set(parsed.frames)) and parsed.frames[0] >= 0
    assert all(isinstance(v, Expr) or math.isfinite(v) for v in parsed.values)
    checked = outcome(lambda: schedule.check("motion.zoom", parsed, frames, **bounds))
    if checked is not None and parsed.dynamic:  # computed for every frame, then checked
        if parsed.features:
            return  # audio features: refused without a soundtrack (test_expressions)
        n = min(frames, 200)
        done = outcome(lambda: schedule.resolve("motion.zoom", parsed, n,
                                                plain_variables(n, 24.0), **bounds))
        if done is not None:
            table = np.array([done.at(t) for t in range(n)])
            assert np.all(np.isfinite(table))
            assert np.all(table >= bounds.get("low", -np.inf))
            assert np.all(table > bounds.get("above", -np.inf))
            assert np.all(table <= bounds.get("high", np.inf))
        return
    if checked is not None:
        for t in {0, checked.last_key(), frames - 1}:
            assert isinstance(checked.at(t), float)


@FUZZ
@given(frames=st.lists(st.integers(0, 200), min_size=1, max_size=6, unique=True),
       values=st.lists(st.floats(-1e6, 1e6), min_size=6, max_size=6))
def test_well_formed_schedules_round_trip(frames, values):
    """A schedule written in the documented form parses back to its keyframes."""
    text = ", ".join(f"{f}:({v!r})" for f, v in zip(frames, values, strict=False))
    parsed = schedule.parse("k", text)
    pairs = sorted(zip(frames, values, strict=False))
    assert parsed.frames == tuple(f for f, _ in pairs)
    assert parsed.values == tuple(v for _, v in pairs)
