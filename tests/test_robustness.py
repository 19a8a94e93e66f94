"""Bad input catalogue and security (issue 7, sections 1 and 4).

Every bad input gives one line on stderr naming the problem, exit code 2, no traceback, and
leaves nothing created or changed under the output name (no output, sidecar or work dir) —
`refused()` asserts all of that. Unusual but valid inputs (pixel formats, tiny and odd sizes,
unicode paths) render. Renders share one built network and compiled engine (`shared_engine`)
so the whole file stays fast; cases already tested elsewhere are not repeated (see the
comments naming those tests).
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from media_probe import make_clip, read_gif_info, read_mp4

from pipelines.cli import main
from pipelines.outputs import sidecar_path
from pipelines.sequence.checkpoints import work_dir_for
from render import build as build_module
from render import media
from render.media import default_image, read_image, write_image

ROOT = Path(__file__).resolve().parent.parent
TINY = ("model.name=efficientnet_lite0", "model.weights=none", "dream.octaves=1",
        "dream.steps=1")
SEQ = (*TINY, "dream.first_frame.octaves=1", "dream.first_frame.steps=1")
FAST = {  # the tiniest settings of each pipeline
    "still": (*TINY, "size=[32,24]"),
    "layers": (*TINY, "size=[32,24]", "model.layers=[block1,block2]"),
    "zoom": (*SEQ, "size=[32,24]", "frames=2", "fps=10", "motion.zoom=1.05"),
    "video": (*SEQ, "max_size=[32,24]", "flow.method=static", "frames=3"),
}
EXT = {"still": ".png", "layers": ".png", "zoom": ".mp4", "video": ".mp4"}
FREE_MEMORY = 8 << 30  # what the memory estimate is told is free, so results do not vary


# ---------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def pinned_memory(monkeypatch):
    """Size refusals do not depend on how much memory the test machine has free."""
    monkeypatch.setattr(media, "available_memory", lambda: FREE_MEMORY)


_NETWORKS: dict = {}
_ENGINES: dict = {}


@pytest.fixture
def shared_engine(monkeypatch):
    """Renders reuse one network and compiled engine per model and objective (building and
    tracing them takes seconds); everything else a render does is real."""
    real_load, real_engine = build_module.load_model, build_module.DreamEngine

    def load_model(name, weights="imagenet", notify=None):
        key = (name, str(weights))
        if key not in _NETWORKS:
            _NETWORKS[key] = real_load(name, weights, notify or (lambda m: None))
        return _NETWORKS[key]

    def engine(network, preprocess, objective, smoothing, min_size):
        key = (id(network), tuple(objective), smoothing, min_size)
        if key not in _ENGINES:
            _ENGINES[key] = real_engine(network, preprocess, objective, smoothing, min_size)
        return _ENGINES[key]

    monkeypatch.setattr(build_module, "load_model", load_model)
    monkeypatch.setattr(build_module, "DreamEngine", engine)


def snapshot(directory: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under `directory`: size, mtime and mode (so any change shows)."""
    out = {}
    for p in sorted(directory.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(directory))] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return out


def render_argv(preset: str, overrides: list[str], tmp: Path) -> tuple[list[str], list[Path]]:
    """CLI arguments for a tiny render of `preset` (a shipped name, or a preset file for the
    still pipeline), and the output paths it names (out<ext> in `tmp` unless given)."""
    pipeline = preset if preset in FAST else "still"
    outs = [o for o in overrides if o.startswith("output=")]
    if not outs:
        overrides = [*overrides, f"output={tmp / ('out' + EXT[pipeline])}"]
        outs = overrides[-1:]
    paths = [Path(p.strip()) for o in outs for p in o[7:].strip("[]").split(",")]
    return ["render", preset, *FAST[pipeline], *overrides, "--quiet"], paths


