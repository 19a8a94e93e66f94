"""Rendering on a Ray cluster (issue 18): a video cut into chunks dreamed by Ray actors and
stitched back (frame count, fps, audio kept), a lost worker retried to the same frames, a
stopped driver resumed to the same frames; batches of inputs with bad files reported one line
each; bad cluster settings refused in one line before anything is written.

One local Ray (2 CPUs) serves the module; renders after the first reuse its warm worker (the
driver keeps workers while a Ray it did not start runs on). One worker, not two, keeps the
module inside its time budget on 2 cores: two cold workers loading TensorFlow side by side
cost ~20 s more here. Two workers are run by bench/cluster.py (`make bench`)."""

from __future__ import annotations

import json
import os
import signal
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from media_probe import audio_streams, make_clip, read_mp4

from pipelines.cli import main
from pipelines.cluster import driver as driver_module
from pipelines.cluster import video as cluster_video
from pipelines.cluster.chunks import owner, plan_chunks
from pipelines.cluster.cuts import scene_cuts
from pipelines.source.inputs import generated_frames
from render.media.image import default_image, read_image, write_image

STILL = ["model.name=efficientnet_lite0", "model.weights=none", "dream.octaves=1",
         "dream.steps=1", "--quiet"]
TINY = [*STILL, "dream.first_frame.octaves=1", "dream.first_frame.steps=1"]
CLUSTER = ["cluster.address=local", "cluster.workers=1", "cluster.chunk=8", "cluster.overlap=2"]


# --- the chunk plan and scene cuts (pure) ---

def test_24_frames_make_3_chunks_that_warm_up_over_the_overlap():
    chunks = plan_chunks(24, 8, 2)
    assert [(c.start, c.end, c.warm, c.at_cut) for c in chunks] == [
        (0, 8, 0, True), (8, 16, 6, False), (16, 24, 14, False)]


def test_a_scene_cut_is_a_boundary_without_warm_up():
    chunks = plan_chunks(48, 16, 4, cuts=[20])
    assert 20 in [c.start for c in chunks]
    at = next(c for c in chunks if c.start == 20)
    assert at.at_cut and at.warm == 20
    assert plan_chunks(48, 16, 4, cuts=[2]) == plan_chunks(48, 16, 4)  # too close: ignored


@given(frames=st.integers(1, 400), chunk=st.integers(2, 60), data=st.data())
def test_chunks_cover_every_frame_once(frames, chunk, data):
    overlap = data.draw(st.integers(0, chunk - 1))
    cuts = data.draw(st.lists(st.integers(1, max(1, frames - 1)), max_size=5))
    chunks = plan_chunks(frames, chunk, overlap, cuts)
    assert chunks[0].start == 0 and chunks[-1].end == frames
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert a.end == b.start and b.warm > a.start and b.start - b.warm <= overlap
    assert all(c.end - c.start <= chunk for c in chunks)
    assert all(chunks[owner(chunks, t)].start <= t < chunks[owner(chunks, t)].end
               for t in range(frames))


def test_scene_cuts_find_the_switch_between_two_shots_and_nothing_in_a_pan():
    one = list(generated_frames((64, 48), 12, seed=0))
    other = list(generated_frames((64, 48), 10, seed=9))
    assert scene_cuts(one) == []
    assert scene_cuts(one + other) == [12]


# --- rendering on a local Ray ---

@pytest.fixture(scope="module")
def ray_session():
    """One local Ray for the module."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 1 s, 24 fps, 64x48 clip with sound."""
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=1, fps=24,
                     audio="sin(2*PI*440*t)")


def render(tmp_path, clip, name, *extra):
    out, frames = tmp_path / f"{name}.mp4", tmp_path / f"{name}-frames"
    code = main(["render", "video", f"input={clip}", f"output={out}", f"frames_dir={frames}",
                 *TINY, *CLUSTER, *extra])
    return code, out, frames


def same_frames(a, b, count=24):
    return all(np.array_equal(read_image(a / f"frame_{t:06d}.png"),
                              read_image(b / f"frame_{t:06d}.png")) for t in range(count))


@pytest.fixture(scope="module")
def reference(ray_session, clip, tmp_path_factory):
    """The undisturbed cluster render of the clip."""
    code, out, frames = render(tmp_path_factory.mktemp("ref"), clip, "ref")
    assert code == 0
    return out, frames


def test_a_24_frame_clip_renders_in_3_chunks_keeping_fps_and_audio(reference):
    out, _ = reference
    meta, frames = read_mp4(out)
    assert len(frames) == 24 and meta["fps"] == pytest.approx(24)
    assert audio_streams(out)
    side = json.loads(out.with_name(out.name + ".json").read_text())["cluster"]
    assert side["address"] == "local" and side["workers"] == 1 and side["chunks"] == 3
    assert side["boundaries"] == [8, 16] and len(side["seconds_per_chunk"]) == 3
    assert side["restarts"] == 0


