"""No traceback reaches a user (issue 14, item 3): the still, zoom and video pipelines are run
through the CLI with failures injected where they happen in the field (a full disk under the
checkpoints, an unreadable checkpoint, an encoder that cannot start or dies, a source video that
breaks mid-decode, the output write, memory, Ctrl-C and SIGTERM). Each ends with exit code 2,
130 or 143 and one line on stderr, never a traceback."""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable
from pathlib import Path

import imageio_ffmpeg
import pytest
from media_probe import make_clip

from pipelines import still
from pipelines.cli import Terminated, main
from pipelines.sequence import checkpoints
from pipelines.sequence.checkpoints import CheckpointStore, work_dir_for
from render.engine import DreamEngine
from render.media import ffmpeg

SMALL = ["model.name=efficientnet_lite0", "model.weights=none", "dream.octaves=1",
         "dream.steps=1", "--quiet"]
SEQUENCE = [*SMALL, "dream.first_frame.octaves=1", "dream.first_frame.steps=1"]
ARGS = {
    "still": ["still", *SMALL, "size=[48,32]"],
    "zoom": ["zoom", *SEQUENCE, "size=[48,32]", "frames=4", "motion.zoom=1.05"],
    "video": ["video", *SEQUENCE, "max_size=[48,32]", "frames=4"],
}
NOISE = ("Traceback", "File \"", "Error:", "Exception", "Warning")


def fail_after(calls: int, exc: Callable[[], BaseException]):
    """A stand-in for a function that works `calls` times, then raises `exc()`."""
    count = {"n": 0}

    def wrap(original):
        def inner(*args, **kwargs):
            count["n"] += 1
            if count["n"] > calls:
                raise exc()
            return original(*args, **kwargs)
        return inner
    return wrap


def disk_full() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device", "/somewhere/frame.png")


def patch(monkeypatch, owner, name: str, calls: int, exc: Callable[[], BaseException]) -> None:
    monkeypatch.setattr(owner, name, fail_after(calls, exc)(getattr(owner, name)))


def dead_ffmpeg(monkeypatch, tmp: Path) -> None:
    fake = tmp / "ffmpeg"  # reads a few frames, then dies like ffmpeg on a broken output
    fake.write_text(f"#!{sys.executable}\nimport sys\nsys.stdin.buffer.read(100)\n"
                    "sys.stderr.write('Error writing trailer: Input/output error\\n')\n"
                    "sys.exit(1)\n")
    fake.chmod(0o755)
    monkeypatch.setattr(ffmpeg, "exe", lambda: str(fake))


def unstartable_ffmpeg(monkeypatch, tmp: Path) -> None:
    fake = tmp / "not-executable"
    fake.write_text("")
    monkeypatch.setattr(ffmpeg, "exe", lambda: str(fake))


def broken_source(monkeypatch, tmp: Path) -> None:
    """The source video's decoder fails after two frames of the full-size read."""
    real = imageio_ffmpeg.read_frames

    def read_frames(path, *args, **kwargs):
        gen = real(path, *args, **kwargs)
        yield next(gen)
        if "scale=2:2" in " ".join(kwargs.get("output_params") or []):
            yield from gen  # counting frames works
            return
        for _, frame in zip(range(2), gen, strict=False):
            yield frame
        gen.close()
        raise RuntimeError("ffmpeg: Invalid data found when processing input")
    monkeypatch.setattr(imageio_ffmpeg, "read_frames", read_frames)


def unreadable_checkpoints(monkeypatch, tmp: Path) -> None:
    """A finished frame is there, but reading it fails (an I/O error, not damage)."""
    def read_image(path):
        raise OSError(errno.EIO, "Input/output error", str(path))
    monkeypatch.setattr(checkpoints, "read_image", read_image)


