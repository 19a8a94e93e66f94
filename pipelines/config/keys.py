"""Every key a preset may set, per pipeline: type, range, default and a line of help.

The tables are data, importable without TensorFlow or any pipeline module, so a preset is
validated (and `list` answers) before anything heavy loads.
"""

from __future__ import annotations

from typing import Any

from pipelines.config.keyframes import INTERPOLATIONS
from pipelines.config.schema import Schema
from render.encoding.options import GifOptions, Mp4Options
from render.fields import Field, fields_of
from render.finish.options import FinishOptions
from render.models import MODELS
from render.options import PRECISIONS, SMOOTHING

# schedulable dream settings, with the bounds every keyframe must respect
DREAM_BOUNDS: dict[str, dict[str, float]] = {
    "steps": {"low": 1, "high": 1000}, "step_size": {"above": 0, "high": 1.0},
    "octaves": {"low": 1, "high": 12}, "octave_scale": {"above": 1.0, "high": 4.0}}

# how an input whose aspect ratio differs from `size` is made that size
FITS = ("cover", "contain", "stretch")

COMMON: dict[str, Any] = {
    "pipeline": Field("str", help="which pipeline renders this preset"),
    "description": Field("str", nullable=True, help="one line shown by `list`"),
    "input": Field("path", nullable=True, help="input file; omitted = generated image"),
    "output": Field("paths", nullable=True, help="output file(s); default out/<preset>.<ext>"),
    "size": Field("size", nullable=True, help="[width, height]; omitted = input size"),
    "fit": Field("choice", "cover", choices=FITS,
                 help="an input of another aspect than size: crop (cover), pad or stretch"),
    "seed": Field("int", 0, low=0, high=2**31 - 1, help="random seed (rolls)"),
    "model": {
        "name": Field("choice", "inception_v3", choices=tuple(MODELS), help="network"),
        "layers": Field("any", nullable=True, help="layer objective; omitted = model default"),
        "weights": Field("str", "imagenet", nullable=True,
                         help="imagenet, none (random) or a weights file"),
    },
    "dream": {
        "steps": Field("int", 10, low=1, high=1000, help="ascent steps per octave"),
        "step_size": Field("float", 0.01, above=0, high=1.0, help="step per unit-RMS gradient"),
        "octaves": Field("int", 4, low=1, high=12, help="octave count"),
        "octave_scale": Field("float", 1.4, above=1.0, high=4.0, help="size ratio of octaves"),
        "tile": Field("int", None, low=64, high=8192, nullable=True,
                      help="gradient tile size (px); omitted = 512 on a CPU, 1024 on a GPU"),
        "smoothing": Field("choice", None, choices=(None, *SMOOTHING), nullable=True,
                           help="gradient smoothing; omitted = model default"),
        # directed dreams (render.objectives, render.masks)
        "guide": Field("path", nullable=True,
                       help="guide image: each layer is pushed towards its features"),
        "classes": Field("any", nullable=True,
                         help="ImageNet classes to maximise (names or 0..999), models with "
                              "a classifier"),
        "class_weight": Field("float", 1.0, low=-1000, high=1000,
                              help="weight of the class term against the layer terms"),
        "mask": Field("path", nullable=True,
                      help="mask image or video: white dreams, black stays untouched"),
        # issue 15: the network's number format (render.precision)
        "precision": Field("choice", "auto", choices=PRECISIONS,
                           help="network weights/activations: auto picks bfloat16 where "
                                "measured faster (bf16 CPUs with oneDNN, GPUs), else float32"),
    },
}

LOOP_MODES = ("none", "crossfade", "pingpong")

