"""Every render command the README prints runs, as printed, only smaller: the same preset,
input, output and keys, followed by overrides that shrink the frame size, the frame count and
the dream (later keys win). `make render ...` runs what the Makefile runs for it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from media_probe import make_clip

from pipelines.cli import main
from pipelines.config import presets
from render.media.image import default_image, write_image

README = Path(__file__).resolve().parent.parent / "README.md"
DREAM = ["dream.steps=1", "dream.octaves=1"]
SEQUENCE = [*DREAM, "dream.first_frame.steps=1", "dream.first_frame.octaves=1", "frames=4",
            "loop.frames=2", "gif.max_mb=null"]
SMALL = {"still": [*DREAM, "size=[64,48]"], "layers": [*DREAM, "size=[48,48]"],
         "zoom": [*SEQUENCE, "size=[64,48]"], "video": [*SEQUENCE, "max_size=[64,48]"]}


def commands() -> list[str]:
    """The shell commands in the README's ```sh blocks (continuations joined, comments cut)."""
    found, block, text = [], False, README.read_text()
    for line in text.replace("\\\n", " ").splitlines():
        if line.startswith("```"):
            block = line.strip() == "```sh"
            continue
        if block and line.strip():
            found.append(re.sub(r"\s+#.*$", "", line).strip())
    return found


def as_argv(command: str) -> list[str] | None:
    """The `python -m pipelines` arguments a README command runs (None: not a render)."""
    words = shlex.split(command)
    if words[:2] == ["make", "render"]:
        given = dict(w.split("=", 1) for w in words[2:])
        argv = ["render", given.get("preset", "still")]
        argv += [f"input={given['input']}"] if "input" in given else []
        argv += [f"output={given['out']}"] if "out" in given else []
        return argv + shlex.split(given.get("args", ""))
    if words[1:3] == ["-m", "pipelines"]:
        return words[3:]
    return None


RENDERS = [c for c in commands() if (argv := as_argv(c)) is not None]


def test_the_readme_has_render_examples():
    assert any(c.startswith("make render preset=zoom") for c in RENDERS)
    assert any(c.startswith("python -m pipelines") for c in RENDERS)
    assert as_argv("make test") is None


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """photo.jpg and a 13 s clip.mp4 (with sound), as the README's examples name them."""
    where = tmp_path_factory.mktemp("inputs")
    write_image(where / "photo.jpg", default_image((80, 60), seed=4))
    write_image(where / "guide.jpg", default_image((60, 40), seed=5))  # dream.guide example
    mask = default_image((40, 30), seed=6)
    mask[:, :20] = 0  # dream.mask example: the right half dreams
    write_image(where / "mask.png", mask)
    make_clip(where / "clip.mp4", seconds=13, fps=4, audio="sin(2*PI*440*t)")
    return where


@pytest.mark.parametrize("command", RENDERS)
def test_readme_example_runs(command, inputs, tmp_path, monkeypatch, capsys, shared_engine):
    monkeypatch.chdir(tmp_path)
    for name in ("photo.jpg", "clip.mp4", "guide.jpg", "mask.png"):
        (tmp_path / name).symlink_to(inputs / name)
    (tmp_path / "pipelines").mkdir()  # run from a checkout's root
    (tmp_path / "pipelines" / "presets").symlink_to(presets.PRESETS_DIR)
    argv = as_argv(command)
    if argv[0] == "render":
        pipeline = presets.load(argv[1]).settings.pipeline
        argv = [*argv, *SMALL[pipeline], "--quiet"]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 0, f"{command}\n{err}"
    if argv[0] == "render":
        assert "wrote" in err and list((tmp_path / "out").iterdir()), err
