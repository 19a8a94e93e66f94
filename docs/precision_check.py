"""The quality guard behind `dream.precision` (README, "Precision"): one real photo dreamed in
float32 and in bfloat16 with the same seed and the `still` preset's settings, the mean absolute
difference between them (0..255 grey levels) against the dream strength (mean |dream - photo|)
and against the difference between two float32 seeds (how far apart two equally good dreams
are), each precision dreamed twice to check determinism, and a sheet to look at both.

    .venv/bin/python docs/precision_check.py [--model inception_v3] [--json out/precision.json]

The photo is scikit-image's `coffee` (public domain). Writes docs/precision-coffee.png: the
photo, the float32 dream, the bfloat16 dream, and |float32 - bfloat16| x 4.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from docs.side_by_side import tile  # noqa: E402
from pipelines.config import presets  # noqa: E402
from pipelines.dreaming import image_settings  # noqa: E402
from pipelines.layers import contact_sheet  # noqa: E402
from render.build import build_engine  # noqa: E402
from render.device import cpu_info, onednn_enabled  # noqa: E402


def check(model: str) -> dict:
    """Dream the photo twice per precision; the differences and timings."""
    photo = data.coffee()
    preset = presets.load("still", [f"model.name={model}"])
    settings = image_settings(preset.settings.dream)
    out, seconds, repeat_diff = {}, {}, {}
    for precision in ("float32", "bfloat16"):
        engine = build_engine(model, None, "imagenet", None, lambda m: None, precision).engine
        start = time.perf_counter()
        first = engine.dream(photo, settings, seed=0)
        seconds[precision] = time.perf_counter() - start
        again = engine.dream(photo, settings, seed=0)
        repeat_diff[precision] = int(np.abs(first.astype(int) - again).max())
        out[precision] = first
        if precision == "float32":  # how far apart two seeds are: the noise floor of a dream
            out["float32 seed 1"] = engine.dream(photo, settings, seed=1)
    a, b = (out[p].astype(np.float64) for p in ("float32", "bfloat16"))
    diff = np.abs(a - b)
    result = {"model": model, "photo": "skimage coffee 600x400", "settings": settings.__dict__,
              "cpu": cpu_info()["model"], "onednn": onednn_enabled(),
              "mean_abs_diff": float(diff.mean()), "p99_abs_diff": float(np.percentile(diff, 99)),
              "mean_abs_diff_float32_seed0_vs_seed1": float(np.abs(
                  a - out["float32 seed 1"].astype(np.float64)).mean()),
              "strength_float32": float(np.abs(a - photo).mean()),
              "strength_bfloat16": float(np.abs(b - photo).mean()),
              "max_diff_between_repeats": repeat_diff, "seconds": seconds}
    heat = np.clip(diff * 4, 0, 255).astype(np.uint8)
    tiles = [tile(photo, "coffee (input)"), tile(out["float32"], f"{model} float32"),
             tile(out["bfloat16"], f"{model} bfloat16"), tile(heat, "|float32 - bfloat16| x4")]
    target = ROOT / "docs" / "precision-coffee.png"
    Image.fromarray(contact_sheet(tiles, columns=2)).quantize(
        256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(target, optimize=True)
    result["sheet"] = str(target.relative_to(ROOT))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="inception_v3")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = check(args.model)
    print(json.dumps(result, indent=2, default=str))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
