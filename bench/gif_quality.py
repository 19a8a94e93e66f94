"""GIF quality and size: dreamreel's two-pass palette GIFs against ffmpeg's plain one-step
conversion (`ffmpeg -i frame_%06d.png -loop 0 out.gif`) on the same frames.

    .venv/bin/python bench/gif_quality.py [--frames-dir DIR] [--fps 20]

Without --frames-dir it first renders 40 frames of the zoom preset at 480x270. PSNR is over
all decoded GIF frames against the RGB frames (one MSE for the clip). Not a test: it prints a
table (and writes it as JSON to out/bench/gif_quality.json).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from pipelines import zoom
from pipelines.config import presets
from pipelines.run_options import RunOptions
from render.encode import FrameEncoder
from render.media import read_image

OURS = {
    "ours: clip palette, bayer:3 (default)": {"gif_palette": "clip", "gif_dither": "bayer:3"},
    "ours: clip palette, sierra2_4a": {"gif_palette": "clip", "gif_dither": "sierra2_4a"},
    "ours: clip palette, floyd_steinberg": {"gif_palette": "clip",
                                            "gif_dither": "floyd_steinberg"},
    "ours: clip palette, no dither": {"gif_palette": "clip", "gif_dither": "none"},
    "ours: frame palettes, bayer:3": {"gif_palette": "frame", "gif_dither": "bayer:3"},
}


def render_frames(work: Path, count: int) -> Path:
    frames_dir = work / "frames"
    preset = presets.load("zoom", [f"frames={count}", "size=[480,270]", "fps=20",
                                   f"output={work / 'zoom.mp4'}", f"frames_dir={frames_dir}"])
    zoom.run(preset, RunOptions(force=True, quiet=True, notify=lambda m: None))
    return frames_dir


def decode_gif(path: Path) -> np.ndarray:
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in gen])


def psnr(decoded: np.ndarray, frames: np.ndarray) -> float:
    mse = float(np.mean((decoded.astype(np.float64) - frames) ** 2))
    return 10 * math.log10(255**2 / max(mse, 1e-12))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames-dir", type=Path)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--fps", type=float, default=20)
    parser.add_argument("--json", type=Path, default=Path("out/bench/gif_quality.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        frames_dir = args.frames_dir or render_frames(work, args.frames)
        files = sorted(frames_dir.glob("frame_*.png"))
        frames = np.stack([read_image(p) for p in files])
        h, w = frames.shape[1:3]
        rows = {}
        plain = work / "plain.gif"
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y",
                        "-framerate", f"{args.fps:g}", "-i", str(frames_dir / "frame_%06d.png"),
                        "-loop", "0", str(plain)], check=True)
        rows["ffmpeg one-step"] = (plain.stat().st_size, psnr(decode_gif(plain), frames))
        for name, options in OURS.items():
            out = work / "ours.gif"
            with FrameEncoder(out, (w, h), args.fps, notify=lambda m: None, **options) as enc:
                for frame in frames:
                    enc.write(frame)
            rows[name] = (out.stat().st_size, psnr(decode_gif(out), frames))
    base_size, base_psnr = rows["ffmpeg one-step"]
    print(f"\n{len(frames)} frames, {w}x{h}, {args.fps:g} fps")
    print("| encoder | size (MB) | size vs one-step | PSNR (dB) | PSNR gain (dB) |")
    print("|---|---|---|---|---|")
    for name, (size, value) in rows.items():
        print(f"| {name} | {size / 1e6:.2f} | {size / base_size:.0%} | {value:.2f} | "
              f"{value - base_psnr:+.2f} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"frames": len(frames), "size": [w, h], "fps": args.fps,
                                     "rows": {k: {"bytes": s, "psnr": p}
                                              for k, (s, p) in rows.items()}}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
