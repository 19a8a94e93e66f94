"""Where a render writes: output paths (checked before any work), and the JSON sidecar that
records what was rendered and how."""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from pipelines.config.settings import SequenceSettings, Settings
from render.errors import ConfigError, keyed
from render.media.image import atomic_write_bytes
from render.media.image_header import image_file_size


def resolve_outputs(settings: Settings, preset_name: str, default_ext: str,
                    check: Callable[[Path], Any]) -> list[Path]:
    """The output paths of a render: `output` or out/<preset><ext>, each checked by
    `check` (extension), refused when it would overwrite the input, and its directory checked
    for writing — all before any work, so a bad output costs nothing and leaves nothing."""
    raw = settings.output or [Path(f"out/{preset_name}{default_ext}")]
    paths = [_plain(p) for p in raw]
    source = settings.input
    size = _frame_size(settings)
    for p in paths:
        with keyed("output", "output "):  # the encoder's refusal, named as its key
            check(p)
        if p.is_dir():
            raise ConfigError("output", f"output {p}: is a directory, expected a file name")
        if source and _same_file(p, source):
            raise ConfigError("output", f"output {p}: is the input file; choose another "
                              "output name")
        if p.suffix.lower() == ".mp4" and size and min(size) < 2:  # known before reading
            raise ConfigError("output", f"output {p}: an MP4 needs frames of at least 2x2 "
                              f"pixels, got {size[0]}x{size[1]}")
        check_writable(p, f"output {p}")
    if len(set(map(str, paths))) != len(paths):
        raise ConfigError("output", "output: the same path is listed twice")
    frames_dir = (settings.sequence.frames_dir if isinstance(settings, SequenceSettings)
                  else None)
    if frames_dir:
        where = frames_dir
        if where.exists() and not where.is_dir():
            raise ConfigError("frames_dir", f"frames_dir {where}: is a file, expected a directory")
        check_writable(where / "frame_000000.png", f"frames_dir {where}")
    return paths


def _plain(p: Path) -> Path:
    """A relative path whose first part has a colon ('pipe:x/a.mp4') made absolute, so that
    ffmpeg cannot take it for a protocol."""
    if not p.is_absolute() and p.parts and ":" in p.parts[0]:
        return Path.cwd() / p
    return p


def _same_file(a: Path, b: Path) -> bool:
    """Whether `a` and `b` name the same file (also through symlinks or hard links)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except (OSError, ValueError, RuntimeError):
        return False


def _frame_size(settings: Settings) -> tuple[int, int] | None:
    """The frame size of a render when it is known before reading the input: `size`, or an
    input image's header."""
    if settings.size:
        return settings.size
    return image_file_size(settings.input) if settings.input else None


def check_writable(path: Path, what: str) -> None:
    """Refuse `path` when its directory cannot be created or written to (a read-only place,
    a file where a directory should be); nothing is left behind by the check. `what` starts
    with the key the path came from (output, frames_dir), which the error names."""
    existing = path.parent
    try:
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise ConfigError(what.split()[0], f"{what}: {existing} is not a directory")
        with tempfile.TemporaryFile(dir=existing):  # no name on Linux (O_TMPFILE)
            pass
    except OSError as exc:
        raise ConfigError(what.split()[0], f"{what}: cannot write in {existing} "
                          f"({exc.strerror or exc})") from None


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