def refused(capfd, tmp: Path, preset: str, overrides: list[str], says: str) -> str:
    """Render and assert the bad-input contract: exit code 2, exactly one line on stderr that
    contains `says`, no traceback, nothing on stdout, and nothing in `tmp` created or
    changed — in particular no output, no sidecar and no work dir under the output name."""
    argv, outs = render_argv(preset, overrides, tmp)
    existed = {p: p.exists() for o in outs for p in (o, sidecar_path(o), work_dir_for(o))}
    before = snapshot(tmp)
    code = main(argv)
    captured = capfd.readouterr()
    lines = captured.err.splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1 and lines[0].startswith("dreamreel: error: "), captured.err
    assert says in lines[0], lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert snapshot(tmp) == before
    assert {p: p.exists() for p in existed} == existed
    return lines[0]


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG file whose header claims `width` x `height` pixels."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I",
                                                                        zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                                0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def image(tmp: Path, name: str = "in.png", size: tuple[int, int] = (40, 30)) -> Path:
    return write_image(tmp / name, default_image(size, seed=2))


def cut(path: Path, keep: float = 0.5) -> Path:
    """Truncate `path` to a share of its bytes."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def made(path: Path, data: bytes | str = b"") -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def linked(target: Path, link: Path, how: Callable[[Path, Path], None]) -> Path:
    """`link` made to `target` by `how` (os.symlink or os.link)."""
    how(target, link)
    return link


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def clip(tmp: Path, name: str = "in.mp4", **kw) -> Path:
    return make_clip(tmp / name, **{"seconds": 0.4, "fps": 25, "size": "48x32", **kw})


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
     "image 100000x100000 needs about 447.0 GB of memory to read, but only 8.0 GB is free"),
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
     "'abc' is not a number"),
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


# ---------------------------------------------------------------- §1 unusual inputs that work


def _pil_image(path: Path, pixels: np.ndarray, palette: bool = False, **save) -> Path:
    """Save with Pillow (OpenCV writes neither palette nor gray+alpha PNGs)."""
    pil = pytest.importorskip("PIL.Image")
    if palette:
        img = pil.new("P", pixels.shape[1::-1])
        img.putdata(pixels.flatten().tolist())
        img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0, 0, 0] * 253)
    else:
        img = pil.fromarray(pixels)
    img.save(path, **save)
    return path


def pixel_formats(tmp: Path) -> dict[str, tuple[Path, np.ndarray]]:
    """An image file per unusual pixel format, with the uint8 RGB it should read as."""
    gray = np.tile(np.arange(0, 240, 8, np.uint8), (20, 1))  # 20x30
    rgb = default_image((30, 20), seed=1)
    alpha = np.tile(np.linspace(0, 255, 30).astype(np.uint8), (20, 1))
    over_white = np.rint(rgb * (alpha[..., None] / 255) + 255 * (1 - alpha[..., None] / 255))
    index = (np.arange(600).reshape(20, 30) % 3).astype(np.uint8)
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)[index]
    cv2.imwrite(str(tmp / "gray.png"), gray)
    cv2.imwrite(str(tmp / "gray.jpg"), gray)
    cv2.imwrite(str(tmp / "gray16.png"), gray.astype(np.uint16) * 257)
    cv2.imwrite(str(tmp / "rgba.png"), np.dstack([rgb[..., ::-1], alpha]))
    cv2.imwrite(str(tmp / "rgba16.png"), np.dstack([rgb[..., ::-1], alpha]).astype(np.uint16) * 257)
    cv2.imwrite(str(tmp / "rgb16.tif"), rgb[..., ::-1].astype(np.uint16) * 257)
    grey3 = np.repeat(gray[..., None], 3, axis=2)
    gray_over_white = np.rint(grey3 * (alpha[..., None] / 255) + 255 * (1 - alpha[..., None] / 255))
    return {
        "gray png": (tmp / "gray.png", grey3),
        "gray jpeg": (tmp / "gray.jpg", grey3),
        "16-bit gray": (tmp / "gray16.png", grey3),
        "rgba": (tmp / "rgba.png", over_white),
        "16-bit rgba": (tmp / "rgba16.png", over_white),
        "16-bit rgb tiff": (tmp / "rgb16.tif", rgb),
        "gray+alpha": (_pil_image(tmp / "la.png", np.dstack([gray, alpha])), gray_over_white),
        "palette": (_pil_image(tmp / "p.png", index, palette=True), palette),
        "palette with transparency": (_pil_image(tmp / "pt.png", index, palette=True,
                                                 transparency=2),
                                      np.where(index[..., None] == 2, 255, palette)),
    }


FORMATS = ["gray png", "gray jpeg", "16-bit gray", "rgba", "16-bit rgba", "16-bit rgb tiff",
           "gray+alpha", "palette", "palette with transparency"]


@pytest.mark.parametrize("kind", FORMATS)
def test_unusual_pixel_formats_are_converted_and_render(tmp_path, capfd, shared_engine, kind):
    path, expected = pixel_formats(tmp_path)[kind]
    rgb = read_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (20, 30, 3)
    assert np.abs(rgb.astype(int) - expected).max() <= (4 if path.suffix == ".jpg" else 1)
    out = tmp_path / "out.png"
    assert main(render_argv("still", [f"input={path}", "size=null", f"output={out}"],
                            tmp_path)[0]) == 0, capfd.readouterr().err
    assert read_image(out).shape == (20, 30, 3)


@pytest.mark.parametrize("preset,overrides,shape", [
    ("still", ["input={t}/one.png", "size=null"], (1, 1, 3)),
    ("still", ["size=[3,5]"], (5, 3, 3)),
    ("layers", ["size=[3,5]"], (13, 18, 3)),  # two 3x5 tiles and the gaps around them
    ("zoom", ["size=[3,5]", "output={t}/out.gif"], (2, 5, 3)),
    ("zoom", ["size=[3,5]"], (2, 4, 2)),  # MP4 frames are even: cropped, not padded
    ("zoom", ["size=[33,25]"], (2, 24, 32)),
    ("video", ["input={t}/in.mp4", "max_size=null", "size=[33,25]"], (3, 24, 32)),
])
def test_tiny_and_odd_sizes_render(tmp_path, shared_engine, preset, overrides, shape):
    image(tmp_path, "one.png", (1, 1))
    clip(tmp_path, size="50x30")
    argv, (out,) = render_argv(preset, [o.format(t=tmp_path) for o in overrides], tmp_path)
    assert main(argv) == 0
    if out.suffix == ".png":
        assert read_image(out).shape == shape
    elif out.suffix == ".gif":
        info = read_gif_info(out.read_bytes())
        assert (info.frames, info.height, info.width) == shape
    else:
        assert read_mp4(out)[1].shape[:3] == shape
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(out.name)) == [
        out.name, out.name + ".json"]
    assert not work_dir_for(out).exists()


def test_unicode_spaces_and_missing_directories(tmp_path, shared_engine):
    """Unicode and spaces in every path ffmpeg sees; missing output directories are made."""
    src = clip(tmp_path, "ünï cödé – clip.mp4")
    gif = tmp_path / "nëw dir" / "and one more" / "dräum ☃.gif"
    mp4 = tmp_path / "nëw dir" / "zöom out.mp4"
    assert main(render_argv("video", [f"input={src}", f"output={gif}"], tmp_path)[0]) == 0
    assert read_gif_info(gif.read_bytes()).frames == 3
    assert main(render_argv("zoom", [f"input={image(tmp_path, 'ïn pút.png')}", f"output={mp4}"],
                            tmp_path)[0]) == 0
    assert read_mp4(mp4)[1].shape == (2, 24, 32, 3)
    assert json.loads(sidecar_path(gif).read_text())["clip"]["input"] == str(src)


# ---------------------------------------------------------------- §4 security


def _calls(tree: ast.AST) -> Iterator[tuple[str, ast.Call]]:
    """(dotted name of the callee, call) for every call in `tree`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            parts, f = [], node.func
            while isinstance(f, ast.Attribute):
                parts.append(f.attr)
                f = f.value
            if isinstance(f, ast.Name):
                parts.append(f.id)
            yield ".".join(reversed(parts)), node


