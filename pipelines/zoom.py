"""The `zoom` pipeline: an infinite dream zoom. Each frame is the previous dreamed frame,
zoomed/rotated/translated by keyframed motion, then dreamed again."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pipelines import dreaming
from pipelines.config.expressions import plain_variables
from pipelines.config.presets import Preset
from pipelines.run_options import RunOptions
from pipelines.sequence import loop
from pipelines.sequence.frame_plan import make_plan
from pipelines.sequence.lock import output_lock
from pipelines.sequence.render import SequenceJob, open_store, render_sequence, sequence_outputs
from pipelines.sequence.scheduler import FrameScheduler
from pipelines.sources import still_input
from pipelines.warp.affine import AffineMotion
from render.encode import output_kind


def run(preset: Preset, opts: RunOptions) -> list[Path]:
    """Render the zoom sequence to MP4/GIF (see pipelines.sequence.render)."""
    settings = preset.settings
    seq, motion = settings.sequence, settings.motion
    assert seq is not None and motion is not None and seq.frames is not None
    outputs = sequence_outputs(preset)
    rendered = loop.rendered_count(seq.frames, seq.loop.mode, seq.loop.frames, extend=True)
    # expressions computed and checked at every frame before any work
    settings = settings.resolved(rendered, plain_variables(rendered, seq.fps))
    first = still_input(settings, opts.notify, even=any(
        output_kind(path) == "mp4" for path in outputs))
    built = dreaming.build(settings.model, settings.dream, opts.notify)
    plan = make_plan(settings.dream, settings.model, built.objective)
    with output_lock(outputs):
        # frames are valid for this starting image too: another photo under the same name
        # (or one of another shape) must not resume from the old one's frames
        store = open_store(outputs, preset, opts,
                           f"-{hashlib.sha256(first.tobytes()).hexdigest()[:16]}")
        scheduler = FrameScheduler(built.engine, AffineMotion(first, settings.motion.at), plan,
                                   store, settings.seed)
        job = SequenceJob(scheduler, store, seq.frames, seq.fps, first.shape[1::-1],
                          {"model": built.record()})
        return render_sequence(preset, opts, outputs, job)
