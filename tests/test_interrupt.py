"""Interruptions lose nothing: SIGTERM/Ctrl-C keep finished frames and exit 143/130, a kill -9
at a random frame resumes to an identical output, a second render of the same output is
refused, and a failed write keeps the checkpoints."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from media_probe import read_mp4

from pipelines.cli import main
from pipelines.sequence.checkpoints import work_dir_for
from pipelines.sequence.lock import lock_path, output_lock
from render.media import ffmpeg
from render.media.image import read_image

ROOT = Path(__file__).resolve().parent.parent
FRAMES = 10
# slow enough per frame (~0.1-0.5 s) that a poll can stop it mid-render
SETTINGS = ["model.name=efficientnet_lite0", "model.weights=none", "size=[160,96]",
            f"frames={FRAMES}", "dream.octaves=1", "dream.steps=3", "dream.first_frame.steps=3",
            "dream.first_frame.octaves=1"]


def command(out: Path, frames_dir: Path) -> list[str]:
    return [sys.executable, "-m", "pipelines", "render", "zoom", *SETTINGS, f"output={out}",
            f"frames_dir={frames_dir}", "--quiet"]


def start(out: Path, frames_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "DREAMREEL_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(command(out, frames_dir), cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(out: Path, frames_dir: Path) -> subprocess.CompletedProcess:
    proc = start(out, frames_dir)
    stdout, stderr = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def wait_for_frames(proc: subprocess.Popen, out: Path, frames: int) -> None:
    """Block until the render has checkpointed `frames` frames (or fail if it ended)."""
    work = work_dir_for(out)
    deadline = time.monotonic() + 240
    while len(list(work.glob("frame_*.png"))) < frames:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "render did not start"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    """An uninterrupted render: its MP4 and its frames."""
    tmp = tmp_path_factory.mktemp("ref")
    out, frames = tmp / "ref.mp4", tmp / "frames"
    done = finish(out, frames)
    assert done.returncode == 0, done.stderr
    return out, frames


def assert_same_render(out: Path, frames: Path, reference: tuple[Path, Path]) -> None:
    ref_out, ref_frames = reference
    names = sorted(p.name for p in ref_frames.glob("frame_*.png"))
    assert len(names) == FRAMES
    for name in names:
        assert np.array_equal(read_image(ref_frames / name), read_image(frames / name)), name
    assert np.array_equal(read_mp4(ref_out)[1], read_mp4(out)[1])


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()
                  if ".part" in p.name or p.name.endswith(".lock"))


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_keeps_finished_frames_and_resumes(tmp_path, reference, sig, code):
    out, frames = tmp_path / "out.mp4", tmp_path / "frames"
    proc = start(out, frames)
    wait_for_frames(proc, out, 2)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    last = stderr.strip().splitlines()[-1]
    assert "run the same command to resume" in last and "Traceback" not in stderr, stderr
    assert not out.exists() and leftovers(tmp_path) == []
    kept = len(list(work_dir_for(out).glob("frame_*.png")))
    assert 2 <= kept < FRAMES
    done = finish(out, frames)
    assert done.returncode == 0, done.stderr
    assert json.loads(Path(f"{out}.json").read_text())["resumed_frames"] == kept
    assert_same_render(out, frames, reference)


def test_kill_9_at_a_random_frame_then_the_same_command_gives_the_same_output(tmp_path,
                                                                             reference):
    at = random.randint(1, FRAMES - 2)
    out, frames = tmp_path / "out.mp4", tmp_path / "frames"
    proc = start(out, frames)
    wait_for_frames(proc, out, at)
    proc.kill()
    proc.communicate(timeout=60)
    assert not out.exists(), f"killed at frame {at}"
    done = finish(out, frames)
    assert done.returncode == 0, done.stderr
    assert json.loads(Path(f"{out}.json").read_text())["resumed_frames"] >= at
    assert_same_render(out, frames, reference)
    # the killed encoder's hidden partial file and the lock are gone, the work dir too
    assert leftovers(tmp_path) == [] and not work_dir_for(out).exists(), f"killed at {at}"


def test_second_render_of_the_same_output_is_refused(tmp_path, capsys):
    out = tmp_path / "out.mp4"
    with output_lock([out]):
        code = main(["render", "zoom", *SETTINGS, f"output={out}", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "another render is writing it" in err and str(out) in err
    assert not out.exists() and not work_dir_for(out).exists()
    assert not lock_path(out).exists()  # released and removed by the holder


def test_failed_encode_keeps_checkpoints_and_leaves_no_output(tmp_path, capsys, monkeypatch):
    fake = tmp_path / "ffmpeg"  # reads a little, then fails like ffmpeg on a full disk
    fake.write_text(f"#!{sys.executable}\nimport sys\nsys.stdin.buffer.read(1000)\n"
                    "sys.stderr.write('Error writing trailer: No space left on device\\n')\n"
                    "sys.exit(1)\n")
    fake.chmod(0o755)
    monkeypatch.setattr(ffmpeg, "exe", lambda: str(fake))
    out = tmp_path / "out.mp4"
    code = main(["render", "zoom", *SETTINGS, "size=[64,48]", "motion.zoom=1.02", "frames=4",
                 f"output={out}", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "No space left on device" in err and "run the same command to resume" in err
    assert not out.exists() and leftovers(tmp_path) == []
    assert len(list(work_dir_for(out).glob("frame_*.png"))) >= 1
