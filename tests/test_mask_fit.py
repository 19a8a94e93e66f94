"""A mask of another shape than the frames is fitted the way `fit` fits the input (issue 25),
not silently stretched."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipelines.cli import main
from pipelines.source.fit import fit_masks
from render.masks import Masks
from render.media.image import read_image


def square(side: int = 100) -> Masks:
    """White in the middle half of a square, black around it."""
    grey = np.zeros((side, side), np.uint8)
    grey[side // 4: 3 * side // 4, side // 4: 3 * side // 4] = 255
    return Masks((grey,), "square.png")


@pytest.mark.parametrize("fit,inside,outside,word", [
    # cover: scaled to 160x160, 35 rows cropped top and bottom: the square spans rows 5..85
    ("cover", [(10, 80), (45, 80)], [(45, 30), (45, 130)], "cropped"),
    # contain: scaled to 90x90 in the middle (columns 35..125), black bars beside it
    ("contain", [(45, 80)], [(10, 80), (45, 20), (45, 140)], "padded"),
    # stretch: the square becomes a 80x45 rectangle, rows 22..67
    ("stretch", [(45, 80)], [(10, 80), (45, 30)], "stretched"),
])
def test_a_mask_of_another_shape_is_fitted_like_the_input(fit, inside, outside, word):
    notices: list[str] = []
    fitted = fit_masks(square(), (160, 90), fit, notices.append)
    frame = fitted.frames[0]
    assert frame.shape == (90, 160)
    assert all(frame[y, x] == 255 for y, x in inside), fit
    assert all(frame[y, x] == 0 for y, x in outside), fit
    assert len(notices) == 1 and notices[0].startswith("dream.mask square.png is 100x100")
    assert word in notices[0]


def test_a_mask_of_the_frames_shape_is_used_as_it_is():
    notices: list[str] = []
    masks = Masks((np.full((180, 320), 255, np.uint8),), "wide.png")
    assert fit_masks(masks, (160, 90), "cover", notices.append) is masks
    assert notices == []


def test_a_large_mask_is_kept_at_most_1024_a_side():
    masks = Masks((np.full((2000, 2000), 255, np.uint8),), "big.png")
    fitted = fit_masks(masks, (4096, 2160), "cover", lambda m: None)
    assert fitted.frames[0].shape == (540, 1024)


def test_a_still_dreams_inside_the_fitted_mask_not_a_stretched_one(tmp_path, capsys):
    """A square mask on a 96x64 photo: covered, the square spans rows 8..56; stretched it
    would span rows 16..48. Rows 9..14 must be dreamed."""
    from skimage import data

    photo = tmp_path / "cat.png"
    cv2.imwrite(str(photo), cv2.cvtColor(cv2.resize(data.chelsea(), (96, 64)),
                                         cv2.COLOR_RGB2BGR))
    mask = tmp_path / "square.png"
    cv2.imwrite(str(mask), square(96).frames[0])
    out = tmp_path / "out.png"
    code = main(["render", "still", f"input={photo}", f"dream.mask={mask}", f"output={out}",
                 "model.name=efficientnet_lite0", "dream.octaves=1",
                 "dream.steps=4", "dream.step_size=0.05", "--quiet"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"dream.mask {mask} is 96x96, size is 96x64" in err and "cropped" in err
    before, after = read_image(photo).astype(float), read_image(out).astype(float)
    changed = np.abs(after - before).mean(axis=2)
    assert changed[9:15, 30:66].mean() > 0.5  # inside the covered square
    assert changed[:, :20].max() == 0  # left of it: untouched
