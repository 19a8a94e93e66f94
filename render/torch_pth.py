"""Read a legacy (pre-1.6, non-zip) PyTorch ``.pth`` state dict into numpy arrays, without torch.

Why: the bundled ImageNet weights (EfficientNet-Lite0) ship only as a PyTorch checkpoint, and
dreamreel must not depend on torch. A ``.pth`` is a pickle, and unpickling untrusted data can run
arbitrary code, so this reader uses a restricted ``pickle.Unpickler`` whose ``find_class`` hands
out only inert stand-ins for the handful of globals a plain tensor state dict needs
(``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and the numeric
``torch.*Storage`` types). Anything else is refused with a one-line ``UserError``.

Legacy layout: pickle(magic number), pickle(protocol version 1001), pickle(sys_info dict),
pickle(state dict; storages referenced by persistent id), pickle(list of storage keys), then per
key in that order a little-endian int64 element count followed by the raw storage bytes.
Strided (e.g. transposed) tensors are supported via ``numpy.lib.stride_tricks.as_strided``; every
returned array is a fresh, writeable, C-contiguous copy.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO, NoReturn

import numpy as np

from render.errors import UserError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

# torch storage class name -> little-endian numpy dtype (only plain numeric types).
STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True)
class _StorageType:
    """Inert stand-in for a ``torch.<X>Storage`` class: just its name and numpy dtype."""

    name: str
    dtype: np.dtype


@dataclass(frozen=True)
class _StorageRef:
    """A storage referenced by persistent id; its bytes come later in the file."""

    key: str
    dtype: np.dtype
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    """What ``_rebuild_tensor_v2`` would build: a strided view into a storage."""

    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _fail(path: str, message: str) -> NoReturn:
    raise UserError(f"{path}: {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and all(_is_int(v) for v in value)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a tensor state dict needs, to inert stand-ins."""

    def __init__(self, file: BinaryIO, path: str) -> None:
        super().__init__(file)
        self._path = path
        self.storages: dict[str, _StorageRef] = {}

    def find_class(self, module: str, name: str) -> Any:
        """Allow-list of globals; everything else (os.system, builtins.eval, ...) is refused."""
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return self._rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name, STORAGE_DTYPES[name])
        _fail(
            self._path,
            f"refusing to unpickle global '{module}.{name}' (only tensor state dicts of "
            "OrderedDict/_rebuild_tensor_v2/numeric torch storages are allowed)",
        )

    def persistent_load(self, pid: Any) -> _StorageRef:
        """Resolve ``('storage', type, key, location, numel, view_metadata)`` to a reference."""
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            _fail(self._path, f"unsupported persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel, view_metadata = pid
        if not isinstance(storage_type, _StorageType):
            _fail(self._path, f"persistent id names a non-storage type {storage_type!r:.80}")
        if not isinstance(key, str) or not _is_int(numel) or numel < 0:
            _fail(self._path, f"malformed storage reference {pid!r:.80}")
        if view_metadata is not None:
            _fail(self._path, f"storage views are not supported (storage {key!r})")
        ref = _StorageRef(key, storage_type.dtype, numel)
        if self.storages.setdefault(key, ref) != ref:
            _fail(self._path, f"storage {key!r} is referenced with conflicting type or size")
        return ref

    def _rebuild_tensor_v2(
        self,
        storage: Any,
        storage_offset: Any,
        size: Any,
        stride: Any,
        requires_grad: Any = False,
        backward_hooks: Any = None,
        metadata: Any = None,
    ) -> _TensorRef:
        """Record the tensor's view parameters; data is attached once storages are read."""
        if not isinstance(storage, _StorageRef):
            _fail(self._path, "tensor is not backed by a storage")
        if not (_is_int(storage_offset) and _int_tuple(size) and _int_tuple(stride)):
            _fail(self._path, f"malformed tensor in storage {storage.key!r}")
        return _TensorRef(storage, storage_offset, size, stride)


def _load_pickle(f: BinaryIO, path: str, what: str) -> tuple[Any, _RestrictedUnpickler]:
    unpickler = _RestrictedUnpickler(f, path)
    try:
        return unpickler.load(), unpickler
    except UserError:
        raise
    except (EOFError, pickle.UnpicklingError, struct.error) as exc:
        _fail(path, f"truncated or corrupt {what} ({type(exc).__name__}: {exc})")
    except Exception as exc:  # malformed opcodes surface as assorted builtin errors
        _fail(path, f"corrupt {what} ({type(exc).__name__}: {exc})")


def _read_exact(f: BinaryIO, n: int, path: str, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        _fail(path, f"file is truncated: expected {n} bytes of {what}, got {len(data)}")
    return data


def _materialise(name: str, t: _TensorRef, storage: np.ndarray, path: str) -> np.ndarray:
    """Copy the strided view described by ``t`` out of its storage, after bounds checks."""
    if any(s < 0 for s in t.shape) or len(t.shape) != len(t.stride):
        _fail(path, f"tensor {name!r} has invalid shape {t.shape} / stride {t.stride}")
    if any(s < 0 for s in t.stride) or t.offset < 0:
        _fail(path, f"tensor {name!r} has a negative stride or offset")
    if 0 in t.shape:
        return np.zeros(t.shape, dtype=storage.dtype)
    last = t.offset + sum((n - 1) * s for n, s in zip(t.shape, t.stride, strict=True))
    if last >= storage.size:
        _fail(
            path,
            f"tensor {name!r} (shape {t.shape}, stride {t.stride}, offset {t.offset}) does not "
            f"fit its storage of {storage.size} elements",
        )
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[t.offset :],
        shape=t.shape,
        strides=tuple(s * item for s in t.stride),
        writeable=False,
    )
    return np.ascontiguousarray(view).copy()


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a legacy PyTorch ``.pth`` state dict as ``{name: numpy array}`` without importing torch.

    Raises ``UserError`` (one line naming the file) for a disallowed pickle global, a wrong magic
    number or protocol, a truncated file, a storage of the wrong size, or a tensor that does not
    fit its storage.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        _fail(path, f"cannot read PyTorch weights ({exc.strerror or exc})")
    f = io.BytesIO(raw)

    magic, _ = _load_pickle(f, path, "header")
    if magic != MAGIC_NUMBER or not _is_int(magic):
        _fail(path, "not a legacy PyTorch .pth file (wrong magic number)")
    version, _ = _load_pickle(f, path, "header")
    if version != PROTOCOL_VERSION or not _is_int(version):
        _fail(path, f"unsupported PyTorch legacy protocol version {version!r:.40}")
    sys_info, _ = _load_pickle(f, path, "header")
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        _fail(path, "only little-endian legacy PyTorch files are supported")

    state, unpickler = _load_pickle(f, path, "state dict")
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, _TensorRef) for k, v in state.items()
    ):
        _fail(path, "pickle is not a plain state dict of name -> tensor")
    keys, _ = _load_pickle(f, path, "storage key list")
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        _fail(path, "storage key list is malformed")
    if len(set(keys)) != len(keys) or set(keys) != set(unpickler.storages):
        _fail(path, "storage key list does not match the storages the tensors use")

    arrays: dict[str, np.ndarray] = {}
    for key in keys:
        ref = unpickler.storages[key]
        (count,) = struct.unpack("<q", _read_exact(f, 8, path, f"storage {key!r} size"))
        if count != ref.numel:
            _fail(path, f"storage {key!r} holds {count} elements but {ref.numel} were declared")
        nbytes = count * ref.dtype.itemsize
        if nbytes > len(raw) - f.tell():
            _fail(path, f"file is truncated inside storage {key!r}")
        data = _read_exact(f, nbytes, path, f"storage {key!r}")
        arrays[key] = np.frombuffer(data, dtype=ref.dtype)
    if f.tell() != len(raw):
        _fail(path, f"{len(raw) - f.tell()} unexpected trailing bytes after the last storage")

    return {name: _materialise(name, t, arrays[t.storage.key], path) for name, t in state.items()}
