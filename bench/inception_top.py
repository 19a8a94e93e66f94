"""Check (not part of `make test`: ~30 s) that InceptionV3's classifier for class objectives
is Keras' own: a random full InceptionV3 is saved as Keras' full-weights file in a temporary
KERAS_HOME, loaded through render.weights.resolve (weights copied onto the dynamic-size
network), and its logits must equal the Keras model's at 299x299; then a class dream runs.

    python -m bench.inception_top
"""

from __future__ import annotations

import os
import tempfile


def main() -> None:
    home = tempfile.mkdtemp()
    os.environ["KERAS_HOME"] = home
    os.environ["DREAMREEL_OFFLINE"] = "1"
    import h5py
    import keras
    import numpy as np
    from keras.src.legacy.saving import legacy_h5_format

    from render.build import build_engine
    from render.engine import DreamSettings
    from render.models import LayerTerm
    from render.objectives import LayerObjective
    from render.weights.resolve import load_model

    keras.utils.set_random_seed(3)
    full = keras.applications.InceptionV3(include_top=True, weights=None,
                                          classifier_activation=None)
    os.makedirs(f"{home}/models")
    with h5py.File(f"{home}/models/inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
                   "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, full)
    loaded = load_model("inception_v3", "imagenet", top=True)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 299, 299, 3)).astype("float32")
    a, b = full(x).numpy(), loaded.network(x).numpy()
    print(f"{loaded.weights}: max |logit difference| {np.abs(a - b).max():.3g} "
          f"(logits up to {np.abs(a).max():.3g})")
    assert np.array_equal(a, b)
    engine = build_engine("inception_v3", LayerObjective((LayerTerm("mixed4"),), classes=(1,)),
                          "imagenet").engine
    out = engine.dream(np.full((96, 128, 3), 128, np.uint8), DreamSettings(1, 1.4, 2, 0.02, 512))
    print("class dream with inception_v3:", out.shape, "ok")


if __name__ == "__main__":
    main()
