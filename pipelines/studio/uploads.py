"""What a browser uploads, checked before it is used: size, kind (by extension) and that it
decodes (an image is read, a video and a song probed by ffmpeg). A file that passes is copied
under the studio's own folder with a name the server chooses (its content hash), so the page
never names a server path."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from render.errors import UserError

MAX_BYTES = 2 << 30  # 2 GiB: a long 1080p clip
KINDS = {
    "image": (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"),
    "video": (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".gif"),
    "audio": (".mp3", ".wav", ".flac", ".ogg", ".m4a", ".aac", ".opus"),
}


def kind_of(name: str) -> str:
    """image, video or audio, from the file name's extension (UserError otherwise)."""
    suffix = Path(name).suffix.lower()
    for kind, suffixes in KINDS.items():
        if suffix in suffixes:
            return kind
    allowed = ", ".join(s for group in KINDS.values() for s in group)
    raise UserError(f"upload: {Path(name).name}: not an image, video or song ({allowed})")


def check(path: Path, name: str) -> str:
    """Refuse (UserError, one line) an upload that is too big, of another kind or that does
    not decode; returns its kind."""
    kind = kind_of(name)
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise UserError(f"upload: {Path(name).name}: {size / 2**30:.1f} GB is more than "
                        f"{MAX_BYTES / 2**30:g} GB")
    if size == 0:
        raise UserError(f"upload: {Path(name).name}: the file is empty")
    try:
        if kind == "image":
            from render.media.image import read_image

            read_image(path)
        elif kind == "video":
            from render.media.video import probe

            probe(path)
        else:
            from render.media.audio import probe as probe_audio

            probe_audio(path)
    except UserError as exc:
        raise UserError(f"upload: {Path(name).name}: does not decode as {kind} "
                        f"({str(exc).split(': ')[-1]})") from None
    return kind


def store(path: Path, name: str, folder: Path) -> tuple[Path, str]:
    """`path` (an upload named `name` by the browser) checked, then copied into `folder` as
    <sha256 prefix><extension>; returns the stored path and its kind (image, video, audio)."""
    kind = check(path, name)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    folder.mkdir(parents=True, exist_ok=True)
    stored = folder / f"{digest.hexdigest()[:20]}{Path(name).suffix.lower()}"
    if not stored.exists():
        part = stored.with_name(f".{stored.name}.part")
        shutil.copyfile(path, part)
        part.replace(stored)
    return stored, kind
