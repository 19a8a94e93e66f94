"""The `still` pipeline: one image in, one dreamed image out."""

from __future__ import annotations

import time
from pathlib import Path

from pipelines.dreamer_config import make_dreamer, model_record
from pipelines.outputs import resolve_outputs, write_sidecar
from pipelines.presets import Preset
from pipelines.run_options import RunOptions
from pipelines.sources import still_input
from render.media import check_image_output, write_image

SCHEMA: dict = {}


def run(preset: Preset, opts: RunOptions) -> list[Path]:
    """Dream the input image once and write it (PNG/JPEG) with a JSON sidecar."""
    cfg = preset.config
    outputs = resolve_outputs(cfg, preset.name, ".png", check_image_output)
    image = still_input(cfg)
    dreamer = make_dreamer(cfg, opts.notify)
    start = time.perf_counter()
    dreamed = dreamer(image)
    seconds = time.perf_counter() - start
    record = {**preset.record(), "model": model_record(dreamer), "size": list(image.shape[1::-1]),
              "timings": {"dream_seconds": round(seconds, 3)}}
    for path in outputs:
        write_image(path, dreamed)
        write_sidecar(path, {**record, "output": str(path)})
    return outputs