def test_up_to_the_first_warm_up_the_frames_are_the_single_process_render(reference, clip,
                                                                          tmp_path):
    out, frames = tmp_path / "alone.mp4", tmp_path / "alone-frames"
    assert main(["render", "video", f"input={clip}", f"output={out}", f"frames_dir={frames}",
                 *TINY]) == 0
    warm = plan_chunks(24, 8, 2)[1].warm  # frames before it are chunk 0's alone, carried from 0
    assert warm == 6
    assert same_frames(reference[1], frames, warm)
    assert not same_frames(reference[1], frames, 24)  # later chunks restart their dream


def test_a_lost_worker_is_restarted_and_the_output_is_the_same(reference, clip, tmp_path,
                                                               capsys, monkeypatch):
    """The worker's process (the pid it reported) is killed from here, as a lost machine goes
    (no clean-up, no exception), while every chunk is sent to it and none is back yet."""
    killed: list[int] = []

    class KillTheWorker(driver_module.ChunkedScheduler):
        def _get(self, ref, what):
            if what.startswith("chunk 0 ") and not killed:  # chunks 0-2 were just sent
                (pid,) = self.pids[0]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            return super()._get(ref, what)

    monkeypatch.setattr(cluster_video, "ChunkedScheduler", KillTheWorker)
    code, out, frames = render(tmp_path, clip, "crash")
    assert code == 0, capsys.readouterr().err
    assert len(killed) == 1
    side = json.loads(out.with_name(out.name + ".json").read_text())["cluster"]
    assert side["restarts"] == 1  # a chunk came back from a new process
    assert len(read_mp4(out)[1]) == 24
    assert same_frames(reference[1], frames)


def test_a_stopped_driver_resumes_to_the_same_output(reference, clip, tmp_path, monkeypatch,
                                                    capsys):
    class StopAfter(driver_module.CheckpointWriter):
        def save(self, t, image):
            if t == 11:  # frames 0..10 are checkpointed, as when the driver is killed
                raise KeyboardInterrupt
            super().save(t, image)

    monkeypatch.setattr(driver_module, "CheckpointWriter", StopAfter)
    code, out, _ = render(tmp_path, clip, "resume")
    assert code == 130 and not out.exists()
    monkeypatch.undo()
    capsys.readouterr()
    code, out, frames = render(tmp_path, clip, "resume", "--quiet")
    assert code == 0
    side = json.loads(out.with_name(out.name + ".json").read_text())
    assert side["resumed_frames"] == 11
    assert same_frames(reference[1], frames)


# --- bad input: one line, exit 2, nothing written ---

def refused(tmp_path, capsys, *overrides):
    out = tmp_path / "out" / "v.mp4"
    code = main(["render", "video", f"output={out}", *TINY, *overrides])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and not (tmp_path / "out").exists(), err
    return err


def test_an_unreachable_cluster_is_refused_after_a_bounded_wait(tmp_path, capsys):
    err = refused(tmp_path, capsys, "cluster.address=ray://127.0.0.1:9",
                  "cluster.connect_timeout=2")
    assert "command line: cluster.address=ray://127.0.0.1:9" in err and "cannot reach" in err


def test_more_local_workers_than_cpus_are_refused_before_ray_starts(tmp_path, capsys,
                                                                    monkeypatch):
    """cluster.workers=1000 on a small machine ran Ray out of memory (issue 25): refused in one
    line naming the key, before anything starts."""
    import ray

    def no_ray(*args, **kwargs):
        raise AssertionError("ray.init was called")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_ray)
    too_many = (os.cpu_count() or 1) + 1
    err = refused(tmp_path, capsys, "cluster.address=local", f"cluster.workers={too_many}")
    assert f"command line: cluster.workers={too_many}" in err
    assert f"{too_many} local workers need a CPU each, and this machine has" in err


def test_a_worker_error_is_reported_whole_not_cut():
    from pipelines.cluster.connect import first_paragraph

    long = ("11 worker(s) were killed due to the node running low on memory. " * 6).strip()
    assert len(long) > 300 and first_paragraph(RuntimeError(long)) == long
    assert first_paragraph(RuntimeError("one\n  line\n\nTraceback (most recent call last):"
                                        )) == "one line"


def test_a_chunk_smaller_than_its_overlap_is_refused(tmp_path, capsys):
    err = refused(tmp_path, capsys, "cluster.address=local", "cluster.chunk=4",
                  "cluster.overlap=6")
    assert "cluster.overlap" in err and "smaller than cluster.chunk (4)" in err