SEQUENCE: dict[str, Any] = {
    "frames": Field("int", 48, low=1, high=100_000, help="number of frames"),
    "fps": Field("float", 24.0, above=0, high=240, help="frames per second"),
    "interpolation": Field("choice", "linear", choices=INTERPOLATIONS,
                           help="between keyframes: linear or smooth (monotone cubic)"),
    "frames_dir": Field("path", nullable=True, help="also keep every frame as PNG here"),
    "model": {
        "layer_cycle": Field("int", 0, low=0, high=100_000,
                             help="frames per cycle of the layers' weights (phase-shifted "
                                  "raised cosines, so each layer leads in turn); 0 = fixed"),
    },
    "dream": {
        **{k: Field("schedule", d, low=b.get("low"), high=b.get("high"), above=b.get("above"),
                    help=f"{COMMON['dream'][k].help}, per frame (keyframes or an expression "
                    "allowed)")
           for (k, b), d in zip(DREAM_BOUNDS.items(), (4, 0.015, 2, 1.4), strict=True)},
        "cadence": Field("int", 1, low=1, high=100,
                         help="dream every k-th frame; the frames between are only carried"),
        "first_frame": {
            "steps": Field("int", None, low=1, high=1000, nullable=True,
                           help="frame 0's steps; omitted = dream.steps"),
            "octaves": Field("int", None, low=1, high=12, nullable=True,
                             help="frame 0's octaves; omitted = dream.octaves"),
            "step_size": Field("float", None, above=0, high=1.0, nullable=True,
                               help="frame 0's step size; omitted = dream.step_size"),
        },
    },
    # the encoders' own declarations (render.encoding.options), and the GIF's size cap
    "encode": fields_of(Mp4Options),
    "gif": {
        **fields_of(GifOptions),
        "max_mb": Field("float", None, above=0, high=10_000, nullable=True,
                        help="size cap: shrink scale, then fps, then colours to fit"),
    },
    # issue 26: interpolation and upscaling after the dream (render.finish)
    "finish": fields_of(FinishOptions),
    "loop": {
        "mode": Field("choice", "none", choices=LOOP_MODES,
                      help="none, crossfade (the end flows into the start) or pingpong"),
        "frames": Field("int", 12, low=1, high=10_000, help="cross-fade length in frames"),
    },
}

# --- soundtrack and audio features (issue 16) ---------------------------------------------
# `audio: FILE` is short for `audio.file: FILE` (presets.apply_overrides); GENERATED_AUDIO is a
# track the project synthesises (pipelines.audio.synth), so the music preset needs no file
GENERATED_AUDIO = "generated"
SHORTHANDS = {"audio": "file"}  # a scalar given for this group sets this key of it


def audio_keys(default: str | None, help_file: str) -> dict[str, Any]:
    """The `audio` key group of a sequence pipeline."""
    return {"audio": {
        "file": Field("path", default, nullable=True, help=help_file),
        "start": Field("float", 0.0, low=0, high=1e7, help="seconds into the track"),
        "beat_decay": Field("float", 4.0, above=0, high=1000,
                            help="how fast `beat` falls from 1 on a beat (e^-k by the next)"),
    }}


AUDIO_FRAMES = "audio"  # frames: audio = as many frames as the track lasts at fps
# ------------------------------------------------------------------------------------------

ZOOM: dict[str, Any] = {
    **SEQUENCE,
    "frames": Field("frames", 48, low=1, high=100_000,
                    help="number of frames, or audio: as long as the soundtrack"),
    **audio_keys(None, f"soundtrack of MP4s and source of audio features; {GENERATED_AUDIO} = "
                 "a 120 BPM drum pattern the project synthesises"),
    "motion": {
        "zoom": Field("schedule", 1.03, above=0, high=10, help="scale per frame (>1 zooms in)"),
        "angle": Field("schedule", 0.0, low=-180, high=180, help="degrees per frame"),
        "translate_x": Field("schedule", 0.0, low=-10_000, high=10_000, help="px per frame"),
        "translate_y": Field("schedule", 0.0, low=-10_000, high=10_000, help="px per frame"),
    },
    # issue 24: what keeps a long zoom alive (pipelines.warp.feedback, pipelines.warp.color)
    "feedback": {
        "noise": Field("schedule", 0.0, low=0, high=64,
                       help="grey levels (std) of fresh noise added to the moved previous "
                            "frame: new detail for the dream to grow, per frame"),
    },
    "color": {
        "coherence": Field("bool", False,
                           help="hold every frame's colour and contrast (LAB mean and std) "
                                "at frame 0's"),
    },
}

