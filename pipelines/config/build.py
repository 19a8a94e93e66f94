"""Typed settings from a validated preset (pipelines.config.schema.validate): each section
turned into its dataclass (pipelines.config.settings) with the checks that span keys, so a
render is refused before anything starts.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipelines.config import keyframes
from pipelines.config.keyframes import Schedule
from pipelines.config.keys import AUDIO_FRAMES, DREAM_BOUNDS, SEQUENCE, ZOOM
from pipelines.config.settings import (
    FEEDBACK_KEYS,
    MOTION_KEYS,
    AudioConfig,
    ClusterConfig,
    DirectedConfig,
    DreamConfig,
    FeedbackConfig,
    FirstFrame,
    FlowConfig,
    GalleryConfig,
    LayersSettings,
    LoopConfig,
    ModelConfig,
    MotionConfig,
    SequenceConfig,
    SequenceSettings,
    Settings,
    VideoConfig,
    VideoSettings,
    ZoomSettings,
)
from render.classes import class_indices
from render.encoding.options import GifOptions, Mp4Options
from render.errors import ConfigError, UserError
from render.finish.options import FinishOptions
from render.models import LOGIT_MODELS, MODELS, Layers, classifier_note, parse_layers


def _audio(cfg: Mapping[str, Any], settings: Settings) -> AudioConfig:
    """The `audio` group, checked against what uses it: `frames: audio` and audio features
    need a track of their own."""
    group = cfg["audio"]
    audio = AudioConfig(group["file"], group["start"], group["beat_decay"],
                        cfg["frames"] == AUDIO_FRAMES)
    if audio.track is None:
        if audio.sets_frames:
            raise ConfigError("frames", "frames: audio needs a soundtrack; set audio=FILE")
        for key, sched in settings.schedules():
            if sched.features:
                raise ConfigError(key, f"{key}: uses the audio feature "
                                  f"{sorted(sched.features)[0]!r} but no soundtrack is set; "
                                  "set audio=FILE")
    if audio.track is not None and cfg["loop"]["mode"] == "pingpong":
        raise ConfigError("audio.file", "audio.file: a pingpong loop plays its frames backwards "
                          "and music cannot follow; use loop.mode crossfade or none")
    if settings.pipeline == "zoom" and group["file"] == "source":
        raise ConfigError("audio.file", "audio.file: source is for the video pipeline (its "
                          "input's sound); a zoom takes a file, generated or none")
    return audio


def _remote_files(settings: Settings) -> None:
    """On a cluster of other machines only the inputs travel (object store): files that the
    workers would open by this machine's path are refused rather than missed there."""
    if settings.cluster.address in ("none", "local"):
        return
    weights = settings.model.weights
    files = [("dream.guide", settings.dream.directed.guide),
             ("dream.mask", settings.dream.directed.mask),
             ("model.weights", None if str(weights).lower() in ("none", "imagenet") else weights)]
    if settings.pipeline != "video":  # a video's soundtrack is muxed here, by the driver
        track = settings.audio.track if isinstance(settings, SequenceSettings) else None
        files.append(("audio.file", track if isinstance(track, Path) else None))
    for key, path in files:
        if path is not None:
            raise ConfigError(key, f"{key}: {path} would be opened on the workers of "
                              f"cluster.address={settings.cluster.address}, which only get the "
                              "input; use cluster.address=local or none")


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None


def _size(value: list[int] | None) -> tuple[int, int] | None:
    return (int(value[0]), int(value[1])) if value else None


def _model(cfg: Mapping[str, Any], interpolation: str, sequence: bool) -> ModelConfig:
    """Layer names checked against the model; keyframed weights split off (sequences)."""
    model, layers = cfg["model"], cfg["model"]["layers"]
    scheds: dict[str, Schedule] = {}
    if isinstance(layers, Mapping) and sequence:
        plain = {}
        for name, value in layers.items():
            weight = value.get("weight", 1.0) if isinstance(value, Mapping) else value
            if isinstance(weight, str):
                key = f"model.layers.{name}"
                scheds[name] = keyframes.parse(key, weight, interpolation)
                # an expression's weight is known per frame only (frame_plan): 1 stands in
                weight = 1.0 if scheds[name].dynamic else scheds[name].at(0)
            plain[name] = {**value, "weight": weight} if isinstance(value, Mapping) else weight
        layers = plain
    terms: Layers = None
    if layers is not None:
        try:
            parsed = parse_layers(MODELS[model["name"]], layers)
        except UserError as exc:
            raise ConfigError("model.layers", str(exc)) from None
        terms = "all" if layers == "all" else parsed
    weights = model["weights"]
    if (weights is not None and str(weights).lower() not in ("imagenet", "none")
            and not Path(weights).expanduser().is_file()):
        raise ConfigError("model.weights",
                          f"model.weights: file {weights} not found (or use imagenet, none)")
    return ModelConfig(model["name"], terms, weights, scheds, model.get("layer_cycle", 0))


