"""`make bench`: every benchmark in one run -> bench/results.json, a markdown table per part,
and a summary of the performance targets (README, "Performance").

    .venv/bin/python -m bench.run [--only efficiency reference precision presets levers
                                      pipeline models memory stability gif cluster finish]

A run with --only updates those parts of an existing results file and keeps the others.

Not a test: the numbers depend on the machine and on what else runs on it. Ratios compare
figures measured in this same run; each figure is a median of several runs (see each module).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import (
    cluster,
    efficiency,
    finish,
    gif_quality,
    levers,
    memory,
    models,
    pipeline,
    precision,
    preset_speed,
    reference,
    stability,
)
from render import device
from render.media.image import atomic_write_bytes

RESULTS = Path(__file__).resolve().parent / "results.json"
STABILITY_VARIANTS = ["default", "cadence 2", "cadence 4", "none (independent)"]
PARTS = ("efficiency", "reference", "precision", "presets", "levers", "pipeline", "models",
         "memory", "stability", "gif", "cluster", "finish")
# issue 28's levers, each against the engine without it in the same run
LEVERS = ("fold", "pools", "clone")
# ours against the tutorial loop (issue 28): the `auto` precision by the CPU's bf16 unit, and
# float32 where auto is float32 (AVX2); float32 on a bf16 CPU must not be slower
TUTORIAL_WANTED = {"amx_bf16": 3.0, "avx512_bf16": 2.5, "float32": 1.3, "float32 on bf16": 1.0}


def _memory() -> dict[str, Any]:
    rows = {f"{m} {w}x{h}": memory.measure(m, w, h)
            for m in ("inception_v3", "efficientnet_lite0")
            for w, h in ((1920, 1080), (3840, 2160))}
    lines = ["| model | size | RSS before dream GB | peak RSS GB |", "|---|---|---|---|"]
    lines += [f"| {k.split()[0]} | {k.split()[1]} | {r['rss_before_dream_gb']} | "
              f"{r['peak_rss_gb']} |" for k, r in rows.items()]
    print("\n".join(lines))
    return rows


def _tutorial_wanted(machine: dict[str, Any], name: str) -> float:
    """Issue 28's ratio to the tutorial loop for the variant `name` on this machine (a GPU has
    none there: never slower)."""
    if machine["device"] != "CPU":
        return TUTORIAL_WANTED["float32 on bf16"]
    flags = machine["cpu_flags"]
    unit = next((f for f in ("amx_bf16", "avx512_bf16") if f in flags), None)
    if "auto" in name and unit and machine["auto_precision"] != "float32":
        return TUTORIAL_WANTED[unit]
    return TUTORIAL_WANTED["float32 on bf16" if unit else "float32"]


def _json_of(main: Callable[[list[str]], Any], args: list[str], path: Path) -> Any:
    """Run a module's main (which prints its own table) and read back the JSON it wrote."""
    main([*args, "--json", str(path)])
    return json.loads(path.read_text())


def measure(parts: tuple[str, ...], work: Path) -> dict[str, Any]:
    """Run the chosen parts; their results by part name."""
    out: dict[str, Any] = {}
    steps: dict[str, Callable[[], Any]] = {
        "efficiency": lambda: efficiency.run(),
        "reference": lambda: reference.run(),
        "precision": lambda: precision.run(),
        "presets": lambda: preset_speed.run(),
        "levers": lambda: levers.run(LEVERS, show=False),
        "pipeline": lambda: pipeline.run(),
        "models": lambda: models.run(),
        "memory": _memory,
        "stability": lambda: _json_of(stability.main, [
            "--frames", "20", "--inputs", "real", "--variants", *STABILITY_VARIANTS],
            work / "stability.json"),
        "gif": lambda: _json_of(gif_quality.main, [], work / "gif_quality.json"),
        "cluster": lambda: _json_of(cluster.main, [], work / "cluster.json"),
        "finish": lambda: _json_of(finish.main, [], work / "finish.json"),
    }
    printers: dict[str, Callable[[Any], str]] = {
        "efficiency": efficiency.markdown, "reference": reference.markdown,
        "precision": precision.markdown, "presets": preset_speed.markdown,
        "levers": levers.markdown,
        "pipeline": pipeline.markdown, "models": models.markdown}
    for part in parts:
        print(f"\n## {part}\n", flush=True)
        start = time.perf_counter()
        out[part] = steps[part]()
        if part in printers:
            print(printers[part](out[part]))
        print(f"({part}: {time.perf_counter() - start:.0f} s)", flush=True)
    return out


