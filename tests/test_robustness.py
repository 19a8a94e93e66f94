"""Bad input catalogue (issue 7, section 1).

Every bad input gives one line on stderr naming the problem, exit code 2, no traceback, and
leaves nothing created or changed under the output name (no output, sidecar or work dir) —
`refused()` asserts all of that. Unusual but valid inputs (pixel formats, tiny and odd sizes,
unicode paths) render. Renders share one built network and compiled engine (`shared_engine`)
so the whole file stays fast; cases already tested elsewhere are not repeated (see the
comments naming those tests).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from robustness_kit import (
    clip,
    cut,
    fifo,
    folder,
    image,
    linked,
    made,
    png_claiming,
    refused,
)

pytestmark = pytest.mark.usefixtures("pinned_memory")  # refusals must not depend on free memory

# ---------------------------------------------------------------- §1 the catalogue
# Covered elsewhere, not repeated here: missing image (test_presets_cli::
# test_cli_bad_input_is_one_line_exit_2_nothing_written), missing video, text named .mp4, audio
# only, 0 and 1 frame videos, end before start (test_video::test_bad_video_input_is_one_line_
# and_exit_2), output equal to the input (test_presets_cli::test_cli_refuses_output_equal_to_
# input), unknown extension (.xyz: test_presets_cli, .avi: test_zoom), unknown preset
# (test_presets_cli::test_unknown_preset_lists_available), YAML syntax error with line and
# column, unknown key with did-you-mean, unknown model, dream.steps=-3, step_size=nan,
# size=[0,10] (test_presets_cli::test_bad_overrides_are_user_errors), fps=0, frames=-1,
# motion.zoom=0, motion schedule past `frames`, malformed keyframe (test_zoom::
# test_bad_zoom_settings_fail_before_any_work), zoom loop longer than the clip
# (test_loop::test_bad_loop_settings_exit_2).

Case = tuple[str, str, Callable[[Path], Any], str]

INPUT_CASES: list[Case] = [
    ("image is a directory", "still", lambda t: [f"input={folder(t / 'in.png')}"],
     "is a directory, expected an image file"),
    ("image is empty", "still", lambda t: [f"input={made(t / 'in.png')}"], "file is empty"),
    ("image is a fifo", "still", lambda t: [f"input={fifo(t / 'in.png')}"],
     "is not a regular file"),
    ("png truncated", "still", lambda t: [f"input={cut(image(t))}"], "not a readable image"),
    ("jpeg truncated", "still", lambda t: [f"input={cut(image(t, 'in.jpg'), 0.7)}"],
     "not a readable image"),
    ("png with garbage inside", "still",
     lambda t: [f"input={made(t / 'in.png', image(t).read_bytes()[:60] + bytes(range(256)) * 4)}"],
     "not a readable image"),
    ("text named .png", "still", lambda t: [f"input={made(t / 'in.png', 'hello, world')}"],
     "not a readable image"),
    ("zoom: empty image", "zoom", lambda t: [f"input={made(t / 'in.png')}"], "file is empty"),
    ("layers: truncated image", "layers", lambda t: [f"input={cut(image(t))}"],
     "not a readable image"),
    ("video is a directory", "video", lambda t: [f"input={folder(t / 'in.mp4')}"],
     "is a directory, expected a video file"),
    ("video is empty", "video", lambda t: [f"input={made(t / 'in.mp4')}"], "file is empty"),
    ("video is a fifo", "video", lambda t: [f"input={fifo(t / 'in.mp4')}"],
     "is not a regular file"),
    ("mp4 truncated (index lost)", "video", lambda t: [f"input={cut(clip(t))}"],
     "not a video ffmpeg can read (moov atom not found)"),
    ("mkv truncated", "video", lambda t: [f"input={cut(clip(t, 'in.mkv', seconds=1), 0.6)}"],
     "not a video ffmpeg can read"),
    ("mp4 with garbage inside", "video",
     lambda t: [f"input={made(t / 'in.mp4', clip(t, 'x.mp4').read_bytes()[:40] + bytes(999))}"],
     "not a video ffmpeg can read"),
    ("image header claims 100000x100000", "still",
     lambda t: [f"input={made(t / 'in.png', png_claiming(100_000, 100_000))}"],
     "image 100000x100000 needs about 447.1 GB of memory to read, but only 8.0 GB is free"),
    ("size=[60000,60000]", "zoom", lambda t: ["size=[60000,60000]"],
     "size: width and height must be 1..16384"),
    ("size too large for memory: still", "still", lambda t: ["size=[16384,16384]"],
     "size 16384x16384 needs about 50.0 GB of memory to dream, but only 8.0 GB is free"),
    ("size too large for memory: zoom", "zoom", lambda t: ["size=[12000,9000]"],
     "size 12000x9000 needs about"),
    ("size too large for memory: video", "video", lambda t: ["max_size=[16000,9000]"],
     "max_size 16000x9000 needs about"),
    ("input too large to dream at its own size", "still",
     lambda t: [f"input={made(t / 'in.png', png_claiming(12_000, 8_000))}", "size=null"],
     "12000x8000 needs about"),
]

OUTPUT_CASES: list[Case] = [
    ("output directory is a file", "still",
     lambda t: [f"output={made(t / 'notes.txt', 'x')}/out.png"], "notes.txt is not a directory"),
    ("output under an unwritable directory (/proc)", "still",
     lambda t: ["output=/proc/dreamreel-test/out.png"], "cannot write in /proc"),
    ("zoom: output directory is a file", "zoom",
     lambda t: [f"output={made(t / 'notes.txt', 'x')}/deeper/out.mp4"],
     "notes.txt is not a directory"),
    ("output is a directory", "still", lambda t: [f"output={folder(t / 'out.png')}"],
     "is a directory, expected a file name"),
    ("output is the input through a symlink", "still",
     lambda t: [f"input={image(t)}", f"output={linked(t / 'in.png', t / 'l.png', os.symlink)}"],
     "is the input file"),
    ("output is the input through a hard link", "still",
     lambda t: [f"input={image(t)}", f"output={linked(t / 'in.png', t / 'h.png', os.link)}"],
     "is the input file"),
    ("video: output is the input spelt another way", "video",
     lambda t: [f"input={clip(t)}", f"output={folder(t / 'd')}/../in.mp4"], "is the input file"),
    ("the same output twice", "zoom", lambda t: [f"output=[{t}/a.mp4,{t}/a.mp4]"],
     "listed twice"),
    ("mp4 with 1x1 frames", "zoom", lambda t: ["size=[1,1]"], "at least 2x2 pixels, got 1x1"),
    ("gif with 1x1 frames", "zoom", lambda t: ["size=[1,1]", f"output={t}/o.gif"],
     "size: a zoom or video needs frames of at least 2x2 pixels, got 1x1"),
    ("gif from a 1x5 input image", "zoom",
     lambda t: [f"input={image(t, size=(1, 5))}", "size=null", f"output={t}/o.gif"],
     "a zoom or video needs frames of at least 2x2 pixels, got 1x5"),
    ("video with 5x1 frames", "video", lambda t: ["size=[5,1]"], "got 5x1"),
    ("mp4 from a 1x1 input image", "zoom",
     lambda t: [f"input={image(t, size=(1, 1))}", "size=null"], "at least 2x2 pixels, got 1x1"),
    ("frames_dir is a file", "zoom", lambda t: [f"frames_dir={made(t / 'f', 'x')}"],
     "frames_dir"),
]

PRESET_FILE_CASES: list[Case] = [  # (id, preset path, setup, message)
    ("preset file missing", "{t}/nope.yaml", lambda t: None, "preset file"),
    ("preset path is a directory", "{t}/dir.yaml", lambda t: folder(t / "dir.yaml"),
     "is a directory, expected a YAML file"),
    ("tab in YAML", "{t}/p.yaml",
     lambda t: made(t / "p.yaml", "pipeline: still\ndream:\n\tsteps: 1\n"),
     "p.yaml:3:1: YAML syntax error: found character '\\t' that cannot start any token"),
    ("preset is a list", "{t}/p.yaml", lambda t: made(t / "p.yaml", "- still\n"),
     "a preset must be a mapping of keys, got list"),
    ("preset is not UTF-8", "{t}/p.yaml",
     lambda t: made(t / "p.yaml", b"pipeline: still\n\xff\xfe\n"), "cannot read preset"),
    ("YAML alias bomb", "{t}/p.yaml",
     lambda t: made(t / "p.yaml", "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
         f"{c}: &{c} [{', '.join(['*' + chr(ord(c) - 1)] * 10)}]\n" for c in "bcdefghij")),
     "too large or nested too deeply"),
    ("recursive YAML alias", "{t}/p.yaml",
     lambda t: made(t / "p.yaml", "pipeline: still\nseed: &a [*a]\n"),
     "too large or nested too deeply"),
    ("key that is not text", "{t}/p.yaml",
     lambda t: made(t / "p.yaml", "pipeline: still\n2024-01-01: 3\n"),
     "key datetime.date(2024, 1, 1) is not text"),
    ("5000-digit number", "{t}/p.yaml",
     lambda t: made(t / "p.yaml", "pipeline: still\nseed: " + "7" * 5000 + "\n"),
     "YAML syntax error: Exceeds the limit"),
    ("unknown nested key in a file", "{t}/p.yaml",
     lambda t: made(t / "p.yaml", "pipeline: still\ndream:\n  octave: 2\n"),
     "unknown key 'dream.octave'; did you mean 'dream.octaves'?"),
    ("empty preset file", "{t}/p.yaml", lambda t: made(t / "p.yaml"),
     "key 'pipeline' must be one of still, layers, zoom, video, got None"),
]


VALUE_CASES: list[Case] = [
    # wrong types
    ("size=big", "zoom", lambda t: ["size=big"], "size: expected [width, height] in pixels"),
    ("frames=1.5", "zoom", lambda t: ["frames=1.5"], "frames: expected an integer"),
    ("loop.mode=5", "zoom", lambda t: ["loop.mode=5"], "loop.mode: 5 is not allowed; allowed:"),
    ("flow.blend=yes", "video", lambda t: ["flow.blend=yes"], "flow.blend: expected a number"),
    ("input=[1,2]", "still", lambda t: ["input=[1,2]"], "input: expected a file path"),
    ("dream=5", "still", lambda t: ["dream=5"], "dream: expected a mapping of keys"),
    ("dream.steps={a: 1}", "zoom", lambda t: ["dream.steps={a: 1}"],
     "dream.steps: expected a number or a schedule"),
    ("gif.dither=5", "zoom", lambda t: ["gif.dither=5"], "gif.dither: expected a string"),
    ("model.layers=5", "still", lambda t: ["model.layers=5"],
     "model.layers: expected a layer name, a list of names or a mapping"),
    ("model.layers=[block6,[x]]", "still", lambda t: ["model.layers=[block6,[x]]"],
     "model.layers: expected a layer name"),
    ("input with a NUL byte", "still", lambda t: ['input="a\\0b.png"'],
     "input: a file path cannot contain a NUL character"),
    # NaN, negative or zero where not allowed
    ("frames=0", "zoom", lambda t: ["frames=0"], "frames: must be >= 1, got 0"),
    ("fps=.nan", "zoom", lambda t: ["fps=.nan"], "fps: must be a finite number"),
    ("fps=-24", "zoom", lambda t: ["fps=-24"], "fps: must be > 0"),
    ("motion.zoom=-1", "zoom", lambda t: ["motion.zoom=-1"], "motion.zoom: -1 is not allowed"),
    ("motion.zoom=.nan", "zoom", lambda t: ["motion.zoom=.nan"], "must be a finite number"),
    ("motion.angle=.inf", "zoom", lambda t: ["motion.angle=.inf"], "must be a finite number"),
    ("seed=-1", "zoom", lambda t: ["seed=-1"], "seed: must be >= 0"),
    ("size=[10,-5]", "zoom", lambda t: ["size=[10,-5]"], "width and height must be 1..16384"),
    ("gif.colors=0", "zoom", lambda t: ["gif.colors=0"], "gif.colors: must be >= 2"),
    ("encode.crf=-1", "zoom", lambda t: ["encode.crf=-1"], "encode.crf: must be >= 0"),
    ("dream.octave_scale=1", "zoom", lambda t: ["dream.octave_scale=1"], "must be > 1"),
    ("dream.cadence=0", "zoom", lambda t: ["dream.cadence=0"], "dream.cadence: must be >= 1"),
    ("dream.tile=0", "still", lambda t: ["dream.tile=0"], "dream.tile: must be >= 64"),
    ("video: fps=0", "video", lambda t: ["fps=0"], "fps: must be > 0"),
    ("video: frames=1", "video", lambda t: ["frames=1"], "frames: must be >= 2"),
    ("video: max_size=[0,0]", "video", lambda t: ["max_size=[0,0]"], "1..16384"),
    ("video: start=-1", "video", lambda t: ["start=-1"], "start: must be >= 0"),
    ("video: end=0", "video", lambda t: ["end=0"], "end: must be > 0"),
    ("video: flow.blend=.nan", "video", lambda t: ["flow.blend=.nan"], "must be a finite"),
    # schedules past `frames` or malformed
    ("dream schedule past frames", "zoom", lambda t: ["dream.step_size='0:(0.01), 5:(0.02)'"],
     "dream.step_size: keyframe 5 is past the last frame (1; frames=2)"),
    ("layer weight schedule past frames", "zoom",
     lambda t: ["model.layers={block6: '0:(1), 7:(0)'}"],
     "model.layers.block6: keyframe 7 is past the last frame"),
    ("video: dream schedule past frames", "video", lambda t: ["dream.steps='0:(2), 5:(3)'"],
     "dream.steps: keyframe 5 is past the last frame (2; frames=3)"),
    ("keyframe twice", "zoom", lambda t: ["motion.angle='0:(1), 0:(2)'"],
     "frame 0 appears twice"),
    ("negative keyframe", "zoom", lambda t: ["motion.angle='-1:(1)'"], "frames start at 0"),
    ("empty keyframe", "zoom", lambda t: ["motion.zoom='0:(1.02),,1:(1.03)'"],
     "empty keyframe"),
    ("keyframe value not a number", "zoom", lambda t: ["motion.zoom='0:(abc)'"],
     "unknown variable 'abc' at column 4"),
    ("keyframe value nan", "zoom", lambda t: ["motion.zoom='0:(nan)'"], "value must be finite"),
    ("keyframe frame number huge", "zoom", lambda t: ["motion.zoom='99999999999:(1.02)'"],
     "frame number too large"),
    ("schedule where a number is needed", "zoom", lambda t: ["fps='0:(10)'"],
     "fps: expected a number"),
    # unknown model or layer
    ("unknown layer", "zoom", lambda t: ["model.layers=nope"],
     "unknown layer 'nope' for efficientnet_lite0; valid: block1, block2"),
    ("unknown layer in a mapping", "still", lambda t: ["model.layers={mixed3: 1}"],
     "unknown layer 'mixed3' for efficientnet_lite0"),
    ("negative channel", "zoom", lambda t: ["model.layers={block6: {channels: [-1]}}"],
     "channels: expected a list of channel indices >= 0"),
    ("layer weight nan", "still", lambda t: ["model.layers={block6: .nan}"],
     "weight must be a finite number"),
    ("weights file missing", "zoom", lambda t: [f"model.weights={t}/nope.h5"],
     "model.weights: file"),
    ("weights file that does not fit", "zoom",
     lambda t: [f"model.weights={made(t / 'junk.h5', 'not weights')}"], "does not fit"),
    ("channel out of range", "zoom", lambda t: ["model.layers={block6: {channels: [9999]}}"],
     "model.layers.block6.channels: 9999 out of range"),
    ("video: cadence without flow", "video", lambda t: ["flow.method=none", "dream.cadence=2"],
     "dream.cadence: needs a flow.method that carries the dream"),
    ("video: dream schedule past the clip", "video",
     lambda t: [f"input={clip(t)}", "frames=null", "dream.steps='0:(2), 12:(3)'"],
     "dream.steps: keyframe 12 is past the last frame (9; frames=10)"),
    # loop settings longer than the clip
    ("video: crossfade longer than the clip", "video",
     lambda t: [f"input={clip(t)}", "frames=null", "loop.mode=crossfade", "loop.frames=6"],
     "loop.frames: 6 is too many for 10 frames (at most 5)"),
    ("video: crossfade longer than the generated clip", "video",
     lambda t: ["frames=4", "loop.mode=crossfade", "loop.frames=3"],
     "loop.frames: 3 is too many for 4 frames"),
]


def _ids(cases: list[Case]) -> list[str]:
    return [c[0] for c in cases]


@pytest.mark.parametrize("case", INPUT_CASES + OUTPUT_CASES + VALUE_CASES,
                         ids=_ids(INPUT_CASES + OUTPUT_CASES + VALUE_CASES))
def test_bad_input_is_refused(tmp_path, capfd, shared_engine, case):
    _, preset, overrides, says = case
    refused(capfd, tmp_path, preset, overrides(tmp_path), says)


@pytest.mark.parametrize("case", PRESET_FILE_CASES, ids=_ids(PRESET_FILE_CASES))
def test_bad_preset_file_is_refused(tmp_path, capfd, case):
    _, preset, setup, says = case
    setup(tmp_path)
    refused(capfd, tmp_path, preset.format(t=tmp_path), [], says)


@pytest.mark.parametrize("preset,name", [("still", "in.png"), ("video", "in.mp4")])
def test_unreadable_input_is_refused(tmp_path, capfd, monkeypatch, preset, name):
    src = image(tmp_path, name) if preset == "still" else clip(tmp_path, name)
    src.chmod(0)
    if os.geteuid() == 0:
        # root may read any file whatever its mode, and the tests run as root here: make the
        # permission check see what any other user would (chmod 000 is otherwise real)
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: (
            not mode & os.R_OK and real(p, mode, *a, **k)) if Path(p) == src else real(
            p, mode, *a, **k))
    try:
        refused(capfd, tmp_path, preset, [f"input={src}"], "permission denied")
    finally:
        src.chmod(0o644)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only directory")
def test_unwritable_output_directory_is_refused(tmp_path, capfd):
    locked = folder(tmp_path / "locked")
    locked.chmod(0o555)
    try:
        refused(capfd, tmp_path, "zoom", [f"output={locked}/out.mp4"], "cannot write in")
    finally:
        locked.chmod(0o755)


def test_a_newline_in_a_file_name_stays_one_line(tmp_path, capfd):
    # a YAML escape puts a real newline in the name; the message shows it escaped
    refused(capfd, tmp_path, "still", [f'input="{tmp_path}/a\\nb.png"'],
            "a\\nb.png: file not found")


