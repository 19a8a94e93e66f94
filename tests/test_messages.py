"""Messages that say what happened (issue 14, items 5 and 7): the memory refusal never
contradicts itself, a damaged image is called damaged, resuming and discarding frames are said
out loud, a full disk says to free space first and how much the kept frames take, and a URL
input is called a URL as typed."""

from __future__ import annotations

import errno
import re

import pytest
from conftest import run_interrupted, zoom_preset

from pipelines.cli import main
from pipelines.sequence.checkpoints import CheckpointStore
from render import memory
from render.errors import UserError
from render.media.image import default_image, write_image

GB = 2**30
ZOOM = ["zoom", "model.name=efficientnet_lite0", "model.weights=none", "size=[64,48]",
        "frames=6", "fps=20", "motion.zoom=1.05", "dream.octaves=1", "dream.steps=2",
        "dream.first_frame.octaves=1", "dream.first_frame.steps=2", "--quiet"]


@pytest.mark.parametrize("free_gb", [22.8, 23.28, 18.0, 18.63, 12.0, 4.0])
def test_the_memory_refusal_never_contradicts_itself(monkeypatch, free_gb):
    monkeypatch.setattr(memory, "available_memory", lambda: int(free_gb * GB))
    with pytest.raises(UserError) as info:
        memory.check_memory((10000, 10000), "size")  # 18.6 GB at 200 B/px
    text = str(info.value)
    need = float(re.search(r"needs about ([\d.]+) GB", text).group(1))
    if "but only" in text:  # "needs N but only F is free" must mean N > F
        assert need > float(re.search(r"only ([\d.]+) GB is free", text).group(1)), text
    else:
        assert f"{int(free_gb * 10) / 10:.1f} GB is free, but at most 80% of it" in text, text
        assert need > float(re.search(r"of it \(([\d.]+) GB\)", text).group(1)), text


def test_the_memory_refusal_from_the_command_line(monkeypatch, capfd, tmp_path):
    monkeypatch.setattr(memory, "available_memory", lambda: int(22.8 * GB))
    code = main(["render", "still", "size=[10000,10000]", f"output={tmp_path / 'o.png'}"])
    err = capfd.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "needs about 18.7 GB" in err and "but only 22.8 GB is free" not in err, err
    assert "at most 80% of it (18.2 GB)" in err, err


@pytest.mark.parametrize("name", ["in.jpg", "in.png"])
def test_a_truncated_image_is_called_damaged(tmp_path, capfd, name):
    path = write_image(tmp_path / name, default_image((120, 90)))
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    code = main(["render", "still", f"input={path}", f"output={tmp_path / 'o.png'}"])
    err = capfd.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    kind = "JPEG" if name.endswith("jpg") else "PNG"
    assert f"the {kind} file is damaged or cut short" in err and "allowed:" not in err, err


def test_text_with_an_image_extension_still_lists_the_formats(tmp_path, capfd):
    path = tmp_path / "in.png"
    path.write_text("hello, world")
    assert main(["render", "still", f"input={path}", f"output={tmp_path / 'o.png'}"]) == 2
    err = capfd.readouterr().err
    assert "not in an image format" in err and "allowed: .png" in err, err


@pytest.mark.parametrize("preset,url", [("video", "https://example.com/clip.mp4"),
                                        ("still", "http://example.com/a.png")])
def test_a_url_input_is_named_as_typed(tmp_path, capfd, preset, url):
    code = main(["render", preset, f"input={url}", f"output={tmp_path / 'o.png'}"
                 if preset == "still" else f"output={tmp_path / 'o.mp4'}"])
    err = capfd.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"{url}: URLs are not supported" in err and "not found" not in err, err


def test_resuming_and_discarding_frames_are_said(tmp_path, monkeypatch, capfd):
    out = tmp_path / "out.mp4"
    run_interrupted(zoom_preset(tmp_path, f"output={out}"), monkeypatch, 3)
    capfd.readouterr()
    assert main(["render", *ZOOM, "dream.steps=3", f"output={out}"]) == 0
    err = capfd.readouterr().err
    assert "preset changed: discarding 3 finished frames" in err, err
    assert "(--reuse-frames keeps them)" in err and "dreamreel: resuming" not in err, err


def test_a_full_disk_says_to_free_space_first(tmp_path, monkeypatch, capfd):
    out = tmp_path / "out.mp4"
    original = CheckpointStore.save

    def save(self, t, frame):
        if t >= 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path(t)))
        original(self, t, frame)

    monkeypatch.setattr(CheckpointStore, "save", save)
    assert main(["render", *ZOOM, f"output={out}"]) == 2
    err = capfd.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "No space left on device" in err, err
    assert re.search(r"the 2 finished frames \([\d.]+ [kM]B\) are kept in \S+\.out\.mp4\.work: "
                     r"free some space .*, then run the same command to resume", err), err
