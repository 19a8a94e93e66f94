"""Resume is never a dead end (issue 14, items 2 and 3): a damaged checkpoint (truncated, empty,
another size, 16-bit) is rendered again from there on, with a notice naming it, and the result
equals an uninterrupted render; `--reuse-frames` after a size change is one line naming both
sizes, not a traceback."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
from conftest import QUIET, run_interrupted, zoom_preset
from media_probe import read_mp4

from pipelines import zoom
from pipelines.cli import main
from pipelines.sequence.checkpoints import work_dir_for
from render.media.image import default_image, read_image, write_image

ZOOM = ["model.name=efficientnet_lite0", "model.weights=none", "frames=6", "fps=20",
        "motion.zoom=1.05", "dream.octaves=1", "dream.steps=2", "dream.first_frame.octaves=1",
        "dream.first_frame.steps=2", "--quiet"]


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path):
    path.write_bytes(b"")


def other_size(path):
    write_image(path, default_image((32, 24)))


def sixteen_bit(path):
    image = read_image(path).astype(np.uint16) * 257
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Frames and MP4 of an uninterrupted tiny zoom."""
    tmp = tmp_path_factory.mktemp("ref")
    out, frames = tmp / "ref.mp4", tmp / "frames"
    zoom.run(zoom_preset(tmp, f"output={out}", f"frames_dir={frames}"), QUIET)
    return out, frames


@pytest.mark.parametrize("damage", [truncate, empty, other_size, sixteen_bit])
@pytest.mark.parametrize("reuse", [False, True], ids=["plain", "reuse-frames"])
def test_a_damaged_checkpoint_is_rendered_again(tmp_path, monkeypatch, reference, damage, reuse):
    out, frames = tmp_path / "out.mp4", tmp_path / "frames"
    preset = zoom_preset(tmp_path, f"output={out}", f"frames_dir={frames}")
    run_interrupted(preset, monkeypatch, 4)  # frames 0..3 are checkpointed, like a kill -9
    work = work_dir_for(out)
    assert sorted(p.name for p in work.glob("frame_*.png"))[-1] == "frame_000003.png"
    damage(work / "frame_000002.png")
    notices: list[str] = []
    zoom.run(preset, replace(QUIET, reuse_frames=reuse, notify=notices.append))
    said = " | ".join(notices)
    # the damaged frame is said first, then how many frames are resumed (it said "resuming
    # after 4" and then that frames 2-3 are rendered again)
    assert notices[0].startswith("checkpoint ") and "frame_000002.png is unusable" in \
        notices[0] and "rendering frame 2 and the 1 after it" in notices[0], said
    assert notices[1].startswith("resuming after 2 finished frames"), said
    ref_out, ref_frames = reference
    for t in range(6):
        name = f"frame_{t:06d}.png"
        assert np.array_equal(read_image(ref_frames / name), read_image(frames / name)), t
    assert np.array_equal(read_mp4(ref_out)[1], read_mp4(out)[1])
    assert not work_dir_for(out).exists()


def test_a_damaged_first_checkpoint_starts_afresh(tmp_path, monkeypatch, capfd):
    out = tmp_path / "out.mp4"
    argv = ["render", "zoom", *ZOOM, "size=[64,48]", f"output={out}"]
    run_interrupted(zoom_preset(tmp_path, f"output={out}"), monkeypatch, 3)
    capfd.readouterr()
    empty(work_dir_for(out) / "frame_000000.png")
    assert main(argv) == 0
    err = capfd.readouterr().err
    assert "frame_000000.png is unusable (empty): rendering frame 0 and the 2 after it" in err
    assert "Traceback" not in err and read_mp4(out)[1].shape == (6, 48, 64, 3)


@pytest.mark.parametrize("key", ["size=[80,64]", "size=[48,64]"])
def test_reuse_frames_after_a_size_change_is_one_line(tmp_path, monkeypatch, capfd, key):
    out = tmp_path / "out.mp4"
    run_interrupted(zoom_preset(tmp_path, f"output={out}"), monkeypatch, 3)
    capfd.readouterr()
    code = main(["render", "zoom", *ZOOM, key, f"output={out}", "--reuse-frames"])
    err = capfd.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    new = key.split("=")[1].strip("[]").replace(",", "x")
    assert "64x48" in err and f"this render is {new}" in err and "--reuse-frames" in err, err
    assert not out.exists()
    # the frames are still there, and still good for the old size
    assert main(["render", "zoom", *ZOOM, "size=[64,48]", f"output={out}",
                 "--reuse-frames"]) == 0
    assert "resuming after 3 finished frames" in capfd.readouterr().err
    assert read_mp4(out)[1].shape == (6, 48, 64, 3)


def test_video_max_size_change_with_reuse_frames_is_one_line(tmp_path, monkeypatch, capfd):
    from conftest import video_preset

    from pipelines import video

    out = tmp_path / "v.mp4"
    run_interrupted(video_preset(f"output={out}", "frames=5"), monkeypatch, 2, run=video.run)
    capfd.readouterr()
    code = main(["render", "video", "model.name=efficientnet_lite0", "model.weights=none",
                 "max_size=[32,24]", "dream.octaves=1", "dream.steps=1",
                 "dream.first_frame.octaves=1", "dream.first_frame.steps=2", "frames=5",
                 f"output={out}", "--reuse-frames", "--quiet"])
    err = capfd.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "are 64x48" in err and "this render is 32x24" in err, err
