"""Where a step's time goes: TensorFlow's profiler over one octave (inception_v3 mixed3+mixed5,
512x512, 10 steps, no smoothing) of our engine or of the tutorial loop, summed by op type.

    .venv/bin/python -m bench.profile [--variant ours|tutorial] [--precision float32|auto]

Not part of `make bench`: the profiler itself slows every op (2-3x here), so only the shares
mean something, never the absolute times. Prints one table per TensorFlow compute thread.
"""

from __future__ import annotations

import argparse
import collections
import glob
import shutil
import tempfile
from collections.abc import Sequence

from bench import precision as bp
from render.tf_runtime import tf

# executor and thread-pool events that wrap or split ops (counting them would count twice)
_NOT_OPS = frozenset({"Process", "ParallelFor", "ExecutorDoneCallback", "ExecutorState::Process"})


def summarize(logdir: str, top: int = 15) -> str:
    """Milliseconds and counts per op type in the profile under `logdir`, per thread."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    path = sorted(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))[-1]
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    lines = []
    for plane in space.planes:
        names = plane.event_metadata
        for line in plane.lines:
            ms: collections.Counter[str] = collections.Counter()
            count: collections.Counter[str] = collections.Counter()
            for ev in line.events:
                kind = names[ev.metadata_id].name.split(":")[-1]
                ms[kind] += ev.duration_ps / 1e9
                count[kind] += 1
            ops = {k: v for k, v in ms.items() if k not in _NOT_OPS}
            total = sum(ops.values())
            if not line.name.startswith("tf_Compute") or total < 1:
                continue
            lines += [f"{line.name}: {total:.0f} ms in ops", "| op | ms | share | calls |",
                      "|---|---|---|---|"]
            lines += [f"| {k} | {v:.0f} | {v / total:.0%} | {count[k]} |"
                      for k, v in collections.Counter(ops).most_common(top)]
            lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=("ours", "tutorial"), default="ours")
    parser.add_argument("--precision", default="float32")
    args = parser.parse_args(argv)
    runs, _ = bp.octave_runners([args.precision])
    fn = runs.pop("tutorial float32")
    if args.variant == "ours":
        fn = next(iter(runs.values()))
    fn()
    fn()  # traced and warm
    logdir = tempfile.mkdtemp(prefix="dreamreel-profile-")
    try:
        tf.profiler.experimental.start(logdir)
        fn()
        tf.profiler.experimental.stop()
        print(summarize(logdir))
    finally:
        shutil.rmtree(logdir, ignore_errors=True)


if __name__ == "__main__":
    main()
