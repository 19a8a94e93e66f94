"""Make the README's side-by-side sheets: the three models on two real photos, each dreamed by
the shipped `still` preset with only `model.name` changed (each model's default layers and
smoothing), labelled, one sheet per photo.

    .venv/bin/python docs/side_by_side.py            # needs the dev extra (scikit-image)

The photos are scikit-image's `coffee` and `astronaut` (public domain / CC0), written to a
temporary directory and dreamed at their own size through the CLI. Sheets are saved as
256-colour PNGs (Pillow's quantiser, which scikit-image brings), small enough for a README.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage import data

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.layers import contact_sheet, label_tile  # noqa: E402

MODELS = ("inception_v3", "vgg16", "efficientnet_lite0")
PHOTOS = {"coffee": data.coffee, "astronaut": data.astronaut}
TILE_WIDTH = 400  # each tile on the sheet (the dreams are made at the photo's own size)


def dream(photo: Path, model: str, out: Path) -> np.ndarray:
    """The still preset on `photo` with `model`, as uint8 RGB."""
    subprocess.run([sys.executable, "-m", "pipelines", "render", "still", "--quiet", "--force",
                    f"input={photo}", f"model.name={model}", f"output={out}"],
                   cwd=ROOT, check=True, env={**os.environ, "DREAMREEL_OFFLINE": "1"})
    return cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)


def tile(image: np.ndarray, label: str) -> np.ndarray:
    h, w = image.shape[:2]
    small = cv2.resize(image, (TILE_WIDTH, round(h * TILE_WIDTH / w)),
                       interpolation=cv2.INTER_AREA)
    return label_tile(small, label)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, load in PHOTOS.items():
            photo = Path(tmp) / f"{name}.png"
            image = load()
            cv2.imwrite(str(photo), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            tiles = [tile(image, f"{name} (input)")]
            tiles += [tile(dream(photo, m, Path(tmp) / f"{name}-{m}.png"), m) for m in MODELS]
            sheet = Image.fromarray(contact_sheet(tiles, columns=2))
            target = ROOT / "docs" / f"models-{name}.png"
            sheet.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
                           ).save(target, optimize=True)
            print(f"wrote {target} ({target.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