SOURCES = sorted([*ROOT.glob("render/**/*.py"), *ROOT.glob("pipelines/**/*.py")])
FORBIDDEN = re.compile(r"^(yaml\.(load|unsafe_load|full_load|load_all|unsafe_load_all|"
                       r"full_load_all)|os\.(system|popen|exec\w*|spawn\w*)|eval|exec|"
                       r"subprocess\.(getoutput|getstatusoutput)|pickle\.loads?|"
                       r"marshal\.loads?|shelve\.open)$")
SUBPROCESS = re.compile(r"^subprocess\.(Popen|run|call|check_call|check_output)$")


def test_no_unsafe_calls_in_the_sources():
    """yaml.safe_load only; no shell; subprocesses get argument lists; no unpickling (the
    .pth reader's restricted Unpickler is the one allowed use of pickle)."""
    problems, safe_loads = [], 0
    for path in SOURCES:
        text = path.read_text()
        assert "yaml.unsafe_load" not in text and "shell=True" not in text, path
        assert not re.search(r"\byaml\.load\(|\bos\.system\(", text), path
        for name, call in _calls(ast.parse(text)):
            where = f"{path.relative_to(ROOT)}:{call.lineno} {name}"
            safe_loads += name == "yaml.safe_load"
            if FORBIDDEN.match(name):
                problems.append(where)
            for kw in call.keywords:
                if kw.arg == "Loader" or (kw.arg == "shell" and not (
                        isinstance(kw.value, ast.Constant) and kw.value.value is False)):
                    problems.append(f"{where} {kw.arg}=")
                if kw.arg == "allow_pickle" and not (isinstance(kw.value, ast.Constant)
                                                     and kw.value.value is False):
                    problems.append(f"{where} allow_pickle")
            if SUBPROCESS.match(name) and call.args and isinstance(
                    call.args[0], (ast.Constant, ast.JoinedStr, ast.BinOp)):
                problems.append(f"{where}: command is a string, not an argument list")
    assert problems == []
    assert safe_loads >= 1  # the scan does see the calls it looks for


