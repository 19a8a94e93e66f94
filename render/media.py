"""Still-image I/O: read any image as uint8 RGB, write PNG/JPEG atomically, and make the
project's own default input image.

Arrays at this boundary are uint8, shape (H, W, 3), RGB order.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from render.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """Convert grayscale, RGBA, 16-bit or float images to uint8 RGB (H, W, 3).

    Alpha is composited over white (transparent logos stay readable); float input is taken
    to be in [0, 1].
    """
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise UserError(f"image has shape {arr.shape}; expected HxW, HxWx3 or HxWx4")
    if arr.dtype == np.uint8:
        rgb = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        rgb = arr.astype(np.float32) / 65535.0
    elif np.issubdtype(arr.dtype, np.floating):
        rgb = np.clip(np.nan_to_num(arr.astype(np.float32)), 0.0, 1.0)
    elif np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        rgb = np.clip(arr.astype(np.float32), 0, 255) / 255.0
    else:
        raise UserError(f"image has unsupported dtype {arr.dtype}")
    channels = rgb.shape[2]
    if channels in (2, 4):  # gray+alpha or RGBA: composite over white
        alpha = rgb[:, :, -1:]
        rgb = rgb[:, :, :-1] * alpha + (1.0 - alpha)
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as uint8 RGB (H, W, 3); any failure is a one-line UserError."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: file not found")
    if p.is_dir():
        raise UserError(f"{p}: is a directory, expected an image file")
    if not os.access(p, os.R_OK):
        raise UserError(f"{p}: permission denied")
    if p.stat().st_size == 0:
        raise UserError(f"{p}: file is empty")
    data = np.fromfile(p, dtype=np.uint8)  # unlike cv2.imread, copes with any path
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise UserError(f"{p}: not a readable image (allowed: {', '.join(IMAGE_EXTENSIONS)})")
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return to_rgb8(image)


def check_image_output(path: str | os.PathLike) -> Path:
    """Validate an image output path's extension before any work is done."""
    p = Path(path)
    if p.suffix.lower() not in IMAGE_EXTENSIONS:
        raise UserError(
            f"output {p}: unknown image extension {p.suffix or '(none)'!r}; "
            f"allowed: {', '.join(IMAGE_EXTENSIONS)}"
        )
    return p


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write uint8 RGB to PNG/JPEG/...; the file appears atomically (temp file, then rename)."""
    p = check_image_output(path)
    ok, buf = cv2.imencode(p.suffix.lower(), cv2.cvtColor(to_rgb8(image), cv2.COLOR_RGB2BGR))
    if not ok:
        raise UserError(f"output {p}: could not encode image")
    atomic_write_bytes(p, buf.tobytes())
    return p


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write bytes so that `path` holds either the old content or all of the new, never a part."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise UserError(f"output {path}: cannot write ({exc.strerror})") from exc
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 would hide renders from other users
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"output {path}: cannot write ({exc.strerror})") from exc


def resize(image: np.ndarray, size: tuple[int, int], grow: int = cv2.INTER_CUBIC) -> np.ndarray:
    """Resize uint8 or float (H, W, C) to (width, height): area filter when shrinking, `grow`
    (an OpenCV interpolation flag) when enlarging."""
    w, h = size
    if (image.shape[1], image.shape[0]) == (w, h):
        return image
    shrink = w * h < image.shape[0] * image.shape[1]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else grow)


def default_image(size: tuple[int, int] = (640, 360), seed: int = 0) -> np.ndarray:
    """A soft, colourful cloudscape the project makes itself, so presets run with no input.

    Smooth multi-scale noise gives the network varied edges and colours to grow dreams from.
    """
    w, h = size
    rng = np.random.default_rng(seed)
    canvas = np.zeros((h, w, 3), np.float32)
    for cells, amp in ((3, 1.0), (7, 0.5), (17, 0.25), (41, 0.12)):
        grid = rng.random((cells, max(2, round(cells * w / h)), 3)).astype(np.float32)
        canvas += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    canvas -= canvas.min()
    canvas /= max(float(canvas.max()), 1e-6)
    sky = np.linspace(0.15, 0.0, h, dtype=np.float32)[:, None, None]
    img = np.clip(0.15 + 0.8 * canvas - sky, 0.0, 1.0)
    return np.rint(img * 255).astype(np.uint8)