def targets(r: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(target, wanted, measured, met) for every target the run measured."""
    rows: list[tuple[str, str, str, bool | None]] = []
    if "efficiency" in r:
        for row in r["efficiency"]["rows"]:
            if row["model"] == "inception_v3" and row["size"] == 512:
                f = row["fraction_of_peak"]
                rows.append(("inception_v3 512 px: share of matmul peak", ">= 75%",
                             f"{f:.0%}", f >= 0.75))
    for row in r.get("reference", []):
        rows.append((f"{row['model']} {row['size'][0]}x{row['size'][1]}: reference / ours",
                     ">= 1.0", f"{row['ratio']:.2f}", row["ratio"] >= 1.0))
    if "precision" in r:  # issue 28: by the CPU's bf16 unit; the share of the precision's peak
        p = r["precision"]
        for name, speed in p["tutorial"]["speedup_vs_tutorial"].items():
            if name.startswith("ours"):
                wanted = _tutorial_wanted(p["machine"], name)
                rows.append((f"inception_v3 512 mixed3+5, {name} vs tutorial float32",
                             f">= {wanted:.1f}x", f"{speed:.2f}x", speed >= wanted))
        for row in p["rows"]:
            rows.append((f"{row['model']} {row['size']} px, {row['requested']} -> "
                         f"{row['precision']}: share of the {row['peak_precision']} matmul peak",
                         ">= 75%",
                         f"{row['share_of_peak']:.0%}", row["share_of_peak"] >= 0.75))
    for key, row in r.get("presets", {}).get("rows", {}).items():
        rows.append((f"{key} 640x360: frame 0 / a later frame (s/frame)", "<= 3.0x",
                     f"{row['frame0_vs_later']:.1f}x ({row['seconds_per_frame']:.2f} s); "
                     f"{row['frame0_dream_vs_later']:.1f}x less the engine's one-time "
                     f"{row['engine_setup_seconds']:.1f} s", row["frame0_vs_later"] <= 3.0))
    if "pipeline" in r:
        for name, row in r["pipeline"]["overhead"].items():
            rows.append((f"{name} 640x360: time outside the dream step", "<= 10%",
                         f"{row['overhead']:.1%}", row["overhead"] <= 0.10))
        k2 = r["pipeline"]["cadence"].get("2")
        if k2:
            rows.append(("video cadence 2 vs 1: after frame 0 (whole render)", ">= 1.8x",
                         f"{k2['speedup_after_first_frame']:.2f}x ({k2['speedup']:.2f}x)",
                         k2["speedup_after_first_frame"] >= 1.8))
    if "models" in r:
        for name, row in r["models"]["rows"].items():
            minutes = row["preset_72_frames_estimate_seconds"] / 60
            rows.append((f"zoom preset (72 frames, 640x360), {name}: s/frame; whole preset",
                         "<= 3 min" if name == "inception_v3" else "-",
                         f"{row['seconds_per_frame']:.2f}; {minutes:.1f} min",
                         minutes <= 3.0 if name == "inception_v3" else None))
    for key, row in r.get("memory", {}).items():
        limit = 3.0 if "1920x1080" in key else 6.0
        rows.append((f"{key}: peak RSS", f"<= {limit:g} GB", f"{row['peak_rss_gb']:.2f} GB",
                     row["peak_rss_gb"] <= limit))
    for clip in r.get("stability", []):
        none = clip["rows"].get("none (independent)")
        for variant in STABILITY_VARIANTS[:3]:
            if none and variant in clip["rows"]:
                v = clip["rows"][variant]
                rows.append((f"{Path(clip['input']).name} {variant}: flicker ratio; strength",
                             "<= 0.5; >= 70%", f"{v['E'] / none['E']:.2f}; "
                             f"{v['strength'] / none['strength']:.0%}", None))
    if "cluster" in r:  # issue 18
        seams = r["cluster"]["seams"]
        rows.append(("cluster: largest chunk-boundary step / median step", "<= 2.0",
                     f"{seams['ratio']:.2f}", seams["ratio"] <= 2.0))
        rows.append(("cluster: 2 vs 1 workers (warm, this machine)", "-",
                     f"{r['cluster']['speedup_2_vs_1']:.2f}x", None))
    if "finish" in r:  # issue 26
        rows += finish.targets(r["finish"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    work = Path("out/bench")
    work.mkdir(parents=True, exist_ok=True)
    info = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": platform.processor() or platform.machine(), **device.describe(),
            **precision.machine()}
    print(f"device: {info['device']} ({info['cpu_count']} CPUs), "
          f"TensorFlow {info['tensorflow']}; CPU {info['cpu_model']} "
          f"({', '.join(info['cpu_flags'])}), oneDNN {'on' if info['onednn'] else 'off'}, "
          f"auto precision {info['auto_precision']}", flush=True)
    start = time.perf_counter()
    results = {}
    if set(args.only) != set(PARTS) and args.output.is_file():  # a partial run updates
        results = json.loads(args.output.read_text())
    results.update({"info": info, **measure(tuple(args.only), work)})
    results["measured_at"] = {**results.get("measured_at", {}),
                              **{part: info["date"] for part in args.only}}
    info["seconds"] = round(time.perf_counter() - start)
    summary = targets(results)
    results["targets"] = [dict(zip(("target", "wanted", "measured", "met"), t, strict=True))
                          for t in summary]
    atomic_write_bytes(args.output, (json.dumps(results, indent=2, default=str) + "\n").encode())
    print("\n## targets\n\n| target | wanted | measured | met |\n|---|---|---|---|")
    for name, wanted, got, met in summary:
        print(f"| {name} | {wanted} | {got} | {'-' if met is None else 'yes' if met else 'NO'} |")
    print(f"\nwrote {args.output} in {info['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
