"""Typed settings: a validated preset as small frozen dataclasses, one Settings class per
pipeline, with keyframe schedules parsed, so pipelines read attributes, never string keys.

pipelines.config.build makes them once, at the edge (presets.load), before any output lock or
work directory exists.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from pipelines.config import keyframes
from pipelines.config.expressions import Values
from pipelines.config.keyframes import Schedule
from pipelines.config.keys import DREAM_BOUNDS, GENERATED_AUDIO, ZOOM
from render.encoding.options import GifOptions, Mp4Options
from render.finish.options import NO_FINISH, FinishOptions
from render.models import Layers

MOTION_KEYS = ("zoom", "angle", "translate_x", "translate_y")
FEEDBACK_KEYS = ("noise",)
_S = TypeVar("_S", bound="Settings")
_Z = TypeVar("_Z", bound="ZoomSettings")


@dataclass(frozen=True)
class ModelConfig:
    """The network and its objective. `layers`: None = the model's default, "all", or terms
    (frame-0 weights); `weight_schedules` maps a layer to its keyframed weight."""

    name: str
    layers: Layers
    weights: str | None
    weight_schedules: Mapping[str, Schedule] = field(default_factory=dict)
    layer_cycle: int = 0  # sequences: frames per cycle of the layer weights (0 = fixed)


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
        return (self.zoom.at(t), self.angle.at(t), self.translate_x.at(t),
                self.translate_y.at(t))


@dataclass(frozen=True)
class FeedbackConfig:
    """What happens to the moved previous frame before it is dreamed again (zoom sequences):
    fresh noise of this many grey levels, per frame."""

    noise: Schedule


@dataclass(frozen=True)
class LoopConfig:
    mode: str = "none"
    frames: int = 12


@dataclass(frozen=True)
class SequenceConfig:
    """What every frame sequence (zoom, video) shares. `frames`/`fps` may be None for a video
    (the source decides); `encode`/`gif` go to the encoders as they are; `gif_max_mb`: the
    GIF's size cap (pipelines.sequence.gif_fit)."""

    frames: int | None
    fps: float | None
    interpolation: str
    frames_dir: Path | None
    encode: Mp4Options
    gif: GifOptions
    loop: LoopConfig
    gif_max_mb: float | None = None


@dataclass(frozen=True)
class FlowConfig:
    method: str = "dis"
    mode: str = "full"
    blend: float = 0.8
    consistency: bool = True
    max_strength: float | None = None  # the dream's strength at most this x frame 0's


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