def _dream(cfg: Mapping[str, Any], interpolation: str) -> DreamConfig:
    dream = cfg["dream"]
    scheds = {key: keyframes.check(f"dream.{key}", keyframes.parse(
        f"dream.{key}", dream[key], interpolation), None, **bounds)
        for key, bounds in DREAM_BOUNDS.items()}
    first = dream.get("first_frame") or {}
    return DreamConfig(**scheds, tile=dream["tile"], smoothing=dream["smoothing"],
                       cadence=dream.get("cadence", 1),
                       first_frame=FirstFrame(first.get("steps"), first.get("octaves"),
                                              first.get("step_size")),
                       directed=_directed(cfg),
                       precision=dream.get("precision", "auto"))


def _directed(cfg: Mapping[str, Any]) -> DirectedConfig:
    """dream.guide / classes / mask checked up front: files readable (a guide by its image
    signature, not decoded here), class names known, and a model with a classifier for
    classes."""
    from render.masks import check_mask_file
    from render.media.image import check_image_file

    dream = cfg["dream"]
    guide = _path(dream.get("guide"))
    if guide is not None:
        try:
            check_image_file(guide, "a guide image", "guide image")  # decoded once, when used
        except UserError as exc:
            raise ConfigError("dream.guide", f"dream.guide: {exc}") from None
    mask = _path(dream.get("mask"))
    if mask is not None:
        try:
            check_mask_file(mask)
        except UserError as exc:
            raise ConfigError("dream.mask", str(exc)) from None
    classes: tuple[int, ...] = ()
    if dream.get("classes") not in (None, [], ()):
        try:
            classes = class_indices(dream["classes"])
        except UserError as exc:
            raise ConfigError("dream.classes", str(exc)) from None
        from render.weights.resolve import top_weights_file

        name, weights = cfg["model"]["name"], cfg["model"]["weights"]
        spec = MODELS[name]
        imagenet = weights is not None and str(weights).lower() == "imagenet"
        if name not in LOGIT_MODELS or (spec.keras_top_weights_file and imagenet
                                        and top_weights_file(spec) is None):
            raise ConfigError("dream.classes", f"dream.classes: {name} has no ImageNet "
                              f"classifier here; models with one: {classifier_note()}")
    return DirectedConfig(guide, classes, float(dream.get("class_weight", 1.0)), mask)


def _sequence(cfg: Mapping[str, Any]) -> SequenceConfig:
    """The sequence's frames, encoders (their options check themselves: render.encoding.options)
    and loop."""
    gif = {k: v for k, v in cfg["gif"].items() if k != "max_mb"}
    frames = None if cfg["frames"] == AUDIO_FRAMES else cfg["frames"]  # known once probed
    return SequenceConfig(
        frames, cfg["fps"], cfg["interpolation"], _path(cfg["frames_dir"]),
        Mp4Options(**cfg["encode"]), GifOptions(**gif), LoopConfig(**cfg["loop"]),
        cfg["gif"]["max_mb"])


def _schedules(cfg: Mapping[str, Any], section: str, keys: tuple[str, ...],
               interpolation: str) -> dict[str, Schedule]:
    """The keyframed keys of a zoom section, parsed and checked against their bounds."""
    bounds = ZOOM[section]
    return {k: keyframes.check(
        f"{section}.{k}", keyframes.parse(f"{section}.{k}", cfg[section][k], interpolation),
        None, low=bounds[k].low, above=bounds[k].above, high=bounds[k].high) for k in keys}


def _motion(cfg: Mapping[str, Any], interpolation: str) -> MotionConfig:
    return MotionConfig(**_schedules(cfg, "motion", MOTION_KEYS, interpolation))


def _feedback(cfg: Mapping[str, Any], interpolation: str) -> FeedbackConfig:
    return FeedbackConfig(**_schedules(cfg, "feedback", FEEDBACK_KEYS, interpolation))


def _video(cfg: Mapping[str, Any]) -> VideoConfig:
    start, end = cfg["start"], cfg["end"]
    if end is not None and end <= start:
        raise ConfigError("end", f"end: must be after start ({start:g} s), got {end:g}")
    flow = FlowConfig(**cfg["flow"])
    if flow.method == "none" and cfg["dream"]["cadence"] > 1:
        raise ConfigError("dream.cadence", "dream.cadence: needs a flow.method that carries "
                          "the dream (dis, farneback, static); with none every frame is dreamed")
    keep = "source" if cfg["audio"]["file"] == "source" else "none"  # the input's own sound
    return VideoConfig(start, end, _size(cfg["max_size"]), keep, flow,
                       cfg["color"]["coherence"])