_AUDIT: list[list[tuple[str, tuple]]] = []
_WATCHED = ("open", "os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir",
            "shutil.rmtree", "os.symlink", "os.link", "os.truncate", "os.chmod",
            "shutil.copyfile", "shutil.copytree", "subprocess.Popen", "os.system", "os.exec",
            "os.posix_spawn", "os.spawn")


def _hook(event: str, args: tuple) -> None:
    if _AUDIT and event in _WATCHED:
        _AUDIT[-1].append((event, args))


sys.addaudithook(_hook)  # hooks cannot be removed: it records only inside audited()


@contextlib.contextmanager
def audited() -> Iterator[list[tuple[str, tuple]]]:
    """Record file-changing and process-starting events (Python audit hooks) in the block."""
    events: list[tuple[str, tuple]] = []
    _AUDIT.append(events)
    try:
        yield events
    finally:
        _AUDIT.remove(events)


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def written_paths(events: list[tuple[str, tuple]]) -> list[Path]:
    """Paths the events create, change or delete (reads are left out)."""
    paths = []
    for event, args in events:
        if event.startswith(("os.remove", "os.rmdir", "os.mkdir", "os.chmod")) and isinstance(
                args[-1], int) and args[-1] >= 0:
            continue  # relative to a directory fd: inside shutil.rmtree, recorded on its own
        if event == "open":
            path, mode, flags = args
            if isinstance(path, int):
                continue
            if (mode is not None and set(str(mode)) & set("wax+")) or (
                    mode is None and flags & _WRITE_FLAGS):
                paths.append(path)
        elif event in ("os.rename", "os.replace", "os.symlink", "os.link"):
            paths += list(args[:2])
        elif not event.startswith(("subprocess", "os.exec", "os.spawn", "os.posix_spawn",
                                   "os.system")):
            paths.append(args[0])
    return [Path(os.fsdecode(p)).absolute() for p in paths if isinstance(p, (str, bytes,
                                                                              os.PathLike))]


def ffmpeg_runs(events: list[tuple[str, tuple]]) -> list[list[str]]:
    """The argument lists of the processes started."""
    runs = [list(args[1]) for event, args in events if event == "subprocess.Popen"]
    assert all(e[0] == "subprocess.Popen" for e in events if e[0].startswith(("os.s", "os.e",
                                                                              "os.p")))
    return runs


