"""Input images for a render: the user's file, or an image the project makes itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from render.media import default_image, read_image, resize

DEFAULT_SIZE = (640, 360)


def still_input(config: Mapping[str, Any]) -> np.ndarray:
    """uint8 RGB (H, W, 3): `input` (or the generated image) resized to `size`."""
    size = tuple(config["size"]) if config.get("size") else None
    if config.get("input"):
        image = read_image(config["input"])
        return resize(image, size) if size else image
    return default_image(size or DEFAULT_SIZE, seed=config.get("seed", 0))
