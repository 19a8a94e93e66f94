"""Seamless loops and GIF output: frame counts, the seam measure, GIF timing and looping read
back from the file, the size cap, and bad loop settings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import QUIET, zoom_preset
from media_probe import read_gif_info

from pipelines import zoom
from pipelines.cli import main
from pipelines.sequence import loop
from render.errors import UserError


def ramp(count: int) -> list[np.ndarray]:
    """Frames whose value grows by 3 per frame: frame i is i*3 everywhere."""
    return [np.full((4, 4, 3), 3 * i, np.uint8) for i in range(count)]


def test_crossfade_output_has_frames_minus_fade_and_wraps_on_a_blend():
    frames = ramp(20)
    out = list(loop.compose(frames.__getitem__, 20, "crossfade", 6))
    assert len(out) == loop.output_count(20, "crossfade", 6) == 14
    # play order starts at fade // 2: out_3 .. out_13, then out_0 .. out_2
    values = [int(f[0, 0, 0]) for f in out]
    assert values[:11] == [round((1 - 3 / 6) * 3 * 17 + 3 / 6 * 9), *(
        round((1 - i / 6) * 3 * (14 + i) + i / 6 * 3 * i) for i in (4, 5)), *range(18, 42, 3)]
    assert values[11] == 3 * 14  # out_0 is the continuation f_M exactly
    assert values[10] == 3 * 13  # ... which follows the last plain frame f_{M-1}


def test_pingpong_plays_forward_then_back():
    out = list(loop.compose(ramp(5).__getitem__, 5, "pingpong", 3))
    assert [int(f[0, 0, 0]) // 3 for f in out] == [0, 1, 2, 3, 4, 3, 2, 1]
    assert loop.output_count(5, "pingpong", 3) == 8


def test_rendered_counts_and_limits():
    assert loop.rendered_count(60, "crossfade", 15, extend=True) == 75
    assert loop.rendered_count(60, "crossfade", 15, extend=False) == 60
    assert loop.rendered_count(60, "pingpong", 15, extend=True) == 60
    with pytest.raises(UserError, match="loop.frames: 31 is too many for 60 frames"):
        loop.rendered_count(60, "crossfade", 31, extend=False)
    with pytest.raises(UserError, match="loop.frames: 7 is too many for 6 frames"):
        loop.rendered_count(6, "crossfade", 7, extend=True)


def test_seam_ratio_sees_a_jump():
    frames = ramp(10)
    assert loop.seam_ratio(frames) == pytest.approx(9.0)  # 27 back to 0 vs steps of 3
    assert loop.max_step_ratio(frames) == pytest.approx(9.0)


def test_zoom_crossfade_gif_loops_seamlessly(tmp_path):
    gif = tmp_path / "loop.gif"
    # the real offline model, so frames carry dreamed detail as in the loop preset
    preset = zoom_preset(tmp_path, f"output={gif}", "model.weights=imagenet", "frames=12",
                         "loop.mode=crossfade", "loop.frames=6", "size=[128,96]",
                         "motion.zoom=1.03", "dream.steps=3")
    zoom.run(preset, QUIET)
    info = read_gif_info(gif.read_bytes())
    assert info.frames == 12 and info.loop == 0 and info.delays == [5] * 12
    record = json.loads((tmp_path / "loop.gif.json").read_text())
    assert record["rendered_frames"] == 18 and record["frames"] == 12
    assert record["loop"]["seam_ratio"] <= 1.0
    assert record["loop"]["max_step_ratio"] < 2.0  # no jump anywhere in the loop


def test_pingpong_and_loop_count_in_the_file(tmp_path):
    gif = tmp_path / "pp.gif"
    zoom.run(zoom_preset(tmp_path, f"output={gif}", "loop.mode=pingpong", "gif.loop_count=3",
                         "fps=25"), QUIET)
    info = read_gif_info(gif.read_bytes())
    assert info.frames == 10 and info.loop == 3 and info.delays == [4] * 10


def test_gif_max_mb_is_respected_and_recorded(tmp_path):
    gif = tmp_path / "big.gif"
    notes: list[str] = []
    from pipelines.run_options import RunOptions

    preset = zoom_preset(tmp_path, f"output={gif}", "size=[160,120]", "frames=8",
                         "gif.max_mb=0.05")
    zoom.run(preset, RunOptions(quiet=True, notify=notes.append))
    fit = json.loads((tmp_path / "big.gif.json").read_text())["gif_fit"]
    assert fit["original_bytes"] > 50_000 >= gif.stat().st_size == fit["bytes"]
    assert fit["scale"] < 1.0 or fit["every"] > 1 or fit["colors"] < 256
    assert any("to fit 0.05 MB" in n for n in notes)
    info = read_gif_info(gif.read_bytes())
    assert info.loop == 0


@pytest.mark.parametrize("override,message", [
    ("loop.mode=spiral", "loop.mode"),
    ("loop.mode=crossfade loop.frames=7", "loop.frames: 7 is too many for 6 frames"),
    ("loop.frames=0", "loop.frames: must be >= 1"),
    ("gif.palette=global", "gif.palette"),
    ("gif.max_mb=0", "gif.max_mb: must be > 0"),
])
def test_bad_loop_settings_exit_2(tmp_path, capsys, override, message):
    out = tmp_path / "x.gif"
    code = main(["render", "zoom", "model.name=efficientnet_lite0", "model.weights=none",
                 "size=[64,48]", "frames=6", "motion.zoom=1.03", f"output={out}", *override.split(),
                 "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_crossfade_keeps_the_contrast_of_what_it_mixes():
    """Two unrelated textures mixed half and half lose about 30% of their spread; the seam of
    a loop would look hazy. The mix keeps the spread the two frames have."""
    rng = np.random.default_rng(0)
    a = rng.integers(40, 220, (60, 80, 3)).astype(np.uint8)
    b = rng.integers(40, 220, (60, 80, 3)).astype(np.uint8)
    plain = 0.5 * a.astype(np.float32) + 0.5 * b
    mixed = loop.crossfade(a, b, 0.5)
    assert plain.std() < 0.8 * a.std()
    assert mixed.std() == pytest.approx(0.5 * (a.std() + b.std()), rel=0.03)
    assert abs(float(mixed.mean()) - float(plain.mean())) < 0.6
    # still a mix of both: it follows each frame's detail
    assert np.corrcoef(mixed.ravel(), a.ravel())[0, 1] > 0.5
    assert np.corrcoef(mixed.ravel(), b.ravel())[0, 1] > 0.5
    assert np.array_equal(loop.crossfade(a, b, 1.0), a)
