"""Expressions in schedulable keys: the allow-list evaluator, keyframes holding expressions,
per-frame bound checks, and the one-line errors (exit 2, nothing written) of bad ones."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipelines.cli import main
from pipelines.config import expressions, keyframes, presets
from render.errors import ConfigError


def values(text: str, frames: int = 10, fps: float = 10.0, **features) -> np.ndarray:
    expr = expressions.parse("k", text)
    return expressions.evaluate(expr, frames, {**expressions.plain_variables(frames, fps),
                                               **features})


def test_variables_functions_and_operators():
    t = np.arange(10.0)
    assert np.allclose(values("0.3 * sin(2 * pi * t / 96)"), 0.3 * np.sin(2 * math.pi * t / 96))
    assert np.allclose(values("s * fps"), t)
    assert np.allclose(values("max(t, 3, 2) - min(t, 5)"), np.maximum(t, 3) - np.minimum(t, 5))
    assert np.allclose(values("clip(t - 4, 0, 2) + abs(-t) // 3 + t % 4 + 2 ** -1"),
                       np.clip(t - 4, 0, 2) + t // 3 + t % 4 + 0.5)
    assert np.allclose(values("cos(pi)"), -1.0) and values("cos(pi)").shape == (10,)


def test_smooth_and_features():
    beat = np.zeros(10)
    beat[[2, 6]] = 1.0
    assert np.allclose(values("smooth(beat, 3)", beat=beat),
                       np.convolve(np.pad(beat, 1, mode="edge"), np.ones(3) / 3, "valid"))
    band = np.linspace(0, 1, 10)
    expr = expressions.parse("k", "1 + 2 * band(60, 250) + beat")
    assert expr.features == {"beat", "band_60_250"} and expr.bands == {(60.0, 250.0)}
    assert np.allclose(values("1 + 2 * band(60, 250)", band_60_250=band), 1 + 2 * band)


@pytest.mark.parametrize("text,message", [
    ("1 + foo", "unknown variable 'foo' at column 5"),
    ("1 + exp(t)", "unknown function 'exp' at column 5"),
    ("t +* 2", "syntax error at column 4"),
    ("__import__('os').system('true')", "unknown function \"__import__('os').system\""),
    ("t.real", "attribute not allowed"),
    ("[t][0]", "not allowed"),
    ("'a' * 3", "'a' at column 1 of \"'a' * 3\" is not a number"),
    ("t if t else 1", "not allowed"),
    ("t < 1", "not allowed"),
    ("(lambda: 1)()", "unknown function"),
    ("sin(t, 2)", "sin() at column 1 of 'sin(t, 2)' takes 1 arguments"),
    ("band(250, 60)", "needs 0 <= low < high"),
    ("band(t, 60)", "must be plain numbers"),
    ("smooth(rms, 2.5)", "whole number"),
    ("1e999", "out of range"),
])
def test_refused_expressions(text, message):
    with pytest.raises(ConfigError, match=None) as info:
        expressions.parse("motion.zoom", text)
    assert message in str(info.value) and str(info.value).startswith("motion.zoom: ")


def test_keyframes_hold_expressions_and_interpolate_per_frame():
    sched = keyframes.parse("motion.zoom", "0:(1.02), 48:(1 + 0.05 * beat)")
    assert sched.dynamic and sched.features == {"beat"}
    beat = np.linspace(0, 1, 60)
    table = keyframes.resolve("motion.zoom", sched, 60, {
        **expressions.plain_variables(60, 24), "beat": beat}, above=0, high=10)
    for t in (0, 12, 24, 47):  # linear between the two keys' values at t
        w = t / 48
        assert table.at(t) == pytest.approx((1 - w) * 1.02 + w * (1 + 0.05 * beat[t]))
    assert table.at(55) == pytest.approx(1 + 0.05 * beat[55])  # after the last key: held
    with pytest.raises(ConfigError, match=r"unknown variable 'bea' at column 17"):
        keyframes.parse("motion.zoom", "0:(1.02), 48:(1+bea)")
    with pytest.raises(RuntimeError):  # never silently used without its per-frame values
        sched.at(3)


def test_bounds_and_arithmetic_errors_name_the_frame():
    plain = expressions.plain_variables(30, 10)
    with pytest.raises(ConfigError, match=r"motion.zoom: -0\.\d+ at frame 4 \(from "
                                          r"'1 \+ 2 \* sin\(t\)'\) is not allowed; must be > 0"):
        keyframes.resolve("motion.zoom", keyframes.parse("motion.zoom", "1 + 2 * sin(t)"), 30,
                          plain, above=0)
    with pytest.raises(ConfigError, match=r"division by zero at frame 7 in expression '1/\(t-7\)'"):
        keyframes.resolve("dream.step_size", keyframes.parse("dream.step_size", "1/(t-7)"), 30,
                          plain, above=0)
    with pytest.raises(ConfigError, match=r"not a finite number \(overflow\) at frame 0"):
        keyframes.resolve("motion.angle", keyframes.parse("motion.angle", "10 ** 400"), 30,
                          plain)


def test_a_cut_schedule_keeps_its_expressions():
    sched = keyframes.parse("motion.zoom", "0:(1), 10:(1 + t)")
    cut = keyframes.truncated(sched, 6)
    plain = expressions.plain_variables(6, 10)
    full = keyframes.resolve("z", sched, 11, expressions.plain_variables(11, 10))
    short = keyframes.resolve("z", cut, 6, plain)
    assert [short.at(t) for t in range(6)] == pytest.approx([full.at(t) for t in range(6)])


def test_presets_accept_expressions_and_audio_shorthand(tmp_path):
    preset = presets.load("zoom", ["motion.zoom=1.01 + 0.04 * beat", "audio=song.wav",
                                   "audio.start=3"])
    assert preset.settings.audio.track.name == "song.wav" and preset.settings.audio.start == 3
    assert preset.settings.motion.zoom.features == {"beat"}
    layers = presets.load("zoom", ["model.layers={mixed5: '1 + 2 * band(60, 250)'}",
                                   "audio=song.wav"])
    assert layers.settings.model.weight_schedules["mixed5"].bands == {(60.0, 250.0)}


@pytest.mark.parametrize("args,message", [
    (["motion.zoom=1 + foo"], "command line: motion.zoom=1 + foo: motion.zoom: unknown "
                              "variable 'foo' at column 5"),
    (["dream.step_size=0.01 +* t"], "syntax error at column 7"),
    (["motion.zoom=1.01 + 0.04 * beat"], "uses the audio feature 'beat' but no soundtrack"),
    (["frames=audio"], "frames: audio needs a soundtrack"),
    (["motion.zoom=1 / (t - 3)"], "division by zero at frame 3"),
    (["frames=30", "motion.angle=200 * sin(t / 10)"],
     "motion.angle: 186.408 at frame 12 (from '200 * sin(t / 10)') is not allowed; must be <= 180"),
    (["dream.steps=0:(4), 5:(t - 5)"], "dream.steps: 0.4 at frame 3"),
])
def test_cli_refuses_bad_expressions_in_one_line(args, message, tmp_path, capsys):
    out = tmp_path / "out" / "z.mp4"
    code = main(["render", "zoom", f"output={out}", "size=[32,24]", "model.weights=none",
                 "model.name=efficientnet_lite0", "dream.octaves=1", *args, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()
