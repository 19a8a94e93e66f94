"""The converted-weights cache shared by the models whose ImageNet weights ship inside packages.

Converting a bundled PyTorch file to Keras layout is done once; the result is kept as an
``.npz`` (plain arrays, never pickles) under ``$DREAMREEL_CACHE`` or ``~/.cache/dreamreel/``.
Each model names its file with a version (``<model>.keras-v<N>.npz``) and bumps it whenever its
conversion changes, so a stale cache is never reused.
"""

from __future__ import annotations

import contextlib
import io
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from render.errors import UserError
from render.media.image import atomic_write_bytes

CACHE_ENV = "DREAMREEL_CACHE"


def cache_dir() -> Path:
    """Where converted weights are cached: ``$DREAMREEL_CACHE`` or ``~/.cache/dreamreel``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "dreamreel"


def read_cache(path: Path) -> dict[str, np.ndarray] | None:
    """The cached arrays (never unpickled), or None if the cache is absent or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None  # unreadable cache: fall back to converting again (and overwrite it)


def write_cache(path: Path, converted: Mapping[str, np.ndarray]) -> None:
    """Write the ``.npz`` atomically (render.media.image.atomic_write_bytes)."""
    buf = io.BytesIO()
    # numpy's stub: mypy matches **converted against the keyword allow_pickle: bool as well
    np.savez(buf, **converted)  # type: ignore[arg-type]
    with contextlib.suppress(UserError):  # a read-only cache only costs a re-conversion
        atomic_write_bytes(path, buf.getvalue())
