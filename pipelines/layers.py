"""The `layers` pipeline: the original project's layer gallery — what each layer of a model
sees, one labelled tile per layer, shallow to deep, on one PNG contact sheet."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from pipelines import dreaming
from pipelines.config.presets import Preset
from pipelines.config.settings import LayersSettings
from pipelines.outputs import resolve_outputs, write_sidecar
from pipelines.run_options import RunOptions
from pipelines.source.fit import fit_masks
from pipelines.source.inputs import masks as read_masks
from pipelines.source.inputs import still_input
from render.media.image import check_image_output, write_image


def label_tile(tile: np.ndarray, text: str) -> np.ndarray:
    """Write `text` on a dark band along the bottom of a uint8 RGB tile."""
    out = tile.copy()
    h, w = out.shape[:2]
    scale = max(0.35, min(w, h) / 400)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    band = th + base + 6
    out[h - band:] = (out[h - band:] * 0.35).astype(np.uint8)
    cv2.putText(out, text, (4, h - base - 3), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), 1, cv2.LINE_AA)
    return out


def contact_sheet(tiles: list[np.ndarray], columns: int = 0, gap: int = 4) -> np.ndarray:
    """Lay equal-sized uint8 RGB tiles on a grid (row-major) with a dark gap."""
    n = len(tiles)
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    h, w = tiles[0].shape[:2]
    sheet = np.full((rows * h + (rows + 1) * gap, cols * w + (cols + 1) * gap, 3), 16, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        y, x = gap + r * (h + gap), gap + c * (w + gap)
        sheet[y:y + h, x:x + w] = tile
    return sheet


def run(preset: Preset[LayersSettings], opts: RunOptions) -> list[Path]:
    """Dream the same image once per layer (one compiled engine, one-hot layer weights)."""
    settings = preset.settings
    gallery = settings.gallery
    outputs = resolve_outputs(settings, preset.name, ".png", check_image_output)
    masks = read_masks(settings.dream)
    image = still_input(settings, opts.notify)
    masks = fit_masks(masks, image.shape[1::-1], settings.fit, opts.notify)
    built = dreaming.build(settings.model, settings.dream, opts.notify, all_layers=True)
    dream = dreaming.image_settings(settings.dream)
    names = [t.layer for t in built.terms]
    tiles = []
    for i, name in enumerate(tqdm(names, desc="layers", unit="layer", disable=opts.quiet)):
        weights = [1.0 if j == i else 0.0 for j in range(len(names))]
        tile = built.engine.dream(image, dream, seed=settings.seed, layer_weights=weights,
                                  mask=None if masks is None else masks.at(0))
        tiles.append(label_tile(tile, name) if gallery.label else tile)
    sheet = contact_sheet(tiles, gallery.columns)
    record = {**preset.record(), "model": built.record(), "tiles": names}
    for path in outputs:
        write_image(path, sheet)
        write_sidecar(path, {**record, "output": str(path)})
    return outputs
