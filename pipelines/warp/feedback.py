"""What a zoom does to the moved previous frame before dreaming it again (issue 24): a dream
only amplifies what is there, so a feedback loop converges on the one texture that excites its
layers most; fresh noise gives it new detail to grow.

Images are uint8 RGB (H, W, 3); the noise is seeded per frame, so a resumed render equals an
uninterrupted one.
"""

from __future__ import annotations

import numpy as np


def add_noise(image: np.ndarray, level: float, seed: int, t: int) -> np.ndarray:
    """Gaussian noise of std `level` grey levels (the same in every channel, so it adds
    detail, not colour), drawn from (seed, t)."""
    if level <= 0:
        return image
    rng = np.random.default_rng((seed, t))
    noise = rng.normal(0.0, level, image.shape[:2]).astype(np.float32)[..., None]
    return np.clip(image.astype(np.float32) + noise + 0.5, 0, 255).astype(np.uint8)
