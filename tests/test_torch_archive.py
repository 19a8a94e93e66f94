"""The torch-free reader of PyTorch zip / TorchScript archives: crafted archives round-trip;
hostile pickles, zip bombs and malformed archives are refused."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from pickle_craft import (
    Payload,
    legacy_tensor,
    op_call,
    op_global,
    op_int,
    op_str,
    op_tuple,
    prelude,
    write,
)

from render.errors import UserError
from render.weights import torch_pth
from render.weights.torch_pickle import TorchScriptObject
from render.weights.torch_pth import load_archive, load_state_dict

# --- zip archives (torch.save >= 1.6 and TorchScript), crafted by hand ---


def _long(i: int) -> bytes:
    data = i.to_bytes(i.bit_length() // 8 + 1, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def _zip_tensor(key: str, numel: int, shape: tuple[int, ...], stride: tuple[int, ...]) -> bytes:
    """A tensor as a zip archive's data.pkl has it: 5-field persistent id, no view metadata."""
    pid = op_tuple(op_str("storage"), op_global("torch", "FloatStorage"), op_str(key),
                   op_str("cpu"),
                 _long(numel))
    return op_call(op_global("torch._utils", "_rebuild_tensor_v2"), pid + b"Q", op_int(0),
                 op_tuple(*map(op_int, shape)), op_tuple(*map(op_int, stride)), b"\x89",
                 op_call(op_global("collections", "OrderedDict")))


def _script_object(type_name: str, attributes: dict[str, bytes]) -> bytes:
    """NEWOBJ of a ``__torch__`` class with no arguments, then BUILD with its attribute dict."""
    module, name = type_name.rsplit(".", 1)
    items = b"".join(op_str(k) + v for k, v in attributes.items())
    return op_global(module, name) + b")\x81" + b"}(" + items + b"ub"


def _intlist(*values: int) -> bytes:
    return op_call(op_global("torch.jit._pickle", "build_intlist"),
                 b"](" + b"".join(map(op_int, values)) + b"e")


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
        "stride": op_int(2),
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
    items = op_str("w") + _zip_tensor("0", 4, (2, 2), (2, 1))
    pickled = b"\x80\x02" + op_call(op_global("collections", "OrderedDict")) + b"(" + items + b"u."
    data = np.array([1, 2, 3, 4], np.float32)
    path = _archive(tmp_path, pickled, {"0": data.tobytes()}, root="weights_v2")
    np.testing.assert_array_equal(load_state_dict(path)["w"], data.reshape(2, 2))


@pytest.mark.parametrize("where", ["data.pkl", "inside a module"])
def test_malicious_archive_is_refused_and_never_runs(tmp_path: Path, where: str) -> None:
    marker = tmp_path / "pwned"
    evil = pickle.dumps(Payload(marker), protocol=2)
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
    pickled = b"\x80\x02" + op_call(op_global("os", "system"), op_str(f"touch '{marker}'")) + b"."
    with pytest.raises(UserError, match="'os.system'"):
        load_state_dict(_archive(tmp_path, pickled, {}))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("pickled", "message"),
    [
        # a __torch__ "class" is an inert container: calling it with arguments is refused
        (op_call(op_global("__torch__.builtins", "eval"), op_str("1+1")), "refusing arguments"),
        # its state must be an attribute dict
        (op_global("__torch__.m", "Net") + b")\x81" + op_tuple(op_int(1)) + b"b", "non-attribute"),
        # build_intlist takes a list of integers only
        (op_call(op_global("torch.jit._pickle", "build_intlist"), op_str("x")), "list of integers"),
        # only names that look like TorchScript classes
        (op_global("__torch__x.m", "Net") + b")\x81", "'__torch__x.m.Net'"),
        (op_global("torch.jit._pickle", "build_tensor_from_id") + b")\x81", "build_tensor"),
        (op_global("builtins", "getattr"), "'builtins.getattr'"),
    ],
)
def test_archive_stand_ins_stay_inert(tmp_path: Path, pickled: bytes, message: str) -> None:
    path = _archive(tmp_path, b"\x80\x02" + pickled + b".", {})
    with pytest.raises(UserError, match=message):
        load_archive(path)


def test_legacy_pth_may_not_use_archive_only_globals(tmp_path: Path) -> None:
    state = b"\x80\x02" + op_global("__torch__.m", "Net") + b")\x81."
    path = write(tmp_path, prelude() + state + pickle.dumps([], protocol=2))
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
        (b"\x80\x02" + legacy_tensor("0", 4, 0, (4,), (1,)) + b".", {"0": b"\0" * 16},
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
