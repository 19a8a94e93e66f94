"""Tests for the restricted NumPy pickle reader: malicious pickles are refused without side
effects, plain nested dicts of numeric arrays round-trip exactly."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from render.errors import UserError
from render.weights import numpy_pickle


class _SystemPayload:
    """Unpickling this runs ``os.system(command)`` with the stock unpickler."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _EvalPayload:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (eval, (f"__import__('os').system({self.command!r})",))


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file that a successful payload would create (run from tmp_path, absolute path too)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path / "MARKER"


def _write(tmp_path: Path, data: bytes, name: str = "evil.ckpt") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _refused(path: Path, *fragments: str) -> str:
    with pytest.raises(UserError) as info:
        numpy_pickle.load(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_os_system_global_is_refused(tmp_path: Path, marker: Path) -> None:
    data = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()
    path = _write(tmp_path, data)
    _refused(path, "'os.system'", "refusing")
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 3, 4, 5])
def test_reduce_payload_is_refused(tmp_path: Path, marker: Path, protocol: int) -> None:
    # The payload comes first: protocols 0-2 pickle array bytes via _codecs.encode (refused too).
    payload = {"x": _SystemPayload("touch MARKER"), "weights": {"kernel": np.ones(3, np.float32)}}
    data = pickle.dumps(payload, protocol=protocol)
    assert b"system" in data
    path = _write(tmp_path, data)
    _refused(path, ".system'")  # posix.system on Linux, nt.system on Windows
    assert not marker.exists()


def test_builtins_eval_is_refused(tmp_path: Path, marker: Path) -> None:
    path = _write(tmp_path, pickle.dumps([_EvalPayload(f"touch {marker}")], protocol=3))
    _refused(path, "'builtins.eval'")
    assert not marker.exists()


def test_object_array_is_refused(tmp_path: Path, marker: Path) -> None:
    # An object array's data is itself pickled objects: here the os.system payload.
    evil = np.array([_SystemPayload("touch MARKER"), 1], dtype=object)
    path = _write(tmp_path, pickle.dumps({"kernel": evil}, protocol=3))
    _refused(path, "numpy.dtype('O8')", "object")
    assert not marker.exists()
    benign = np.array(["a", 1], dtype=object)
    _refused(_write(tmp_path, pickle.dumps(benign, protocol=3), "obj.ckpt"), "numpy.dtype('O8')")


@pytest.mark.parametrize(
    "array",
    [
        np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]),  # structured
        np.array(["ab", "c"]),  # unicode strings
        np.array([b"ab"]),  # byte strings
        np.array(["2020-01-01"], dtype="datetime64[D]"),
    ],
    ids=["structured", "unicode", "bytes", "datetime"],
)
def test_non_numeric_dtypes_are_refused(tmp_path: Path, array: np.ndarray) -> None:
    _refused(_write(tmp_path, pickle.dumps(array, protocol=3)), "numpy.dtype(")


def test_dtype_flag_state_is_refused(tmp_path: Path) -> None:
    """The dtype BUILD state could claim the object flag (63) for a float dtype."""
    data = pickle.dumps(np.ones(2, np.float32), protocol=3)
    plain = b"J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t"
    assert data.count(plain) == 1
    _refused(_write(tmp_path, data.replace(plain, plain[:-3] + b"K?t")), "dtype state")


def test_other_numpy_globals_are_refused(tmp_path: Path) -> None:
    # Protocol 5 (pickle's default) uses numpy._core.numeric._frombuffer for contiguous arrays;
    # numpy scalars use numpy._core.multiarray.scalar. Neither is on the allow-list.
    _refused(_write(tmp_path, pickle.dumps(np.ones(2), protocol=5), "p5"), "_frombuffer'")
    _refused(_write(tmp_path, pickle.dumps(np.float32(1), protocol=3), "sc"), "scalar'")


