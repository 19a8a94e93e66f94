"""Directed dreams (issue 17): the objective as composable terms, ImageNet class names, guide
images, masks, and the bad-input contract of dream.guide / classes / mask."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest
from robustness_kit import refused

from render.classes import class_index, class_indices
from render.engine import DreamEngine, DreamSettings
from render.errors import UserError
from render.masks import feathered, load_masks
from render.models import LayerTerm
from render.objectives import ClassLogits, LayerMean, LayerObjective, class_, guide, layer

SETTINGS = DreamSettings(octaves=2, octave_scale=1.4, steps=4, step_size=0.05, tile=512)


def identity(x):
    return x


# --- terms and names (no network) ------------------------------------------------------------

def test_terms_compose_with_weights_and_layer_slots():
    obj = 0.5 * layer("c2") + class_("goldfish") + 2 * layer("c3", 1) - layer("c1")
    kinds = [type(t) for _, t in obj]
    assert kinds == [LayerMean, ClassLogits, LayerMean, LayerMean]
    assert obj.weights() == [0.5, 1.0, 2.0, -1.0]
    assert obj.layer_slots() == (0, 2, 3)
    assert obj.weights([0.0, 1.0, 0.0]) == [0.0, 1.0, 1.0, 0.0]  # the class term keeps its own
    assert obj.layers() == ("c2", "logits", "c3", "c1")
    assert obj.needs_logits
    with pytest.raises(ValueError):
        obj.weights([1.0])


def test_class_names_resolve_case_insensitively_with_did_you_mean():
    assert class_index("goldfish") == 1
    assert class_index("Golden Retriever") == class_index("golden_retriever") == 207
    assert class_indices(["GOLDFISH", 207, "207", "goldfish"]) == (1, 207)
    with pytest.raises(UserError, match="did you mean goldfish"):
        class_index("goldfsh")
    with pytest.raises(UserError, match="134 the bird, 517 the machine"):  # two cranes
        class_index("crane")
    with pytest.raises(UserError, match="out of range"):
        class_index(1000)
    with pytest.raises(UserError, match="got 0.0"):  # dream.classes=0. (found by the fuzz test)
        class_indices(0.0)


# --- the engine with a tiny network --------------------------------------------------------

def test_guide_and_mask_are_inputs_of_one_trace(tiny_cnn, photo):
    guide_image = np.ascontiguousarray(photo[::-1, ::-1])
    obj = layer("c2") + guide(guide_image, "c3")
    engine = DreamEngine(tiny_cnn, identity, obj, "none", 16)
    mask = np.zeros(photo.shape[:2], np.float32)
    mask[:, : photo.shape[1] // 2] = 1.0
    for size, m in (((80, 56), None), ((80, 56), mask), ((64, 40), mask), ((96, 72), None)):
        img = cv2.resize(photo, size)
        engine.dream(img, SETTINGS, layer_weights=[1.0, 0.5], mask=m)
    assert engine.trace_count == 1


def test_gradient_mask_leaves_black_untouched(tiny_cnn, photo):
    engine = DreamEngine(tiny_cnn, identity, layer("c2"), "none", 16)
    h, w = photo.shape[:2]
    binary = np.zeros((h, w), np.uint8)
    binary[:, : w // 2] = 255
    out = engine.dream(photo, SETTINGS, mask=feathered(binary, (w, h)))
    diff = np.abs(out.astype(float) - photo).mean(axis=2)
    inside, outside = diff[:, : w // 2 - 4].mean(), diff[:, w // 2 + 4:].mean()
    assert inside > 1.0
    assert outside < 0.05 * inside


def test_guided_dream_moves_features_towards_the_guide(shared_engine):
    """EfficientNet-Lite0 on two photos: the mean block8 features of a guided dream are closer
    (cosine) to the guide's than an unguided dream's (bench/directed.py measures more)."""
    from skimage import data

    from render.build import build_engine
    from render.tf_runtime import tf

    size = (96, 72)
    cat, coffee = (cv2.resize(f(), size, interpolation=cv2.INTER_AREA)
                   for f in (data.chelsea, data.coffee))
    settings = DreamSettings(octaves=1, steps=10, step_size=0.03, tile=512)
    block8 = (LayerTerm("block8"),)
    plain = build_engine("efficientnet_lite0", LayerObjective(block8)).engine
    guided = build_engine("efficientnet_lite0", LayerObjective(block8, coffee)).engine

    def mean_features(img):
        acts = plain._activations(tf.constant(img[None] / 127.5 - 1.0, tf.float32))
        return acts["block8"].numpy().reshape(-1, acts["block8"].shape[-1]).mean(axis=0)

    def cosine(a, b):
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    target = mean_features(coffee)
    assert (cosine(mean_features(guided.dream(cat, settings)), target)
            > cosine(mean_features(plain.dream(cat, settings)), target) + 0.1)


# --- masks -----------------------------------------------------------------------------------

def write_mask_video(path: Path, frames: int, size=(64, 48), fps=20) -> Path:
    w, h = size
    writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, macro_block_size=1,
                                         output_params=["-loglevel", "error"])
    writer.send(None)
    for t in range(frames):
        frame = np.zeros((h, w, 3), np.uint8)
        frame[:, : (t + 1) * w // (frames + 1)] = 255
        writer.send(frame.tobytes())
    writer.close()
    return path


def test_mask_video_gives_one_mask_per_frame_and_must_be_long_enough(tmp_path):
    video = write_mask_video(tmp_path / "mask.mp4", 4)
    masks = load_masks(video, frames=4, fps=20)
    areas = [masks.at(t).mean() for t in range(4)]
    assert areas == sorted(areas) and areas[0] < areas[-1]
    assert masks.at(0).shape == (48, 64)
    with pytest.raises(UserError, match="has 4 frames at 20 fps; the render needs 6"):
        load_masks(video, frames=6, fps=20)


# --- the CLI: a class dream, and refusals -----------------------------------------------------

@pytest.fixture
def files(tmp_path):
    from skimage import data

    cat = tmp_path / "cat.png"
    cv2.imwrite(str(cat), cv2.cvtColor(cv2.resize(data.chelsea(), (96, 64)), cv2.COLOR_RGB2BGR))
    black = tmp_path / "black.png"
    cv2.imwrite(str(black), np.zeros((10, 10), np.uint8))
    half = tmp_path / "half.png"
    m = np.zeros((64, 96), np.uint8)
    m[:, :48] = 255
    cv2.imwrite(str(half), m)
    return {"cat": cat, "black": black, "half": half,
            "short": write_mask_video(tmp_path / "short.mp4", 2)}


def test_still_with_classes_guide_and_mask_records_the_objective(files, tmp_path,
                                                                shared_engine):
    from pipelines.cli import main

    out = tmp_path / "out.png"
    code = main(["render", "still", f"input={files['cat']}", f"output={out}", "--quiet",
                 "model.name=efficientnet_lite0", "dream.octaves=1", "dream.steps=2",
                 "dream.classes=[goldfish]", f"dream.guide={files['cat']}",
                 f"dream.mask={files['half']}", "model.layers=block6"])
    assert code == 0
    record = json.loads(out.with_suffix(".png.json").read_text())
    terms = record["model"]["objective"]
    assert [t["term"] for t in terms] == ["guide", "classes"]
    assert terms[1]["classes"] == {"1": "goldfish"}
    assert record["mask"]["mask"] == str(files["half"])


@pytest.mark.parametrize("preset,overrides,says", [
    ("still", ["dream.classes=[goldfsh]", "model.name=efficientnet_lite0"],
     "did you mean goldfish"),
    ("still", ["dream.classes=[goldfish]", "model.name=vgg16"], "vgg16 has no ImageNet "
     "classifier here; models with one: inception_v3 (with Keras' full weights"),
    ("still", ["dream.classes=[goldfish]", "model.name=inception_v3",  # no full Keras file
               "model.weights=imagenet"],
     "inception_v3 has no ImageNet classifier here"),
    ("still", ["dream.guide={tmp}/missing.png"], "guide image not found"),
    ("still", ["dream.guide={tmp}/cat.txt"], "dream.guide"),
    ("still", ["dream.mask={tmp}/missing.png"], "mask not found"),
    ("still", ["dream.mask={black}"], "all black"),
    ("zoom", ["dream.mask={short}", "frames=5", "fps=20", "size=[64,48]"],
     "the render needs 5"),
])
def test_bad_directed_input_is_one_line_exit_2(files, tmp_path, capfd, preset, overrides,
                                                says):
    (tmp_path / "cat.txt").write_text("not an image")
    values = {"tmp": tmp_path, **files}
    refused(capfd, tmp_path, preset, [f"input={files['cat']}", "model.weights=none"]
            + [o.format(**values) for o in overrides], says)


def test_video_motion_under_a_mask_starts_from_the_source_outside():
    from pipelines.warp.masked import MaskedMotion
    from render.masks import Masks

    class Carried:  # stands in for the flow carry: a dreamed-looking grey everywhere
        def move(self, t, previous):
            return np.full((8, 12, 3), 200, np.uint8)

    source = np.full((8, 12, 3), 50, np.uint8)
    grey = np.zeros((16, 24), np.uint8)
    grey[:, :8] = 255  # left third dreams (the mask has its own size; stretched to the frame)
    moved = MaskedMotion(Carried(), lambda t: source, Masks([grey], "m")).move(1, source)
    assert (moved[:, :2] > 150).all()  # inside: the carried dream
    assert (moved[:, -4:] == 50).all()  # outside: the source frame, untouched


def test_a_changed_mask_file_is_not_resumed_from(files, tmp_path, monkeypatch, shared_engine):
    """Frames dreamed with one mask are not reused when the file under that name changes; with
    the same file they are (so the check can fail)."""
    from conftest import QUIET, run_interrupted, zoom_preset

    from pipelines import zoom

    mask = tmp_path / "m.png"
    cv2.imwrite(str(mask), cv2.imread(str(files["half"])))
    preset = zoom_preset(tmp_path, f"dream.mask={mask}", f"output={tmp_path / 'z.gif'}",
                         "frames=3")

    def resumed() -> bool:
        notices: list[str] = []
        zoom.run(preset, dataclasses.replace(QUIET, notify=notices.append))
        return any("resuming" in n for n in notices)

    run_interrupted(preset, monkeypatch, 1)
    assert resumed()  # same mask: the finished frames are reused
    run_interrupted(preset, monkeypatch, 1, run=lambda p, o: zoom.run(
        p, dataclasses.replace(o, force=True)))
    other = np.full((64, 96), 255, np.uint8)
    other[:, :20] = 0
    cv2.imwrite(str(mask), other)
    os.utime(mask, ns=(1, 1))  # a new time stamp even on a coarse clock
    assert not resumed()
