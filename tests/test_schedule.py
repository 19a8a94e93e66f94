"""Keyframe schedules: parsing, interpolation, and the errors users get."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.config import keyframes as schedule
from render.errors import UserError


def test_number_is_constant():
    s = schedule.parse("motion.zoom", 1.02)
    assert s.at(0) == s.at(500) == 1.02 and s.frames == (0,) and s.values == (1.02,)


def test_linear_interpolation_and_hold():
    s = schedule.parse("k", "0:(1.0), 10:(2.0), 20:(1.0)")
    assert s.at(0) == 1.0 and s.at(5) == pytest.approx(1.5) and s.at(10) == 2.0
    assert s.at(15) == pytest.approx(1.5) and s.at(20) == 1.0 and s.at(99) == 1.0


def test_hold_before_first_key():
    s = schedule.parse("k", "10:(3), 20:(5)")
    assert s.at(0) == 3.0 and s.at(15) == pytest.approx(4.0)


def test_smooth_is_monotone_between_keys_and_hits_keys():
    s = schedule.parse("k", "0:(1.0), 10:(2.0), 30:(2.5)", "smooth")
    values = [s.at(t) for t in range(31)]
    assert values[0] == 1.0 and values[10] == pytest.approx(2.0) and values[30] == 2.5
    assert all(b >= a for a, b in zip(values, values[1:], strict=False))  # no overshoot
    assert values[5] != pytest.approx(1.5)  # not linear


def test_unsorted_keys_and_spacing():
    s = schedule.parse("k", " 20:( 2 ) ,0:(0)")
    assert s.frames == (0, 20) and s.at(10) == pytest.approx(1.0)


@pytest.mark.parametrize("text,message", [
    ("0:1.02", "malformed keyframe"),
    ("0:(1.02),", "empty keyframe"),
    ("0:(abc)", "unknown variable 'abc' at column 4"),
    ("0:(1), 0:(2)", "frame 0 appears twice"),
    ("-1:(1)", "frames start at 0"),
    ("0:(inf)", "value must be finite"),
    ("", "expected a number or a schedule"),
])
def test_malformed(text, message):
    with pytest.raises(UserError, match=message):
        schedule.parse("motion.zoom", text)


def test_check_keys_past_frames_and_ranges():
    s = schedule.parse("motion.zoom", "0:(1.02), 60:(1.05)")
    schedule.check("motion.zoom", s, frames=61, above=0)
    with pytest.raises(UserError, match=r"motion.zoom: keyframe 60 is past the last frame \(47"):
        schedule.check("motion.zoom", s, frames=48)
    with pytest.raises(UserError, match="must be > 0"):
        schedule.check("motion.zoom", schedule.parse("motion.zoom", "0:(1), 5:(0)"), 10, above=0)
    with pytest.raises(UserError, match="must be > 0"):
        schedule.check("motion.zoom", schedule.parse("motion.zoom", -1.0), 10, above=0)


@given(st.one_of(st.text(max_size=40), st.floats(), st.integers(), st.none(), st.booleans()))
def test_parse_never_fails_uncleanly(value):
    """Any input either parses or raises the project's clean error — nothing else."""
    try:
        s = schedule.parse("k", value)
    except UserError:
        return
    # a parsed schedule is well formed: sorted keys from 0 on, finite values it passes through
    if s.dynamic:  # an expression: checked at every frame once the clip is known
        return
    assert list(s.frames) == sorted(set(s.frames)) and s.frames[0] >= 0
    assert all(math.isfinite(s.at(t)) for t in (0, *s.frames, s.last_key() + 7))
    assert all(s.at(f) == v for f, v in zip(s.frames, s.values, strict=True))
