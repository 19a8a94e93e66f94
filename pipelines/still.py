"""The `still` pipeline: one image in, one dreamed image out."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipelines.config.presets import Preset
from pipelines.outputs import resolve_outputs, write_sidecar
from pipelines.run_options import RunOptions
from pipelines.sequence import finishing
from pipelines.source.fit import fit_masks
from pipelines.source.inputs import masks as read_masks
from pipelines.source.inputs import still_input
from render.media.image import check_image_output, write_image

if TYPE_CHECKING:  # render.engine loads TensorFlow: only once the input is accepted
    from render.engine import OctaveCallback


def run(preset: Preset, opts: RunOptions) -> list[Path]:
    """Dream the input image once and write it (PNG/JPEG) with a JSON sidecar."""
    settings = preset.settings
    outputs = resolve_outputs(settings, preset.name, ".png", check_image_output)
    masks = read_masks(settings.dream)
    image = still_input(settings, opts.notify)
    masks = fit_masks(masks, image.shape[1::-1], settings.fit, opts.notify)
    finishing.check(settings.finish, image.shape[1::-1], None, "fps")
    from pipelines import dreaming  # TensorFlow: only once the input and size are accepted

    built = dreaming.build(settings.model, settings.dream, opts.notify)
    start = time.perf_counter()
    dreamed = built.engine.dream(image, dreaming.image_settings(settings.dream),
                                 seed=settings.seed, mask=None if masks is None else masks.at(0),
                                 callback=octave_writer(opts.octaves))
    seconds = time.perf_counter() - start
    record = {**preset.record(), "model": built.record(), "size": list(image.shape[1::-1]),
              "mask": masks and masks.record(),
              "timings": {"dream_seconds": round(seconds, 3)}}
    if settings.finish.upscale > 1:
        finisher = finishing.Finisher(settings.finish, opts.notify)
        (dreamed,) = finisher.stream([dreamed], loop=False)
        record["finish"] = {**finisher.record(), "dreamed_size": record["size"]}
        record["size"] = list(dreamed.shape[1::-1])
    for path in outputs:
        write_image(path, dreamed)
        write_sidecar(path, {**record, "output": str(path)})
    return outputs


def octave_writer(folder: Path | None) -> OctaveCallback | None:
    """An engine callback writing each octave's image to `folder` (octave_N.png, atomically),
    or None without a folder."""
    if folder is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)

    def write(octave: int, image: np.ndarray) -> None:
        write_image(folder / f"octave_{octave}.png", image)

    return write