# case: (pipeline, injection, exit code, what the line says)
CASES = {
    "still: output write fails": (
        "still", lambda m, t: patch(m, still, "write_image", 0, disk_full), 2,
        "/somewhere/frame.png: No space left on device"),
    "still: out of memory while dreaming": (
        "still", lambda m, t: patch(m, DreamEngine, "dream", 0, MemoryError), 2, "out of memory"),
    "still: Ctrl-C": ("still", lambda m, t: patch(m, DreamEngine, "dream", 0,
                                                  KeyboardInterrupt), 130, "interrupted"),
    "still: SIGTERM": ("still", lambda m, t: patch(m, DreamEngine, "dream", 0, Terminated), 143,
                       "terminated"),
    "zoom: checkpoint save fails": (
        "zoom", lambda m, t: patch(m, CheckpointStore, "save", 1, disk_full), 2,
        "No space left on device; the 1 finished frames"),
    "zoom: encoder cannot start": ("zoom", unstartable_ffmpeg, 2, "cannot start ffmpeg"),
    "zoom: encoder dies": ("zoom", dead_ffmpeg, 2, "Input/output error"),
    "zoom: Ctrl-C": ("zoom", lambda m, t: patch(m, DreamEngine, "dream", 2,
                                                KeyboardInterrupt), 130, "interrupted; the 2"),
    "zoom: SIGTERM": ("zoom", lambda m, t: patch(m, DreamEngine, "dream", 2, Terminated), 143,
                      "terminated; the 2"),
    "video: source breaks mid-decode": ("video", broken_source, 2, "video is damaged"),
    "video: checkpoint save fails": (
        "video", lambda m, t: patch(m, CheckpointStore, "save", 2, disk_full), 2,
        "No space left on device; the 2 finished frames"),
    "video: encoder dies": ("video", dead_ffmpeg, 2, "Input/output error"),
    "video: SIGTERM": ("video", lambda m, t: patch(m, DreamEngine, "dream", 1, Terminated), 143,
                       "terminated; the 1"),
}


def one_line(capfd, code: int, expected: int) -> str:
    err = capfd.readouterr().err.strip()
    assert code == expected, err
    assert len(err.splitlines()) == 1 and err.startswith("dreamreel: "), err
    assert not any(word in err for word in NOISE[:2]), err
    return err


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_failure_is_one_line_never_a_traceback(tmp_path, monkeypatch, capfd, case):
    pipeline, inject, expected, says = CASES[case]
    suffix = ".png" if pipeline == "still" else ".mp4"
    out = tmp_path / f"out{suffix}"
    source = [f"input={make_clip(tmp_path / 'in.mp4', 0.4, size='64x48')}"] if (
        pipeline == "video") else []
    inject(monkeypatch, tmp_path)
    err = one_line(capfd, main(["render", *ARGS[pipeline], *source, f"output={out}"]),
                   expected)
    assert says in err, err
    assert not out.exists()
    if pipeline == "still" and expected != 2:
        assert "no output was written" in err and "resume" not in err, err
    if pipeline != "still" and expected != 2:
        assert "finished frames are kept in" in err and "run the same command" in err, err


def test_an_unreadable_checkpoint_on_resume_is_one_line(tmp_path, monkeypatch, capfd):
    out = tmp_path / "out.mp4"
    argv = ["render", *ARGS["zoom"], f"output={out}"]
    with monkeypatch.context() as m:
        patch(m, DreamEngine, "dream", 2, KeyboardInterrupt)
        assert main(argv) == 130
    capfd.readouterr()
    unreadable_checkpoints(monkeypatch, tmp_path)
    code = main(argv)
    err = capfd.readouterr().err.strip()
    lines = err.splitlines()
    assert code == 2 and lines[0].startswith("dreamreel: resuming after 2"), err
    assert len(lines) == 2 and lines[1].startswith("dreamreel: error: ") and "Input/output error" \
        in lines[1] and "Traceback" not in err, err
    assert len(list(work_dir_for(out).glob("frame_*.png"))) == 2  # nothing thrown away


def test_a_bug_is_one_line_asking_for_debug(tmp_path, monkeypatch, capfd):
    patch(monkeypatch, DreamEngine, "dream", 0, lambda: RuntimeError("something\nbroke"))
    code = main(["render", *ARGS["still"], f"output={tmp_path / 'out.png'}"])
    err = capfd.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "internal error: RuntimeError: something broke" in err and "--debug" in err, err
