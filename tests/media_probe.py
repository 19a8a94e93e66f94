"""Readers the tests use to check encoded files: GIF block structure and MP4 frames."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import imageio_ffmpeg
import numpy as np


@dataclass
class GifInfo:
    """What the tests need from a GIF: loop count, per-frame delays, colour-table sizes."""

    width: int
    height: int
    loop: int | None = None  # NETSCAPE2.0 loop count (0 = forever); None = block absent
    delays: list[int] = field(default_factory=list)  # centiseconds, one per GCE
    frames: int = 0
    table_sizes: list[int] = field(default_factory=list)  # global first, then local ones


def _skip_sub_blocks(data: bytes, pos: int) -> tuple[bytes, int]:
    """Return the concatenated data sub-blocks starting at pos and the position after them."""
    chunks = []
    while (n := data[pos]) != 0:
        chunks.append(data[pos + 1 : pos + 1 + n])
        pos += 1 + n
    return b"".join(chunks), pos + 1


def read_gif_info(data: bytes) -> GifInfo:
    """Parse a GIF89a file's block structure (GIF89a spec, sections 17-26) without decoding."""
    assert data[:6] in (b"GIF87a", b"GIF89a"), data[:6]
    width, height = int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    info = GifInfo(width, height)
    flags, pos = data[10], 13
    if flags & 0x80:
        size = 2 << (flags & 7)
        info.table_sizes.append(size)
        pos += 3 * size
    while True:
        block = data[pos]
        if block == 0x3B:  # trailer
            return info
        if block == 0x21:  # extension: label, then sub-blocks
            label = data[pos + 1]
            if label == 0xF9:  # graphic control extension: size 4, flags, delay(2), transp
                assert data[pos + 2] == 4
                info.delays.append(int.from_bytes(data[pos + 4 : pos + 6], "little"))
                _, pos = _skip_sub_blocks(data, pos + 2)
            elif label == 0xFF:  # application extension
                app_len = data[pos + 2]
                app = data[pos + 3 : pos + 3 + app_len]
                payload, pos = _skip_sub_blocks(data, pos + 3 + app_len)
                if app == b"NETSCAPE2.0" and payload[:1] == b"\x01":
                    info.loop = int.from_bytes(payload[1:3], "little")
            else:
                _, pos = _skip_sub_blocks(data, pos + 2)
        elif block == 0x2C:  # image descriptor (10 bytes), optional local table, LZW data
            flags = data[pos + 9]
            pos += 10
            if flags & 0x80:
                size = 2 << (flags & 7)
                info.table_sizes.append(size)
                pos += 3 * size
            _, pos = _skip_sub_blocks(data, pos + 1)  # skip LZW minimum code size byte
            info.frames += 1
        else:
            raise AssertionError(f"unexpected GIF block 0x{block:02x} at {pos}")



def read_mp4(path: Path) -> tuple[dict, np.ndarray]:
    """(meta, frames uint8 (N, H, W, 3)) decoded with the bundled ffmpeg."""
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    frames = np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in gen])
    return meta, frames


def ffmpeg(*args: str) -> None:
    """Run the bundled ffmpeg (quiet; raises on failure)."""
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
                    "-y", *args], check=True)


def make_clip(path: Path, seconds: float = 1.0, fps: int = 25, size: str = "64x48",
              audio: str | None = None, frames: int | None = None) -> Path:
    """A test clip from ffmpeg's moving `testsrc2` pattern. `audio`: an aevalsrc expression
    (16 kHz mono), encoded as the container's default codec (AAC in .mp4, PCM in .mkv/.mov)."""
    args = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"aevalsrc='{audio}':s=16000:d={seconds}"]
    if path.suffix in (".mkv", ".mov") and audio:
        args += ["-c:a", "pcm_s16le"]
    if frames is not None:
        args += ["-frames:v", str(frames)]
    pix = [] if path.suffix == ".gif" else ["-pix_fmt", "yuv420p"]
    ffmpeg(*args, *pix, str(path))
    return path


def read_audio(path: Path, rate: int = 16000) -> np.ndarray:
    """The first audio stream as float mono samples in -1..1 at `rate` Hz."""
    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(path),
                          "-map", "0:a:0", "-ac", "1", "-ar", str(rate), "-f", "s16le", "-"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(out, np.int16).astype(np.float32) / 32768.0


def audio_streams(path: Path) -> list[str]:
    """Codec names of the audio streams of a media file."""
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    gen.close()
    return [meta["audio_codec"]] if meta.get("audio_codec") else []