def _finish(cfg: Mapping[str, Any], fps: float | None) -> FinishOptions:
    """The finishing options (they check themselves), and the delivered frame rate against
    the bound of `fps` (a video's source rate is checked once the source is probed)."""
    finish = FinishOptions(**cfg)
    check_finished_fps(finish, fps, "fps")
    return finish


def check_finished_fps(finish: FinishOptions, fps: float | None, source: str) -> None:
    """Refuse a delivered frame rate (`fps` x finish.interpolate) above what the fps key
    allows; `source`: where `fps` came from, for the message."""
    high = SEQUENCE["fps"].high
    if fps is not None and finish.fps(fps) > high:
        raise ConfigError("finish.interpolate", f"finish.interpolate: {finish.interpolate} x "
                          f"{source} {fps:g} = {finish.fps(fps):g} fps delivered; at most "
                          f"{high:g} (so finish.interpolate at most {max(1, int(high // fps))} "
                          "here)")


# --- issue 18: the cluster section (no Ray import here: only whether it is installed)
CLUSTER_ADDRESS = re.compile(r"^(none|local|auto|ray://[A-Za-z0-9.\-\[\]:]+:\d{1,5}|"
                             r"[A-Za-z0-9.\-\[\]:]+:\d{1,5})$")
RAY_EXTRA = "pip install 'dreamreel[cluster]'"


def ray_installed() -> bool:
    """Whether Ray can be imported, found without importing it."""
    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules["ray"] is None (blocked)
        return False


def _cluster(cfg: Mapping[str, Any]) -> ClusterConfig:
    cluster = ClusterConfig(**cfg)
    if not CLUSTER_ADDRESS.match(cluster.address):
        raise ConfigError("cluster.address", "cluster.address: must be none, local, auto, "
                          f"ray://HOST:PORT or HOST:PORT, got {cluster.address!r}")
    if cluster.overlap >= cluster.chunk:
        raise ConfigError("cluster.overlap", f"cluster.overlap: must be smaller than "
                          f"cluster.chunk ({cluster.chunk}), got {cluster.overlap}")
    if cluster.enabled and not ray_installed():
        raise ConfigError("cluster.address", f"cluster.address={cluster.address}: needs Ray, "
                          f"which is not installed; install the extra: {RAY_EXTRA}")
    return cluster


def build(cfg: Mapping[str, Any], user_set: Callable[[str], bool] = lambda key: True,
          written_for: int | None = None) -> Settings:
    """Typed settings from a validated preset (see pipelines.config.schema.validate), of the
    pipeline's own Settings class. `user_set(key)`: whether the command line set dotted `key`
    (default: every key), the rest came from the preset file; `written_for`: the frames the
    file's keyframes describe (zoom, default `frames`)."""
    pipeline = cfg["pipeline"]
    interpolation = cfg.get("interpolation", "linear")
    common: dict[str, Any] = dict(
        pipeline=pipeline, description=cfg.get("description"), input=_path(cfg["input"]),
        output=tuple(Path(p).expanduser() for p in cfg["output"]) if cfg["output"] else None,
        size=_size(cfg["size"]), seed=cfg["seed"],
        model=_model(cfg, interpolation, pipeline in ("zoom", "video")),
        dream=_dream(cfg, interpolation), fit=cfg["fit"])
    if "cluster" in cfg:  # issue 18
        common["cluster"] = _cluster(cfg["cluster"])
    if "finish" in cfg:  # issue 26
        common["finish"] = _finish(cfg["finish"], cfg.get("fps"))
    settings: Settings
    if pipeline == "layers":
        settings = LayersSettings(**common, gallery=GalleryConfig(**cfg["gallery"]))
    elif pipeline in ("zoom", "video"):
        sequence = dict(common, sequence=_sequence(cfg),
                        size_budget=cfg["size"] is not None and not user_set("size"))
        settings = (ZoomSettings(**sequence, motion=_motion(cfg, interpolation),
                                 feedback=_feedback(cfg, interpolation),
                                 color_coherence=cfg["color"]["coherence"])
                    if pipeline == "zoom" else VideoSettings(**sequence, video=_video(cfg)))
    else:
        settings = Settings(**common)
    if (pipeline == "video" and settings.cluster.enabled
            and settings.dream.directed.mask is not None):
        raise ConfigError("dream.mask", "dream.mask: not supported on a cluster yet "
                                        "(cluster.address); render masked clips with "
                                        "cluster.address=none")
    settings = replace(settings, from_file=frozenset(
        key for key, _ in settings.schedules() if not user_set(key)))
    if isinstance(settings, SequenceSettings):
        settings = replace(settings, audio=_audio(cfg, settings))
    _remote_files(settings)
    if isinstance(settings, ZoomSettings) and not settings.audio.sets_frames:
        # with `frames: audio`, keyframes are fitted once the track's length is known
        return settings.fit_keyframes(cfg["frames"], written_for or cfg["frames"])
    return settings
