"""Still-image I/O: read any image as uint8 RGB, write PNG/JPEG atomically, and make the
project's own default input image.

Arrays at this boundary are uint8, shape (H, W, 3), RGB order.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from render import memory
from render.errors import UserError
from render.media.image_header import image_format, image_header_size

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
    if arr.dtype == np.uint8 and arr.shape[2] in (1, 3):  # no float copy of a large image
        return np.array(np.broadcast_to(arr, (*arr.shape[:2], 3)))
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
    """Read an image file as uint8 RGB (H, W, 3); any failure is a one-line UserError.

    The size in the file's header is checked against free memory before decoding, and what
    the codecs print about a damaged file goes into the message, not onto the terminal."""
    p = Path(path)
    check_readable_file(p, "an image")
    try:
        data = np.fromfile(p, dtype=np.uint8)  # unlike cv2.imread, copes with any path
    except (OSError, ValueError) as exc:
        raise UserError(f"{p}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    size = image_header_size(data[:65536].tobytes())
    if size is not None:
        memory.check_memory(size, f"{p}: image", memory.READ_BYTES_PER_PIXEL, "to read",
                            data.nbytes, "use a smaller image")
    with _captured_stderr() as noise:
        try:
            image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        except cv2.error:  # e.g. more pixels than OpenCV's limit (CV_IO_MAX_IMAGE_PIXELS)
            image = None
    reason = _codec_reason(noise[0] if noise else "")
    if image is None or image.size == 0:
        why = f" ({reason})" if reason else ""
        kind = image_format(data[:16].tobytes())
        if kind:  # the file says what it is, so the data after its header is what is wrong
            raise UserError(f"{p}: not a readable image: the {kind} file is damaged or cut short "
                            f"({reason + ', ' if reason else ''}{data.nbytes} bytes)")
        raise UserError(f"{p}: not a readable image: the content is not in an image format "
                        f"dreamreel reads{why} (allowed: {', '.join(IMAGE_EXTENSIONS)})")
    if reason and _DAMAGED.search(reason):  # decoded, but with part of the picture missing
        raise UserError(f"{p}: image is damaged ({reason})")
    if size is None:
        memory.check_memory(image.shape[1::-1], f"{p}: image", memory.READ_BYTES_PER_PIXEL,
                            "to read", advice="use a smaller image")
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return to_rgb8(image)


def check_readable_file(p: Path, what: str, name: str = "file") -> None:
    """A one-line UserError unless `p` is a non-empty regular file we may read (`what`: "an
    image"; `name`: what a missing file is called, e.g. "input video")."""
    try:
        if not p.exists():
            if p.is_symlink():  # exists() follows links: a loop or a missing target
                raise UserError(f"{p}: is a symbolic link to nothing (a link loop, or its "
                                "target is gone)")
            url = _URL.match(str(p))
            if url:  # Path() turned "https://host/x" into "https:/host/x": show it as typed
                text = f"{url.group(1)}://{str(p)[url.end():]}"
                raise UserError(f"{text}: URLs are not supported; download the file first and "
                                f"give its path")
            raise UserError(f"{p}: {name} not found")
        if p.is_dir():
            raise UserError(f"{p}: is a directory, expected {what} file")
        if not p.is_file():  # a FIFO or device would block or never end
            raise UserError(f"{p}: is not a regular file, expected {what} file")
        if not os.access(p, os.R_OK):
            raise UserError(f"{p}: {name} is not readable (permission denied)")
        if p.stat().st_size == 0:
            raise UserError(f"{p}: file is empty, expected {what} file")
    except OSError as exc:  # e.g. a path component that is not a directory, or too long
        raise UserError(f"{p}: cannot read ({exc.strerror or exc})") from None


def check_image_file(p: Path, what: str = "an image", name: str = "image") -> None:
    """`check_readable_file`, then the file's signature (its first bytes) must be an image
    format: cheap enough for configuration, which must not decode (read_image does that,
    once, when the image is used)."""
    check_readable_file(p, what, name)
    try:
        with open(p, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise UserError(f"{p}: cannot read ({exc.strerror or exc})") from None
    if image_format(head) is None:
        raise UserError(f"{p}: not a readable image: the content is not in an image format "
                        f"dreamreel reads (allowed: {', '.join(IMAGE_EXTENSIONS)})")


_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/+")
_STDERR_LOCK = threading.Lock()
_DAMAGED = re.compile(r"libpng error|premature end|corrupt|truncated|incomplete", re.I)


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Collect what C libraries (libpng, libjpeg, OpenCV) print on file descriptor 2 while the
    block runs; the text is in the yielded list afterwards. Without a usable stderr or temp
    directory the block just runs."""
    found: list[str] = []
    with _STDERR_LOCK, contextlib.ExitStack() as stack:
        try:
            sink = stack.enter_context(tempfile.TemporaryFile())
            saved = os.dup(2)
        except OSError:
            yield found
            return
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(sink.fileno(), 2)
        try:
            yield found
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            found.append(sink.read(4096).decode("utf-8", "replace"))


def _codec_reason(text: str) -> str:
    """The first line a codec printed, without OpenCV's log prefix ('[ WARN:0@0.1] global
    grfmt_png.cpp:793 readFromStreamOrBuffer ')."""
    for line in text.splitlines():
        line = re.sub(r"^\[\s*\w+:[^\]]*\]\s*(global\s+\S+\s+\S+\s+)?", "", line).strip()
        if line:
            return line[:120]
    return ""


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
    """Write bytes so that `path` holds either the old content or all of the new, never a part
    (the one atomic writer: a temp file in the same directory, then ``os.replace``). The temp
    file is removed on any failure, Ctrl-C included; an OSError becomes a UserError."""
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
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise UserError(f"output {path}: cannot write ({exc.strerror})") from exc
        raise


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