def test_mismatched_array_data_is_refused(tmp_path: Path) -> None:
    data = pickle.dumps(np.ones(4, np.float32), protocol=3)
    raw = np.ones(4, np.float32).tobytes()
    header = b"C\x10" + raw  # SHORT_BINBYTES of 16 bytes
    assert data.count(header) == 1
    short = data.replace(header, b"C\x0c" + raw[:12])
    _refused(_write(tmp_path, short), "needs 16 bytes", "holds 12")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "truncated or corrupt"),
        (b"\x80\x03}q\x00(X\x01\x00\x00\x00a", "truncated or corrupt"),
        (b"garbage that is not a pickle", "corrupt"),
        (pickle.dumps({"a": 1}, protocol=3) + b"junk", "trailing bytes"),
        (b"\x80\x03cnumpy\ndtype\n}b.", "corrupt"),  # BUILD on a stand-in
        (b"\x80\x03cnumpy\nndarray\n.", "unexpected"),  # a bare global as the result
    ],
)
def test_corrupt_files_give_one_line_errors(tmp_path: Path, data: bytes, fragment: str) -> None:
    _refused(_write(tmp_path, data), fragment)


def test_size_bound(tmp_path: Path) -> None:
    path = _write(tmp_path, pickle.dumps(np.zeros(1000, np.float32), protocol=3))
    with pytest.raises(UserError, match="more than the 100 allowed"):
        numpy_pickle.load(path, max_bytes=100)
    with pytest.raises(UserError, match="cannot read"):
        numpy_pickle.load(tmp_path / "missing.ckpt")


def test_shared_references_do_not_blow_up(tmp_path: Path) -> None:
    """Each level references the previous one twice: 2**40 leaves if expanded naively."""
    level: list = [np.ones(2, np.float32)]
    for _ in range(40):
        level = [level, level]
    out = numpy_pickle.loads(pickle.dumps(level, protocol=3))
    assert out[0] is out[1]
    cyclic: list = []
    cyclic.append(cyclic)
    with pytest.raises(UserError, match="cycle"):
        numpy_pickle.loads(pickle.dumps(cyclic, protocol=3))
    deep: list = []
    for _ in range(numpy_pickle.MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(UserError, match="nested deeper"):
        numpy_pickle.loads(pickle.dumps(deep, protocol=3))


@pytest.mark.parametrize("protocol", [3, 4])
def test_nested_dict_of_arrays_round_trips(tmp_path: Path, protocol: int) -> None:
    rng = np.random.default_rng(0)
    shared = rng.standard_normal((2, 3)).astype(np.float32)
    tree = {
        "VGG16_0": {
            f"Conv_{i}": {
                "kernel": rng.standard_normal((3, 3, 2, 4)).astype(np.float32),
                "bias": rng.standard_normal(4).astype(np.float32),
            }
            for i in range(3)
        },
        "misc": [
            np.arange(12, dtype=np.int64).reshape(3, 4).T,  # pickled in Fortran order
            np.array([True, False]),
            np.arange(5, dtype=">f8"),  # big-endian: comes back native
            np.float16(2.5) * np.ones((2, 2), np.float16),
            np.array(3.25),  # 0-d
            np.zeros((0, 3), np.uint8),  # empty
            (1 + 2j) * np.ones(2, np.complex64),
        ],
        "shared": (shared, shared),
        "meta": {"name": "vgg", 1: 2.5, "flag": None, "raw": b"\x00"},
    }
    path = _write(tmp_path, pickle.dumps(tree, protocol=protocol), "ok.ckpt")
    out = numpy_pickle.load(path)

    assert out.keys() == tree.keys()
    assert out["meta"] == tree["meta"]
    for i in range(3):
        for k in ("kernel", "bias"):
            got, want = out["VGG16_0"][f"Conv_{i}"][k], tree["VGG16_0"][f"Conv_{i}"][k]
            np.testing.assert_array_equal(got, want)
            assert got.dtype == np.float32
    for got, want in zip(out["misc"], tree["misc"], strict=True):
        np.testing.assert_array_equal(got, want)
        assert got.shape == want.shape
        assert got.dtype == want.dtype.newbyteorder("=")
        assert got.flags.c_contiguous and got.flags.writeable and got.flags.owndata
    assert out["shared"][0] is out["shared"][1]
    np.testing.assert_array_equal(out["shared"][0], shared)


def test_payloads_are_live_with_the_stock_unpickler(tmp_path: Path, marker: Path) -> None:
    """Control: these payloads do run under pickle.loads, so the refusals above mean something."""
    pickle.loads(pickle.dumps([_SystemPayload("touch MARKER")], protocol=3))
    assert marker.exists()
    marker.unlink()
    pickle.loads(pickle.dumps([_EvalPayload(f"touch {marker}")], protocol=3))
    assert marker.exists()
