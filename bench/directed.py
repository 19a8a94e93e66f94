"""Measures of directed dreams (issue 17), on skimage's photos with EfficientNet-Lite0:

- guide: cosine similarity between the dream's and the guide's mean layer features, guided vs
  unguided, for two photo pairs;
- classes: the classifier's probability of the target class before/after a class dream, and
  on a rescaled + cropped copy of the dream (not only an adversarial pattern at one scale);
- mask: mean |dream - input| outside / inside a half-image mask;
- runtime of each objective against the plain layer objective (interleaved, min of repeats).

    python -m bench.directed [--size 224] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import cv2
import numpy as np
from skimage import data

from render.build import build_engine
from render.engine import DreamEngine, DreamSettings
from render.masks import feathered
from render.models import LayerTerm
from render.objectives import LayerObjective, class_, layer
from render.tf_runtime import tf

MODEL = "efficientnet_lite0"
LAYERS = ("block6", "block8")


def photo(name: str, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(getattr(data, name)(), size, interpolation=cv2.INTER_AREA)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    size = (args.size, args.size * 3 // 4)
    settings = DreamSettings(octaves=3, octave_scale=1.4, steps=10, step_size=0.02, tile=512)
    terms = tuple(LayerTerm(name) for name in LAYERS)

    def engine(**wanted: Any) -> DreamEngine:
        return build_engine(MODEL, LayerObjective(terms, **wanted), notify=lambda m: None).engine

    plain = engine()
    probe = build_engine(MODEL, layer("block6") + layer("block8") + class_(1),
                         notify=lambda m: None).engine

    def mean_feats(img: np.ndarray) -> dict[str, np.ndarray]:
        acts = probe._activations(tf.constant(img[None] / 127.5 - 1.0, tf.float32))
        return {n: acts[n].numpy().reshape(-1, acts[n].shape[-1]).mean(0) for n in LAYERS}

    def probs(img: np.ndarray) -> np.ndarray:
        acts = probe._activations(tf.constant(img[None] / 127.5 - 1.0, tf.float32))
        return tf.nn.softmax(acts["logits"][0]).numpy()

    print(f"model {MODEL}, layers {LAYERS}, size {size}, {settings}")
    print("\n# guide: cosine(mean features of dream, of guide), per layer")
    for src, gd in (("chelsea", "coffee"), ("astronaut", "chelsea")):
        img, gimg = photo(src, size), photo(gd, size)
        guided = engine(guide=gimg).dream(img, settings)
        unguided = plain.dream(img, settings)
        g = mean_feats(gimg)
        for name, im in (("input", img), ("unguided", unguided), ("guided", guided)):
            f = mean_feats(im)
            print(f"{src} -> guide {gd}: {name:9s} " + "  ".join(
                f"{n} {cosine(f[n], g[n]):.3f}" for n in LAYERS))

    print("\n# classes: p(class) before / after, and on a cropped, 1.3x enlarged copy; the "
          "tiles jittered (render.transforms) or not, at the still preset's ascent and a "
          "stronger one")
    import render.engine as engine_module

    jittered = engine_module.jittered
    for steps, step_size in ((10, 0.02), (30, 0.03)):
        strong = DreamSettings(octaves=4, octave_scale=1.4, steps=steps, step_size=step_size,
                               tile=512)
        for src, cls in (("chelsea", 1), ("coffee", 947), ("astronaut", 1)):  # goldfish, mushroom
            img = photo(src, (448, 336))
            for label, transform in (("jittered", jittered), ("plain", lambda p, s: p)):
                engine_module.jittered = transform  # read when the engine traces its octave
                out = build_engine(MODEL, class_(cls), notify=lambda m: None).engine.dream(
                    img, strong)
                h, w = out.shape[:2]
                crop = cv2.resize(out[h // 8: h - h // 8, w // 10: w - w // 10],
                                  (int(w * 1.3), int(h * 1.3)), interpolation=cv2.INTER_CUBIC)
                print(f"{steps}x{step_size} {src} class {cls} ({label}): before "
                      f"{probs(img)[cls]:.4f} after {probs(out)[cls]:.4f} cropped/enlarged "
                      f"{probs(crop)[cls]:.4f}")
    engine_module.jittered = jittered

    print("\n# mask: mean |dream - input| outside / inside (left half white)")
    img = photo("chelsea", size)
    binary = np.zeros(img.shape[:2], np.uint8)
    binary[:, : size[0] // 2] = 255
    out = plain.dream(img, settings, mask=feathered(binary, size))
    d = np.abs(out.astype(float) - img).mean(2)
    inside, outside = d[binary > 0].mean(), d[binary == 0].mean()
    far = d[:, size[0] // 2 + max(2, size[0] // 20):].mean()
    print(f"inside {inside:.3f} outside {outside:.3f} ratio {outside / inside:.4f} "
          f"(outside beyond the feather: {far:.4f}, ratio {far / inside:.5f})")

    print("\n# runtime per dream (s), min of repeats, interleaved")
    gimg = photo("coffee", size)
    engines = {
        "layers": plain,
        "layers+mask": plain,
        "guide": engine(guide=gimg),
        "layers+class": engine(classes=(1,)),
    }
    mask = feathered(binary, size)
    for e in engines.values():
        e.dream(img, settings)  # trace + guide features once
    times: dict[str, list[float]] = {k: [] for k in engines}
    for _ in range(args.repeats):
        for k, e in engines.items():
            t = time.perf_counter()
            e.dream(img, settings, mask=mask if k.endswith("mask") else None)
            times[k].append(time.perf_counter() - t)
    base = min(times["layers"])
    for k, v in times.items():
        print(f"{k:13s} {min(v):.3f} s  x{min(v) / base:.2f}")


if __name__ == "__main__":
    main()
