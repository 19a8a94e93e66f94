"""A plain reference DeepDream, written the way the TensorFlow DeepDream tutorial does it, and
the per-frame time of our engine against it.

    .venv/bin/python bench/reference.py [--json PATH]

Reference (tensorflow.org/tutorials/generative/deepdream): a `TiledGradients` tf.function
(random roll, Python-level loops over tf.range tile offsets, gradient divided by its std),
called once per step from a plain Python loop that adds step_size x gradient and clips;
octaves by tf.image.resize of the dreamed image. Both sides get the same model, layers,
octave sizes, steps, step size and no smoothing, and a tile at least as large as the image
(the tutorial's tile offsets skip the last partial tile, so a smaller tile would give it less
work than us). Ratio = reference seconds / our seconds per frame: > 1 means we are faster.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from render.engine import DreamEngine, DreamSettings, octave_sizes, work_size
from render.media.image import default_image
from render.models import parse_layers
from render.objectives import from_layer_terms
from render.tf_runtime import tf
from render.weights.resolve import LoadedModel, load_model

CASES = (("inception_v3", (512, 512)), ("efficientnet_lite0", (640, 360)))
SETTINGS = DreamSettings(octaves=3, octave_scale=1.4, steps=5, step_size=0.01)


class TiledGradients(tf.Module):
    """The tutorial's tiled gradient: one tf.function call per ascent step."""

    def __init__(self, model: Any, preprocess: Callable[[tf.Tensor], tf.Tensor],
                 weights: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        self.preprocess = preprocess
        self.weights = list(weights)

    def calc_loss(self, img: tf.Tensor) -> tf.Tensor:
        """Weighted sum of the mean activation of each objective layer."""
        acts = self.model(self.preprocess(tf.expand_dims(img, axis=0)))
        if not isinstance(acts, (list, tuple)):
            acts = [acts]
        return tf.add_n([w * tf.reduce_mean(a) for w, a in zip(self.weights, acts, strict=True)])

    @tf.function(input_signature=(tf.TensorSpec(shape=[None, None, 3], dtype=tf.float32),
                                  tf.TensorSpec(shape=[2], dtype=tf.int32),
                                  tf.TensorSpec(shape=[], dtype=tf.int32)))
    def __call__(self, img: tf.Tensor, img_size: tf.Tensor, tile_size: tf.Tensor) -> tf.Tensor:
        shift = tf.random.uniform([2], minval=-tile_size, maxval=tile_size, dtype=tf.int32)
        img_rolled = tf.roll(img, shift=shift, axis=[0, 1])
        gradients = tf.zeros_like(img_rolled)
        xs = tf.range(0, img_size[1], tile_size)[:-1]
        if not tf.cast(len(xs), bool):
            xs = tf.constant([0])
        ys = tf.range(0, img_size[0], tile_size)[:-1]
        if not tf.cast(len(ys), bool):
            ys = tf.constant([0])
        for x in xs:
            for y in ys:
                with tf.GradientTape() as tape:
                    tape.watch(img_rolled)
                    img_tile = img_rolled[y:y + tile_size, x:x + tile_size]
                    loss = self.calc_loss(img_tile)
                gradients = gradients + tape.gradient(loss, img_rolled)
        gradients = tf.roll(gradients, shift=-shift, axis=[0, 1])
        gradients /= tf.math.reduce_std(gradients) + 1e-8
        return gradients


def reference_dream(tiled: TiledGradients, image: np.ndarray, settings: DreamSettings,
                    min_size: int) -> np.ndarray:
    """The tutorial's run_deep_dream_with_octaves on uint8 RGB, returning uint8 RGB."""
    h, w = image.shape[:2]
    img = tf.convert_to_tensor(image, tf.float32) / 127.5 - 1.0
    size = work_size((w, h), min_size)
    for ow, oh in octave_sizes(size, settings.octaves, settings.octave_scale, min_size):
        img = tf.image.resize(img, [oh, ow])
        new_size = tf.constant([oh, ow], tf.int32)
        for _ in range(settings.steps):
            gradients = tiled(img, new_size, tf.constant(settings.tile))
            img = img + gradients * settings.step_size
            img = tf.clip_by_value(img, -1, 1)
    img = tf.image.resize(img, [h, w])
    return tf.cast(tf.clip_by_value(tf.round((img + 1.0) * 127.5), 0, 255), tf.uint8).numpy()


def _load(model: str) -> LoadedModel:
    return load_model(model, "imagenet" if model == "efficientnet_lite0" else "none")


def compare(model: str, size: tuple[int, int], settings: DreamSettings = SETTINGS,
            repeats: int = 3) -> dict[str, Any]:
    """Median seconds per frame of the reference, our engine, and our engine with
    TensorFlow's own conv gradients; alternating after one warm-up each."""
    loaded = _load(model)
    spec = loaded.spec
    terms = parse_layers(spec, None)
    tile = max(size)
    settings = DreamSettings(settings.octaves, settings.octave_scale, settings.steps,
                             settings.step_size, tile)
    import keras

    features = keras.Model(loaded.network.inputs,
                              [loaded.network.get_layer(t.layer).output for t in terms])
    tiled = TiledGradients(features, spec.preprocess, [t.weight for t in terms])
    objective = from_layer_terms(terms)
    ours = DreamEngine(loaded.network, spec.preprocess, objective, "none", spec.min_size)
    ours_tf = DreamEngine(loaded.network, spec.preprocess, objective, "none", spec.min_size,
                          fast_input_gradients=False)
    image = default_image(size)
    variants: dict[str, Callable[[], Any]] = {
        "reference": lambda: reference_dream(tiled, image, settings, spec.min_size),
        "ours": lambda: ours.dream(image, settings),
        "ours_tf_gradients": lambda: ours_tf.dream(image, settings),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    for fn in variants.values():
        fn()  # trace and warm up
    for r in range(repeats):
        for name in (list(variants) if r % 2 == 0 else list(reversed(variants))):
            start = time.perf_counter()
            variants[name]()
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "model": model, "size": list(size), "octaves": settings.octaves,
        "steps": settings.steps, "tile": tile,
        "octave_sizes": octave_sizes(work_size(size, spec.min_size), settings.octaves,
                                     settings.octave_scale, spec.min_size),
        "seconds_per_frame": med,
        "runs_s": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "ratio": med["reference"] / med["ours"],
        "ratio_tf_gradients": med["reference"] / med["ours_tf_gradients"],
    }


def run(cases: Sequence[tuple[str, tuple[int, int]]] = CASES, repeats: int = 3
        ) -> list[dict[str, Any]]:
    """`compare` for each (model, (width, height))."""
    return [compare(model, size, repeats=repeats) for model, size in cases]


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The comparison as a markdown table."""
    lines = ["| model | size | octaves x steps | reference s/frame | ours s/frame | ratio "
             "| ours, TF conv gradients | ratio |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r["seconds_per_frame"]
        lines.append(
            f"| {r['model']} | {r['size'][0]}x{r['size'][1]} | {r['octaves']}x{r['steps']} | "
            f"{s['reference']:.2f} | {s['ours']:.2f} | {r['ratio']:.2f} | "
            f"{s['ours_tf_gradients']:.2f} | {r['ratio_tf_gradients']:.2f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Compare, print the markdown table and optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = run(repeats=args.repeats)
    print(markdown(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
