"""Where a render writes: output paths (checked before any work), and the JSON sidecar that
records what was rendered and how."""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from render.errors import UserError
from render.media import atomic_write_bytes


def resolve_outputs(config: Mapping[str, Any], preset_name: str, default_ext: str,
                    check: Callable[[Path], Any]) -> list[Path]:
    """The output paths of a render: config `output` or out/<preset><ext>, each checked by
    `check` (extension) and refused when it would overwrite the input."""
    raw = config.get("output") or [f"out/{preset_name}{default_ext}"]
    paths = [Path(p).expanduser() for p in raw]
    source = config.get("input")
    for p in paths:
        check(p)
        if p.is_dir():
            raise UserError(f"output {p}: is a directory, expected a file name")
        if source and p.resolve() == Path(source).expanduser().resolve():
            raise UserError(f"output {p}: is the input file; choose another output name")
    if len(set(map(str, paths))) != len(paths):
        raise UserError("output: the same path is listed twice")
    return paths


def versions() -> dict[str, str]:
    """Versions that decide what a render looks like."""
    out = {"python": platform.python_version()}
    for dist in ("dreamreel", "tensorflow", "keras", "numpy", "opencv-python-headless",
                 "imageio-ffmpeg"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def sidecar_path(output: Path) -> Path:
    """`out/zoom.mp4` -> `out/zoom.mp4.json`."""
    return output.with_name(output.name + ".json")


def write_sidecar(output: Path, record: Mapping[str, Any]) -> Path:
    """Write the JSON record beside `output`, atomically."""
    path = sidecar_path(output)
    body = {**record, "versions": versions(), "argv": sys.argv}
    atomic_write_bytes(path, (json.dumps(body, indent=2, default=str) + "\n").encode())
    return path