# dis/farneback: carry the dream along the flow; static: carry it without moving it;
# none: dream every frame independently (each with the dream.first_frame settings)
FLOW_CHOICES = ("dis", "farneback", "static", "none")
CARRY_MODES = ("full", "residual")

VIDEO: dict[str, Any] = {
    **{k: v for k, v in SEQUENCE.items() if k not in ("frames", "fps")},
    "frames": Field("frames", None, low=2, high=100_000, nullable=True,
                    help="at most this many frames (audio: the soundtrack's length); "
                    "omitted = the whole range"),
    "fps": Field("float", None, above=0, high=240, nullable=True,
                 help="output frame rate; omitted = the source's"),
    "start": Field("float", 0.0, low=0, high=1e7, help="seconds into the input"),
    "end": Field("float", None, above=0, high=1e7, nullable=True,
                 help="seconds into the input; omitted = to its end"),
    "max_size": Field("size", [640, 360], nullable=True,
                      help="fit inside [width, height], keeping the aspect ratio"),
    **audio_keys("source", "source (keep the input's sound), none (drop it) or a file "
                 "that replaces it"),
    "flow": {
        "method": Field("choice", "dis", choices=FLOW_CHOICES, help="optical flow on the source"),
        "mode": Field("choice", "full", choices=CARRY_MODES,
                      help="carry the whole dreamed frame, or only what the dream added"),
        "blend": Field("float", 0.8, low=0, high=1,
                       help="weight of the carried dream against the fresh source frame"),
        "consistency": Field("bool", True,
                             help="take the source frame where the flow is unreliable"),
        "max_strength": Field("float", None, above=0, high=100, nullable=True,
                              help="hold the dream's strength (mean |dream - source|) at "
                                   "most this many times frame 0's, so a still camera is not "
                                   "buried; omitted = unbounded"),
    },
    "color": {
        "coherence": Field("bool", True, help="match colours to the first dreamed frame (LAB)"),
    },
}

LAYERS: dict[str, Any] = {
    "gallery": {
        "columns": Field("int", 0, low=0, high=64, help="tiles per row; 0 = square-ish grid"),
        "label": Field("bool", True, help="write the layer name on each tile"),
    },
}


def schema_for(pipeline: str) -> dict[str, Any]:
    """COMMON plus the pipeline's own keys."""
    extra = PIPELINE_KEYS[pipeline]
    schema = {**COMMON, **{k: v for k, v in extra.items() if k not in ("model", "dream")}}
    for section in ("model", "dream"):
        schema[section] = {**COMMON[section], **extra.get(section, {})}
    return schema


# --- issue 18: where a render runs (pipelines.cluster). `none` is today's single process.
CLUSTER: dict[str, Any] = {
    "address": Field("str", "none",
                     help="none (one process), local (Ray on this machine), auto (the Ray "
                          "cluster this machine is part of) or ray://HOST:PORT"),
    "workers": Field("int", 2, low=1, high=4096,
                     help="Ray actors that dream chunks (local: also the CPUs Ray starts with)"),
    "chunk": Field("int", 48, low=2, high=100_000,
                   help="frames per chunk of a video; cuts in the source are preferred"),
    "overlap": Field("int", 8, low=0, high=100_000,
                     help="frames a chunk starts early to warm up, cross-faded (< chunk)"),
    "retries": Field("int", 2, low=0, high=100,
                     help="times a lost worker is restarted and its chunk retried"),
    "connect_timeout": Field("float", 20.0, above=0, high=3600,
                             help="seconds to wait for an existing cluster to answer"),
}

# pipeline name -> its keys beyond COMMON (sections named in both are merged)
# a still is upscaled, never interpolated
STILL_FINISH = {k: f for k, f in fields_of(FinishOptions).items() if k.startswith("upscale")}
PIPELINE_KEYS: dict[str, Schema] = {"still": {"cluster": CLUSTER, "finish": STILL_FINISH},
                                    "layers": LAYERS,
                                    "zoom": {**ZOOM, "cluster": CLUSTER},
                                    "video": {**VIDEO, "cluster": CLUSTER}}
