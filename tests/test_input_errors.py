"""Errors about the input file name the `input` key and where its value came from (issue 25)."""

from __future__ import annotations

import os

import pytest

from pipelines.cli import main


@pytest.mark.parametrize("preset,name,says", [
    ("still", "missing.png", "file not found"),
    ("video", "missing.mp4", "input video not found"),
])
def test_a_missing_input_names_the_key_and_the_command_line(tmp_path, capsys, preset, name,
                                                           says):
    source = tmp_path / name
    code = main(["render", preset, f"input={source}", f"output={tmp_path / 'out.mp4'}"
                 if preset == "video" else f"output={tmp_path / 'out.png'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"dreamreel: error: command line: input={source}: input {source}: ")
    assert err.endswith(says)
    assert sorted(os.listdir(tmp_path)) == []


def test_a_link_loop_is_not_called_a_missing_file(tmp_path, capsys):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.symlink_to(b)
    b.symlink_to(a)
    code = main(["render", "still", f"input={a}", f"output={tmp_path / 'o.png'}"])
    err = capsys.readouterr().err
    assert code == 2 and "is a symbolic link to nothing (a link loop" in err
    assert "not found" not in err


@pytest.mark.parametrize("output", ["/", "out/dream.txt", "/proc/x.mp4"])
def test_a_bad_output_names_the_output_key_and_where_it_came_from(tmp_path, capsys, output):
    code = main(["render", "zoom", f"output={output}", "model.name=efficientnet_lite0",
                 "model.weights=none", "size=[32,24]", "frames=2", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"command line: output={output}: output " in err, err


@pytest.mark.parametrize("preset", ["still", "zoom"])
def test_a_size_too_large_for_memory_is_refused_before_tensorflow_loads(tmp_path, preset):
    """The still's refusal came after TensorFlow loaded (5-7 s; the zoom's took 0.3 s); both
    now name the key and where its value came from."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    ext = "png" if preset == "still" else "mp4"
    code = ("import sys; from render import memory; "
            "memory.available_memory = lambda: 8 << 30; from pipelines.cli import main; "
            f"c = main(['render', '{preset}', 'size=[16000,16000]', "
            f"'output={tmp_path / ('o.' + ext)}', '--quiet']); "
            "print('tensorflow' in sys.modules); sys.exit(c)")
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 2, done.stderr
    assert done.stdout.strip() == "False"  # refused before TensorFlow was imported
    assert done.stderr.startswith("dreamreel: error: command line: size=[16000,16000]: "
                                  "size 16000x16000 needs about"), done.stderr


def test_an_expression_on_a_still_says_where_expressions_work(tmp_path, capsys):
    code = main(["render", "still", "dream.steps=2+3*t", f"output={tmp_path / 'o.png'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "expressions (like 2+3*t) work only for the keyframed keys of a sequence" in err


def test_a_name_of_two_classes_says_which_number_is_which(tmp_path, capsys):
    code = main(["render", "still", "dream.classes=[crane]", "model.name=efficientnet_lite0",
                 f"output={tmp_path / 'o.png'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "(134 the bird, 517 the machine); give the number instead" in err, err


def test_a_very_long_override_is_not_echoed_whole(tmp_path, capsys):
    long = "1+" + "+".join(["t"] * 2500)
    code = main(["render", "zoom", f"motion.zoom={long}", f"output={tmp_path / 'o.mp4'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert len(err) < 300 and "command line: motion.zoom=1+t+t" in err, err
    assert "expression longer than 1000 characters" in err


def test_fractional_steps_from_an_expression_are_said_to_be_rounded(tmp_path, capsys,
                                                                    shared_engine):
    code = main(["render", "zoom", "dream.steps=1+0.3*t", "frames=4", "size=[32,24]",
                 "model.name=efficientnet_lite0", "model.weights=none", "dream.octaves=1",
                 "dream.first_frame.octaves=1", "dream.first_frame.steps=1",
                 f"output={tmp_path / 'o.mp4'}"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert ("dream.steps: 1.3 at frame 1 (and other fractions) is rounded to a whole number "
            "of steps (1) per frame") in err, err