def test_without_ray_the_cluster_is_refused_saying_how_to_install_it(tmp_path, capsys,
                                                                     monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    err = refused(tmp_path, capsys, "cluster.address=local")
    assert "pip install 'dreamreel[cluster]'" in err


def test_files_the_remote_workers_would_open_by_path_are_refused(tmp_path, capsys):
    guide = tmp_path / "guide.png"
    write_image(guide, np.full((8, 8, 3), 128, np.uint8))
    err = refused(tmp_path, capsys, "cluster.address=auto", f"dream.guide={guide}")
    assert f"command line: dream.guide={guide}" in err and "opened on the workers" in err


def test_a_mask_is_refused_on_a_cluster(tmp_path, capsys):
    mask = tmp_path / "mask.png"
    write_image(mask, np.full((8, 8, 3), 255, np.uint8))
    err = refused(tmp_path, capsys, "cluster.address=local", f"dream.mask={mask}")
    assert "dream.mask: not supported on a cluster" in err


def test_a_preview_with_a_cluster_set_is_made_here(tmp_path, capsys, monkeypatch):
    from pipelines.cluster import batch

    def no_cluster(*args, **kwargs):
        raise AssertionError("a preview started the cluster")

    monkeypatch.setattr(batch, "on_cluster", no_cluster)
    out = tmp_path / "z.mp4"
    code = main(["render", "zoom", f"output={out}", "frames=4", "size=[64,48]",
                 "cluster.address=local", "--preview", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "z.preview.mp4").exists() and not out.exists()


# --- batches ---

def test_a_batch_renders_each_input_and_reports_a_bad_one(tmp_path, capsys, shared_engine):
    folder = tmp_path / "in"
    folder.mkdir()
    write_image(folder / "a.png", default_image((64, 48), seed=1))
    write_image(folder / "b.jpg", default_image((64, 48), seed=2))
    (folder / "c.png").write_bytes(b"not an image")
    code = main(["render", "still", f"input={folder}", f"output={tmp_path / 'out'}", *STILL])
    err = capsys.readouterr().err
    assert code == 3, err
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["a.png", "b.png"]
    failed = [line for line in err.splitlines() if "failed:" in line]
    assert len(failed) == 1 and "c.png" in failed[0]



def test_a_loop_batch_writes_gifs_and_says_which_input_it_is_on(tmp_path, capsys,
                                                                shared_engine):
    """The loop preset's own output is a GIF: a batch of it writes GIFs (it wrote MP4s), and
    a line before each input says where the batch is."""
    folder = tmp_path / "in"
    folder.mkdir()
    for k in (1, 2):
        write_image(folder / f"p{k}.png", default_image((64, 48), seed=k))
    code = main(["render", "loop", f"input={folder}", f"output={tmp_path / 'out'}",
                 "model.name=efficientnet_lite0", "model.weights=none", "size=[32,24]",
                 "frames=4", "loop.frames=2", "dream.octaves=1", "dream.steps=1",
                 "dream.first_frame.octaves=1", "dream.first_frame.steps=1"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()
                  if not p.name.endswith(".json")) == ["p1.gif", "p2.gif"]
    assert "batch 1 of 2:" in err and "batch 2 of 2:" in err and "p2.gif" in err, err

def test_a_batch_needs_an_output_folder_and_matching_files(tmp_path, capsys):
    write_image(tmp_path / "a.png", default_image((64, 48), seed=1))
    code = main(["render", "still", f"input={tmp_path}/*.png", "output=x.png", *STILL])
    assert code == 2 and "folder" in capsys.readouterr().err
    code = main(["render", "still", f"input={tmp_path}/*.webp", *STILL])
    assert code == 2 and "no file matches" in capsys.readouterr().err


def test_more_local_workers_than_memory_holds_are_refused():
    """Each local worker holds TensorFlow and a network (about 1 GB): 16 of them on a machine
    with 8 GB free are refused in one line naming the key, saying how many fit."""
    from pipelines.cluster.connect import WORKER_BYTES, check_local_fit
    from pipelines.config.settings import ClusterConfig
    from render.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        check_local_fit(ClusterConfig(address="local", workers=16), cpus=64, free=8 << 30)
    assert info.value.key == "cluster.workers"
    fits = int((8 << 30) * 0.8) // WORKER_BYTES
    assert "16 local workers need about" in str(info.value)
    assert f"use at most {fits}" in str(info.value)
    check_local_fit(ClusterConfig(address="local", workers=fits), cpus=64, free=8 << 30)


def test_a_local_ray_keeps_its_files_in_a_folder_removed_afterwards(monkeypatch):
    """A local Ray once left 50 MB of session files in the system temp folder."""
    from pathlib import Path

    import ray

    from pipelines.cluster.connect import connected
    from pipelines.config.settings import ClusterConfig

    seen = {}

    def fake_init(**kwargs):
        seen.update(kwargs)
        Path(kwargs["_temp_dir"], "session_latest").mkdir(parents=True)

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", fake_init)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    with connected(ClusterConfig(address="local", workers=1)):
        assert Path(seen["_temp_dir"], "session_latest").is_dir()
    assert not Path(seen["_temp_dir"]).exists()