def inside(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def test_a_render_writes_only_its_outputs(tmp_path, monkeypatch, shared_engine):
    """Everything a zoom render writes is its outputs, their sidecars and its work dir (gone
    at the end); its temp files have no name; ffmpeg gets argument lists and writes only
    there. (TensorFlow, when it compiles the engine, puts its generated sources in the temp
    dir and deletes them at exit: the one thing allowed there.)"""
    out_dir, temp = folder(tmp_path / "out"), folder(tmp_path / "tmp")
    cwd = folder(tmp_path / "cwd")
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.chdir(cwd)
    src = image(tmp_path)
    mp4, gif = out_dir / "z.mp4", out_dir / "z.gif"
    argv, _ = render_argv("zoom", [f"input={src}", f"output=[{mp4},{gif}]"], tmp_path)
    with audited() as events:
        assert main(argv) == 0

    def tensorflow(path: Path) -> bool:
        return path.parent == temp and path.name.startswith("__autograph_generated_file")

    for path in written_paths(events):
        assert inside(path, out_dir) or path in (temp, Path(os.devnull)) or tensorflow(path), path
    runs = ffmpeg_runs(events)
    assert runs and all(Path(r[0]).name.startswith("ffmpeg") for r in runs)
    encoders = [r for r in runs if "-i" in r and r[r.index("-i") + 1] == "-"]  # frames on stdin
    assert len(encoders) == 2
    for run in encoders:
        assert inside(Path(run[-1]).absolute(), out_dir), run  # what ffmpeg writes
    assert sorted(p.name for p in out_dir.iterdir()) == ["z.gif", "z.gif.json", "z.mp4",
                                                         "z.mp4.json"]
    assert [p for p in temp.iterdir() if not tensorflow(p)] == [] and list(cwd.iterdir()) == []


NASTY = "$(touch pwned) `touch pwned` ; rm -rf victim & echo x >pwned | 'q\" $HOME"


def test_shell_metacharacters_in_names_are_plain_file_names(tmp_path, monkeypatch,
                                                            shared_engine):
    """Names that a shell would run are only ever file names: for the preset file, the input
    and the outputs (Python, ffmpeg reading and ffmpeg writing)."""
    monkeypatch.chdir(tmp_path)
    victim = folder(tmp_path / "victim")
    made(victim / "keep", "x")
    preset = made(tmp_path / f"{NASTY}.yaml", "pipeline: still\n")
    still_out = tmp_path / f"{NASTY}.png"
    src = clip(tmp_path, f"{NASTY} -y -i.mp4")
    video_out = tmp_path / f"-{NASTY}.mp4"
    with audited() as events:
        assert main(render_argv(str(preset), [f"output={still_out}"], tmp_path)[0]) == 0
        assert main(render_argv("video", [f"input={src}", f"output={video_out}"],
                                tmp_path)[0]) == 0
    assert read_image(still_out).shape == (24, 32, 3)
    assert len(read_mp4(video_out)[1]) == 3
    assert not list(tmp_path.rglob("pwned")) and (victim / "keep").exists()
    runs = ffmpeg_runs(events)
    assert [r for r in runs if str(src) in r]  # the input is one whole argument
    assert [r for r in runs if r[-1].endswith(".mp4") and NASTY in r[-1]]  # so is the output


def test_a_protocol_like_input_name_is_read_as_a_plain_file(tmp_path, monkeypatch,
                                                            shared_engine):
    """ffmpeg takes 'concat:a.mp4' for its concat protocol: the file of that name is read,
    not a.mp4; an output under 'pipe:x/' lands in that directory, not on a pipe."""
    monkeypatch.chdir(tmp_path)
    clip(tmp_path, "a.mp4", size="64x48")
    clip(tmp_path, "concat:a.mp4", size="48x32")
    assert main(render_argv("video", ["input=concat:a.mp4", "output=pipe:x/o.mp4",
                                      "max_size=null"], tmp_path)[0]) == 0
    record = json.loads((tmp_path / "pipe:x" / "o.mp4.json").read_text())
    assert record["clip"]["source_size"] == [48, 32]
    assert read_mp4(tmp_path / "pipe:x" / "o.mp4")[1].shape == (3, 32, 48, 3)
