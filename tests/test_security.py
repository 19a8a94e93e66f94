"""Security (issue 7, section 4): no unsafe calls in the sources, a render writes only its
outputs, and file names are never read as shell syntax or protocols."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from media_probe import read_mp4
from robustness_kit import (
    ROOT,
    clip,
    folder,
    image,
    made,
    render_argv,
)

from pipelines.cli import main
from render.media.image import read_image

pytestmark = pytest.mark.usefixtures("pinned_memory")  # refusals must not depend on free memory

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
    assert runs and all(Path(r[0]).name.startswith(("ffmpeg", "gifsicle")) for r in runs)
    encoders = [r for r in runs if "-i" in r and r[r.index("-i") + 1] == "-"]  # frames on stdin
    assert len(encoders) == 1  # the MP4's; the GIF is quantized in process (gif.encoder)
    for run in encoders:
        assert inside(Path(run[-1]).absolute(), out_dir), run  # what ffmpeg writes
    # issue 19: gifsicle recompresses the GIF, from and to temp files beside it
    optimised = [r for r in runs if Path(r[0]).name.startswith("gifsicle")]
    assert len(optimised) == 1
    for run in optimised:
        assert all(inside(Path(a).absolute(), out_dir) for a in (run[-1], run[run.index("-o") + 1]))
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
