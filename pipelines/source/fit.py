"""Fitting an input image to the render's size without distorting it: cover (scale and crop),
contain (scale and pad black), stretch; a preset's size as a pixel budget for the input's own
shape; even sides for MP4; and the one-line notices that say what was done.

Images are uint8 RGB (H, W, 3) (masks: grey (H, W)); sizes are (width, height).
"""

from __future__ import annotations

import math

import numpy as np

from render.masks import Masks
from render.media.image import resize
from render.notify import Notify

MASK_SIDE = 1024  # masks are kept at most this large (render.masks), fitted or not


def budget_size(own: tuple[int, int], budget: tuple[int, int]) -> tuple[int, int]:
    """(w, h) with `own`'s aspect ratio and about budget[0] x budget[1] pixels, even sides."""
    pixels, aspect = budget[0] * budget[1], own[0] / own[1]
    return (max(2, round(math.sqrt(pixels * aspect) / 2) * 2),
            max(2, round(math.sqrt(pixels / aspect) / 2) * 2))


def fit_read_size(own: tuple[int, int], size: tuple[int, int], fit: str) -> tuple[int, int]:
    """The size an image of size `own` is scaled to before it is cropped (cover: covers
    `size`) or padded (contain: inside `size`) to `size`; stretch: `size` itself."""
    if fit == "stretch":
        return size
    scale = (max if fit == "cover" else min)(size[0] / own[0], size[1] / own[1])
    w, h = max(1, round(own[0] * scale)), max(1, round(own[1] * scale))
    pick = max if fit == "cover" else min
    return pick(w, size[0]), pick(h, size[1])


def place(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` centred in a `size` (w, h) frame: cropped where larger, padded with black where
    smaller."""
    (w, h), (iw, ih) = size, image.shape[1::-1]
    if (iw, ih) == (w, h):
        return image
    out = np.zeros((h, w, *image.shape[2:]), image.dtype)
    cw, ch, sx, sy = min(w, iw), min(h, ih), max(0, (iw - w) // 2), max(0, (ih - h) // 2)
    dx, dy = max(0, (w - iw) // 2), max(0, (h - ih) // 2)
    out[dy:dy + ch, dx:dx + cw] = image[sy:sy + ch, sx:sx + cw]
    return out


def fit_notice(what: str, own: tuple[int, int], size: tuple[int, int], fit: str) -> str | None:
    """What fitting an image of size `own` to `size` does, or None when the shapes match."""
    read = fit_read_size(own, size, "cover")
    if read == size:
        return None
    head = f"{what} is {own[0]}x{own[1]}, size is {size[0]}x{size[1]}: "
    if fit == "stretch":
        return head + f"stretched to it (aspect {own[0] / own[1]:.3f} -> " \
            f"{size[0] / size[1]:.3f}) as fit=stretch asks"
    if fit == "contain":
        read = fit_read_size(own, size, fit)
        return head + f"scaled to {read[0]}x{read[1]} and padded with black (fit=contain; " \
            "fit=cover crops instead)"
    return head + f"scaled to {read[0]}x{read[1]} and cropped to fill it, not stretched " \
        "(fit=cover; fit=contain pads, fit=stretch distorts)"


def budget_notice(what: str, own: tuple[int, int], size: tuple[int, int],
                  budget: tuple[int, int]) -> str:
    """What a preset's pixel budget made of an input of size `own`."""
    return (f"{what} is {own[0]}x{own[1]}: rendering {size[0]}x{size[1]}, its own shape at the "
            f"preset's {budget[0]}x{budget[1]} pixel count (size=[w,h] on the command line "
            "sets an exact size)")


def even_size(size: tuple[int, int], notify: Notify) -> tuple[int, int]:
    """`size` with even sides, as MP4 needs; saying so when a pixel is cropped."""
    even = (size[0] - size[0] % 2, size[1] - size[1] % 2)
    if even != size:
        notify(f"size {size[0]}x{size[1]}: MP4 needs even sides; the frames are "
               f"{even[0]}x{even[1]} (one pixel cropped at the right/bottom)")
    return even


def fitted(image: np.ndarray, size: tuple[int, int], fit: str) -> np.ndarray:
    """uint8 `image` made `size` (w, h) as `fit` says, never distorted unless stretch."""
    return place(resize(image, fit_read_size(image.shape[1::-1], size, fit)), size)


def fit_masks(masks: Masks | None, size: tuple[int, int], fit: str, notify: Notify
              ) -> Masks | None:
    """`masks` given the shape of the render's frames of `size` (w, h) the way `fit` gives it
    to the input: cover crops, contain pads with black (the padding stays untouched, as the
    input's black bars do), stretch distorts; with the input's kind of notice. Kept at most
    MASK_SIDE a side; a mask of the frames' shape is returned as it is."""
    if masks is None:
        return None
    own = masks.frames[0].shape[1::-1]
    notice = fit_notice(f"dream.mask {masks.source}", own, size, fit)
    if notice is None:
        return masks
    notify(notice)
    scale = min(1.0, MASK_SIDE / max(size))
    target = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
    return Masks(tuple(fitted(frame, target, fit) for frame in masks.frames), masks.source)
