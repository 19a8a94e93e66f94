"""The studio's parts without a browser (issue 27): the form made from the key table and back,
upload checks, and the queue's files (a restart queues a render that was running)."""

from __future__ import annotations

import json

import pytest

from pipelines.studio import form, uploads
from pipelines.studio.jobs import Queue
from render.errors import UserError
from render.media.image import default_image, write_image


def test_the_form_is_the_key_table_less_the_servers_own_keys():
    keys = [f.key for f in form.fields("zoom")]
    assert "dream.steps" in keys and "finish.upscale" in keys and "motion.zoom" in keys
    for key in ("input", "output", "frames_dir", "audio.file", "dream.mask", "dream.guide"):
        assert key not in keys
    values = form.values("zoom")
    assert values["size"] == "[640, 360]" and values["motion.zoom"] == "0:(1.015), 8:(1.025)"


def test_only_edited_fields_become_overrides_and_paths_are_refused():
    values = form.values("still")
    edited = {**values, "dream.steps": "3", "description": ""}
    assert form.overrides("still", edited) == ["description=null", "dream.steps=3"]
    with pytest.raises(UserError, match="model.weights: the studio takes imagenet or none"):
        form.overrides("still", {**values, "model.weights": "/etc/passwd"})


def test_uploads_are_checked_and_stored_under_a_name_the_server_chooses(tmp_path):
    photo = write_image(tmp_path / "my photo.PNG", default_image((32, 24)))
    stored, kind = uploads.store(photo, "my photo.PNG", tmp_path / "uploads")
    assert kind == "image"
    assert stored.parent == tmp_path / "uploads" and stored.suffix == ".png"
    assert "photo" not in stored.name and stored.read_bytes() == photo.read_bytes()
    fake = tmp_path / "fake.jpg"
    fake.write_bytes(b"not a picture at all")
    with pytest.raises(UserError, match="fake.jpg: does not decode as image"):
        uploads.store(fake, "fake.jpg", tmp_path / "uploads")
    with pytest.raises(UserError, match="not an image, video or song"):
        uploads.check(fake, "script.sh")
    assert sorted(p.name for p in (tmp_path / "uploads").iterdir()) == [stored.name]


def test_a_render_the_last_studio_was_running_is_queued_again(tmp_path):
    queue = Queue(tmp_path, start=False)
    job = queue.submit("still", ["size=[32,24]"], {})
    assert job.yaml_path.read_text().startswith("# written by dreamreel studio")
    record = json.loads((job.folder / "job.json").read_text())
    (job.folder / "job.json").write_text(json.dumps({**record, "status": "running"}))
    assert Queue(tmp_path, start=False).get(job.id).status == "queued"


def test_a_bad_render_is_refused_before_it_is_queued(tmp_path):
    queue = Queue(tmp_path, start=False)
    with pytest.raises(UserError, match="dream.steps: must be >= 1"):
        queue.submit("still", ["dream.steps=0"], {})
    with pytest.raises(UserError, match="preview: is for zoom and video presets"):
        queue.submit("still", [], {}, preview=True)
    assert queue.jobs() == []


def test_a_still_writes_each_octave_as_it_finishes_for_the_studio_to_show(tmp_path):
    from pipelines.cli import main
    from render.media.image import read_image

    out, octaves = tmp_path / "still.png", tmp_path / "octaves"
    assert main(["render", "still", f"output={out}", "model.name=efficientnet_lite0",
                 "model.weights=none", "size=[320,240]", "dream.octaves=2", "dream.steps=1",
                 "--octaves", str(octaves), "--quiet"]) == 0
    written = sorted(p.name for p in octaves.iterdir())
    assert written == ["octave_0.png", "octave_1.png"]
    assert read_image(octaves / "octave_0.png").shape[:2] < read_image(out).shape[:2]
    assert (read_image(octaves / "octave_1.png") == read_image(out)).all()
    queue = Queue(tmp_path / "studio", start=False)
    job = queue.submit("still", [], {})
    (job.folder / "octaves").mkdir()
    for n in (0, 1, 10):  # octave 10 is newer than octave 1 (not a name sort)
        write_image(job.folder / "octaves" / f"octave_{n}.png", default_image((8, 8)))
    assert queue.latest_frame(job) == job.folder / "octaves" / "octave_10.png"


def test_octaves_is_for_stills(tmp_path, capsys):
    from pipelines.cli import main

    assert main(["render", "zoom", f"output={tmp_path / 'z.mp4'}", "--octaves",
                 str(tmp_path / "o")]) == 2
    assert "--octaves: is for still presets; zoom is a zoom" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_plot_follows_an_edited_schedule_and_refuses_a_bad_one():
    values = form.values("zoom")
    plain = form.plot("zoom", values)
    swayed = form.plot("zoom", {**values, "motion.angle": "2 * sin(t / 6)"})
    assert plain.startswith(b"\x89PNG") and swayed != plain
    with pytest.raises(UserError, match="command line: motion.angle="):
        form.plot("zoom", {**values, "motion.angle": "2 * nope"})
    with pytest.raises(UserError, match="plot: still is a still"):
        form.plot("still", form.values("still"))
