"""Hand-made pickles and PyTorch files for the weight-reader tests: pickle opcodes emitted by
hand (no torch needed), and a payload that runs a shell command when unpickled unrestricted."""

from __future__ import annotations

import os
import pickle
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

from render.weights.torch_pth import MAGIC_NUMBER

SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2}}


# --- a tiny writer for legacy .pth files, emitting pickle opcodes by hand (no torch needed) ---


def op_global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def op_str(s: str) -> bytes:
    data = s.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def op_int(i: int) -> bytes:
    return b"J" + struct.pack("<i", i)


def op_tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def op_call(func: bytes, *args: bytes) -> bytes:
    return func + op_tuple(*args) + b"R"


def legacy_tensor(
    key: str,
    numel: int,
    offset: int,
    shape: tuple[int, ...],
    stride: tuple[int, ...],
    storage_type: str = "FloatStorage",
) -> bytes:
    pid = op_tuple(
        op_str("storage"), op_global("torch", storage_type), op_str(key), op_str("cpu"),
        op_int(numel), b"N"
    )
    return op_call(
        op_global("torch._utils", "_rebuild_tensor_v2"),
        pid + b"Q",
        op_int(offset),
        op_tuple(*map(op_int, shape)),
        op_tuple(*map(op_int, stride)),
        b"\x89",  # requires_grad=False
        op_call(op_global("collections", "OrderedDict")),
    )


def prelude(magic: int = MAGIC_NUMBER) -> bytes:
    return b"".join(pickle.dumps(v, protocol=2) for v in (magic, 1001, SYS_INFO))


def legacy_pth(
    tensors: dict[str, bytes], storages: dict[str, np.ndarray], counts: dict[str, int] | None = None
) -> bytes:
    """Legacy .pth bytes: prelude, state dict pickle, key list, then (count, raw bytes) per key."""
    items = b"".join(op_str(name) + t for name, t in tensors.items())
    state = b"\x80\x02" + op_call(op_global("collections", "OrderedDict")) + b"(" + items + b"u."
    out = [prelude(), state, pickle.dumps(list(storages), protocol=2)]
    for key, arr in storages.items():
        count = (counts or {}).get(key, arr.size)
        out += [struct.pack("<q", count), arr.astype(arr.dtype.newbyteorder("<")).tobytes()]
    return b"".join(out)


def write(tmp_path: Path, data: bytes, name: str = "w.pth") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


class Payload:
    """Unpickling this with plain pickle runs a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[[str], int], tuple[str]]:
        return (os.system, (f"touch '{self.marker}'",))
