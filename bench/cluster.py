"""Rendering on Ray (issue 18): the seams between chunks, wall time for 1 vs 2 workers on this
machine, the per-chunk overheads, and the speed-up they project for 8 and 32 machines.

    .venv/bin/python -m bench.cluster [--frames 36] [--size 160 90] [--json out/bench/cluster.json]

Seams: per-step warping error e(t) = mean over reliable pixels of |C(t) - warp(C(t-1))| (the
stability bench's E, per step, on DIS flow of the source); a boundary step is any step into a
frame a chunk cross-fades or starts at; target: the largest boundary step <= 2x the median step
of the same render. Shown with the default overlap, without overlap (hard seams), and for the
single-process render. Wall times are interleaved (1, 2, 1, 2 workers, warm: models loaded)
and the minimum is kept; the machine is shared, so figures are noisy. Not a test.

Ray gets 3 logical CPUs here: the idle 1-worker pool keeps its CPU while the 2-worker pool
runs, so the runs can be interleaved warm; only one pool works at a time.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.stability import real_clip, source_frames
from pipelines.cli import main as cli
from pipelines.cluster.chunks import plan_chunks
from pipelines.warp.flow import optical_flow, reliable_mask, warp_by_flow
from render.media.image import read_image

MODEL = ["model.name=efficientnet_lite0"]  # ImageNet weights, offline; the fastest model


def step_errors(clip: list[np.ndarray], source: list[np.ndarray]) -> list[float]:
    """e(t) for t = 1..n-1 (see the module's docstring)."""
    out = []
    for t in range(1, len(clip)):
        backward = optical_flow(source[t], source[t - 1])
        mask = reliable_mask(backward, optical_flow(source[t - 1], source[t]))
        warped = warp_by_flow(clip[t - 1], backward).astype(np.float32)
        diff = np.abs(clip[t].astype(np.float32) - warped).mean(axis=-1)[mask]
        out.append(float(diff.mean()) if diff.size else float("nan"))  # nan: a cut, no flow
    return out


def render(base: list[str], extra: list[str], work: Path) -> tuple[list[np.ndarray], dict]:
    """Frames and sidecar of one render (from scratch)."""
    out, frames = work / "out.mp4", work / "frames"
    code = cli(["render", "video", *base, *extra, f"output={out}", f"frames_dir={frames}",
                "--quiet", "--force"])
    if code:
        raise SystemExit(f"render failed ({code}): {extra}")
    side = json.loads(out.with_name(out.name + ".json").read_text())
    return [read_image(p) for p in sorted(frames.glob("frame_*.png"))], side


def seams(errors: list[float], frames: int, chunk: int, overlap: int,
          cuts: list[int]) -> dict[str, Any]:
    """Boundary steps against the median step (errors[t - 1] is the step into frame t); steps
    into a scene cut have no reliable flow (nan) and are left out of both."""
    chunks = plan_chunks(frames, chunk, overlap, cuts)
    touched = sorted({t for c in chunks[1:] if not c.at_cut
                      for t in range(c.warm, c.start + 1)})
    median = float(np.nanmedian(errors))
    steps = [errors[t - 1] for t in touched if not np.isnan(errors[t - 1])]
    worst = max(steps) if steps else float("nan")
    return {"median_step": round(median, 3), "max_boundary_step": round(worst, 3),
            "ratio": round(worst / median, 3), "boundary_frames": touched,
            "boundaries": [c.start for c in chunks[1:]], "cuts": cuts}


def transfer_seconds(frames: int, size: tuple[int, int]) -> dict[str, float]:
    """Round trip of one chunk's frames (uint8) to a worker and back through the object store."""
    import ray

    @ray.remote(num_cpus=0)
    class Echo:
        def back(self, a: np.ndarray) -> np.ndarray:
            return a.copy()

    w, h = size
    data = np.random.default_rng(0).integers(0, 256, (frames, h, w, 3), dtype=np.uint8)
    echo = Echo.remote()
    ray.get(echo.back.remote(data[:1]))
    times = []
    for _ in range(5):
        start = time.perf_counter()
        ray.get(echo.back.remote(ray.put(data)))
        times.append(time.perf_counter() - start)
    ray.kill(echo)
    return {"frames": frames, "megabytes": round(data.nbytes / 1e6, 2),
            "round_trip_seconds": round(min(times), 4)}


def project(n: int, frames: int, chunk: int, overlap: int, c: dict[str, float]) -> float:
    """Projected wall seconds on n one-worker machines: model load, frame 0, then the chunks
    in waves of n (each dreams chunk + overlap frames and moves its frames both ways), with the
    driver's per-frame work (checkpoint + encode) as a floor, since it runs alongside."""
    chunks = math.ceil(frames / chunk)
    per_chunk = (chunk + overlap) * c["dream_per_frame"] + c["transfer_per_chunk"]
    dreaming = c["model_load"] + c["first_frame"] + math.ceil(chunks / n) * per_chunk
    return max(dreaming, frames * c["driver_per_frame"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=36)
    parser.add_argument("--size", type=int, nargs=2, default=[160, 90])
    parser.add_argument("--chunk", type=int, default=12)
    parser.add_argument("--overlap", type=int, default=4)
    parser.add_argument("--json", type=Path, default=Path("out/bench/cluster.json"))
    args = parser.parse_args(argv)
    import ray

    path = real_clip()
    base = [*MODEL, f"frames={args.frames}", f"max_size=[{args.size[0]},{args.size[1]}]",
            f"input={path or ''}"]
    source = source_frames(base)
    frames = len(source)
    cluster = ["cluster.address=local", f"cluster.chunk={args.chunk}",
               f"cluster.overlap={args.overlap}"]
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
    result: dict[str, Any] = {"input": str(path) if path else "generated", "frames": frames,
                              "size": list(source[0].shape[1::-1]), "chunk": args.chunk,
                              "overlap": args.overlap}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        alone, side = render(base, [], work / "alone")
        result["single_process"] = {
            "seconds": round(time.perf_counter() - start, 2),
            "dream_seconds": side["timings"]["dream_seconds"],
            "render_seconds": side["timings"]["total_seconds"],
            "median_step": round(float(np.nanmedian(step_errors(alone, source))), 3)}
        walls: dict[int, list[float]] = {1: [], 2: []}
        sides: dict[int, dict] = {}
        for rep in range(3):  # rep 0 is cold: it starts the workers and loads the model
            for workers in (1, 2):
                start = time.perf_counter()
                clip, sides[workers] = render(base, [*cluster, f"cluster.workers={workers}"],
                                              work / f"w{workers}-{rep}")
                wall = time.perf_counter() - start
                if rep == 0:
                    result[f"cold_{workers}_workers_seconds"] = round(wall, 2)
                else:
                    walls[workers].append(wall)
                print(f"  {workers} workers, run {rep}: {wall:.1f} s", file=sys.stderr)
        cuts = sides[2]["cluster"]["cuts"]
        result["seams"] = seams(step_errors(clip, source), frames, args.chunk, args.overlap,
                                cuts)
        hard, _ = render(base, [*cluster, "cluster.workers=2", "cluster.overlap=0"],
                         work / "hard")
        result["seams_without_overlap"] = seams(step_errors(hard, source), frames,
                                                args.chunk, 0, cuts)
        result["warm_seconds"] = {str(k): round(min(v), 2) for k, v in walls.items()}
        result["speedup_2_vs_1"] = round(min(walls[1]) / min(walls[2]), 3)
        c2 = sides[2]["cluster"]
        result["sidecar_2_workers"] = c2
    result["transfer"] = transfer_seconds(args.chunk + args.overlap + 1, tuple(result["size"]))
    ray.shutdown()
    alone_t = result["single_process"]
    per_frame = alone_t["dream_seconds"] / frames
    costs = {"dream_per_frame": per_frame,
             "driver_per_frame": max(0.0, alone_t["render_seconds"] - alone_t["dream_seconds"])
             / frames,
             "model_load": max(c2["load_seconds"]), "first_frame": c2["first_frame_seconds"],
             "transfer_per_chunk": result["transfer"]["round_trip_seconds"]}
    result["costs"] = {k: round(v, 4) for k, v in costs.items()}
    long = 5800  # a four-minute music video at 24 fps
    one = long * (per_frame + costs["driver_per_frame"])
    result["projection"] = {"frames": long, "chunk": 48, "overlap": 8,
                            "one_process_seconds": round(one)}
    for n in (1, 8, 32):
        t = project(n, long, 48, 8, costs)
        result["projection"][f"{n}_machines"] = {"seconds": round(t),
                                                 "speedup": round(one / t, 2)}
    print(json.dumps(result, indent=2))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