@dataclass(frozen=True, kw_only=True)
class Settings:
    """One render, fully resolved: what every pipeline has. Each pipeline gets its own
    subclass (LayersSettings, ZoomSettings, VideoSettings), so no section is optional."""

    pipeline: str
    description: str | None
    input: Path | None
    output: tuple[Path, ...] | None  # None = out/<preset>.<ext>
    size: tuple[int, int] | None
    seed: int
    model: ModelConfig
    dream: DreamConfig
    fit: str = "cover"  # an input of another aspect than `size`: cover, contain or stretch
    from_file: frozenset[str] = frozenset()  # keyframed keys the command line did not set
    cluster: ClusterConfig = ClusterConfig()  # issue 18: where it runs (default: here)
    fitted: frozenset[str] = frozenset()  # keyframed keys fit_keyframes moved or cut
    finish: FinishOptions = NO_FINISH  # issue 26: interpolation and upscaling after the dream

    def schedules(self) -> Iterator[tuple[str, Schedule]]:
        """(dotted key, schedule) of every keyframed value."""
        for key in DREAM_BOUNDS:
            yield f"dream.{key}", getattr(self.dream, key)
        for name, sched in self.model.weight_schedules.items():
            yield f"model.layers.{name}", sched

    def features(self) -> tuple[frozenset[str], frozenset[tuple[float, float]]]:
        """The audio features every expression reads, and the bands among them."""
        scheds = [s for _, s in self.schedules()]
        return (frozenset().union(*(s.features for s in scheds)),
                frozenset().union(*(s.bands for s in scheds)))

    def with_schedules(self: _S, new: Mapping[str, Schedule]) -> _S:
        """These settings with the schedules of dotted keys `new` replaced."""
        return replace(
            self, dream=replace(self.dream, **_part(new, "dream.")),
            model=replace(self.model, weight_schedules={**self.model.weight_schedules,
                                                         **_part(new, "model.layers.")}))

    def resolved(self: _S, frames: int, variables: Values) -> _S:
        """These settings with every expression computed for frames 0..frames-1 and checked
        against its key's bounds at every frame (ConfigError naming the first bad frame).
        `variables`: t, s, fps, pi and the audio features (expressions.evaluate)."""
        done = {key: keyframes.resolve(key, sched, frames, variables, **schedule_bounds(key))
                for key, sched in self.schedules() if sched.dynamic}
        return self.with_schedules(done) if done else self

    def fit_keyframes(self: _S, frames: int, written_for: int | None = None) -> _S:
        """These settings for a clip of `frames` frames. Keyframes from the preset file are
        moved to the same place in the clip when the file describes `written_for` frames (a
        zoom: its keys mark moments of that clip), or cut at the clip's end when it describes
        none (a video: keys are moments of the source); any key still past the end (set on
        the command line, or past the file's own end) is refused (ConfigError)."""
        new = {key: keyframes.rescaled(sched, written_for, frames) if written_for
               else keyframes.truncated(sched, frames) for key, sched in self.schedules()
               if key in self.from_file and written_for != frames}
        mine = dict(self.schedules())
        moved = {key for key, sched in new.items() if sched != mine[key]}
        fitted = replace(self.with_schedules(new), fitted=self.fitted | moved)
        for key, sched in fitted.schedules():
            keyframes.check(key, sched, frames)
        return fitted

    def recorded(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The preset's key tree `config` as a sidecar records it: keyframes moved to fit
        the clip's length (fit_keyframes) where they are, not where the file put them."""
        out = copy.deepcopy(dict(config))
        mine = dict(self.schedules())
        for key in sorted(self.fitted):
            *parents, last = key.split(".")
            node = out
            for part in parents:
                node = node.setdefault(part, {})
            value = keyframes.as_config(mine[key])
            if isinstance(node.get(last), dict):  # a layer given as {weight: ..., channels: ...}
                node[last] = {**node[last], "weight": value}
            else:
                node[last] = value
        return out



WHOLE_KEYS = ("steps", "octaves")  # dream keys an engine takes as whole numbers


def rounding_notice(dream: DreamConfig, frames: int) -> str | None:
    """A line saying that a keyframed or expression dream.steps / dream.octaves takes values
    between whole numbers, which each frame rounds to the nearest (None when none does)."""
    for name in WHOLE_KEYS:
        sched: Schedule = getattr(dream, name)
        first = sched.values[0]
        if len(sched.frames) == 1 and isinstance(first, (int, float)) and first == round(first):
            continue  # one whole number: nothing to round
        for t in range(frames):
            value = sched.at(t)
            if not float(value).is_integer():
                return (f"dream.{name}: {value:.3g} at frame {t} (and other fractions) is "
                        f"rounded to a whole number of {name} ({round(value)}) per frame")
    return None

def _part(schedules: Mapping[str, Schedule], prefix: str) -> dict[str, Any]:
    """The schedules under dotted `prefix`, keyed by the rest of their key."""
    return {k[len(prefix):]: s for k, s in schedules.items() if k.startswith(prefix)}


@dataclass(frozen=True, kw_only=True)
class LayersSettings(Settings):
    """The layer gallery."""

    gallery: GalleryConfig


@dataclass(frozen=True, kw_only=True)
class SequenceSettings(Settings):
    """What every frame sequence (zoom, video) has: frames, encoders, loop, soundtrack.
    `size_budget`: `size` is from the preset file, a pixel count for the input's own shape."""

    sequence: SequenceConfig
    audio: AudioConfig = AudioConfig()
    size_budget: bool = False


@dataclass(frozen=True, kw_only=True)
class ZoomSettings(SequenceSettings):
    """A zoom (and loop, music) sequence: the camera motion per frame."""

    motion: MotionConfig
    feedback: FeedbackConfig
    color_coherence: bool = False  # hold every frame's LAB mean/std at frame 0's

    def schedules(self) -> Iterator[tuple[str, Schedule]]:
        yield from super().schedules()
        for key in MOTION_KEYS:
            yield f"motion.{key}", getattr(self.motion, key)
        for key in FEEDBACK_KEYS:
            yield f"feedback.{key}", getattr(self.feedback, key)

    def with_schedules(self: _Z, new: Mapping[str, Schedule]) -> _Z:
        done = super().with_schedules(new)
        return replace(done, motion=replace(done.motion, **_part(new, "motion.")),
                       feedback=replace(done.feedback, **_part(new, "feedback.")))


@dataclass(frozen=True, kw_only=True)
class VideoSettings(SequenceSettings):
    """A dreamed video: which part of the source and how the dream is carried along it."""

    video: VideoConfig


def schedule_bounds(key: str) -> dict[str, float | None]:
    """The bounds every frame of schedulable `key` must respect (a layer weight: none but
    being finite)."""
    section, _, name = key.partition(".")
    if section == "dream":
        return dict(DREAM_BOUNDS[name])
    if section in ("motion", "feedback"):
        f = ZOOM[section][name]
        return {"low": f.low, "above": f.above, "high": f.high}
    return {}
