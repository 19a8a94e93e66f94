"""Read PyTorch weights into numpy arrays without torch: legacy ``.pth`` state dicts and zip
archives (``torch.save`` since 1.6, and TorchScript ``torch.jit.save`` modules).

Why: bundled ImageNet weights ship only as PyTorch files (EfficientNet-Lite0 as a legacy ``.pth``,
the 2015 Inception-v3 as a TorchScript archive), and dreamreel must not depend on torch. These
files are pickles, and unpickling untrusted data can run arbitrary code, so this reader uses a
restricted ``pickle.Unpickler`` whose ``find_class`` hands out only inert stand-ins for the
handful of globals a tensor state dict or a scripted module's attributes need:
``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``, the numeric ``torch.*Storage``
types and, in zip archives only, ``torch.jit._pickle.build_intlist`` (a scripted module's
``List[int]`` attribute, e.g. a conv's padding) and ``__torch__.*`` module classes, which become
``TorchScriptObject`` containers holding the module's attribute dict (never the real class: none
of the archive's code is run or even read). Anything else is refused with a one-line
``UserError``.

Legacy layout: pickle(magic number), pickle(protocol version 1001), pickle(sys_info dict),
pickle(state dict; storages referenced by persistent id), pickle(list of storage keys), then per
key in that order a little-endian int64 element count followed by the raw storage bytes.

Zip layout: ``<root>/data.pkl`` is the pickled object (storages referenced by persistent id
``('storage', type, key, location, numel)``), and ``<root>/data/<key>`` holds each storage's raw
little-endian bytes. Other entries (``code/``, ``constants.pkl``, ``version``) are not read.
Sizes are bounded before anything is read or allocated (``MAX_PICKLE_BYTES``,
``MAX_STORAGE_BYTES``, ``MAX_TENSOR_ELEMENTS``), so a zip bomb or an absurd tensor shape is
refused instead of exhausting memory.

Strided (e.g. transposed) tensors are supported via ``numpy.lib.stride_tricks.as_strided``; every
returned array is a fresh, writeable, C-contiguous copy.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, ClassVar, NoReturn

import numpy as np

from render.errors import UserError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
ZIP_MAGIC = b"PK\x03\x04"

MAX_PICKLE_BYTES = 64 << 20  # a data.pkl this large is no weights file (ours: 28 KB)
MAX_STORAGE_BYTES = 4 << 30  # all storages of one archive together (ours: 87 MB)
MAX_TENSOR_ELEMENTS = 1 << 30  # one materialised tensor (guards stride-0 "broadcast" shapes)
MAX_NDIM = 16
MAX_ENTRIES = 1 << 16
MAX_NESTING = 200
MAX_RATIO = 200  # uncompressed / compressed size of one entry (PyTorch stores, ratio 1)

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

_TORCHSCRIPT_NAME = re.compile(r"__torch__(\.[A-Za-z_][A-Za-z0-9_]*)*")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STORAGE_KEY = re.compile(r"[A-Za-z0-9_]{1,64}")


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


class _Refused(pickle.UnpicklingError):
    """Raised inside the unpickler for content we will not build; reported as its message."""


class TorchScriptObject:
    """Inert stand-in for a pickled ``__torch__.*`` object (a scripted module): its TorchScript
    type name and its attribute dict (``state``). Built without running any of the archive's code.

    One subclass is made per type name (pickle's NEWOBJ needs a class); see ``type_name``.
    """

    type_name: ClassVar[str] = "__torch__"

    def __new__(cls, *args: Any) -> TorchScriptObject:
        if args:
            raise _Refused(f"refusing arguments to TorchScript object {cls.type_name}")
        obj = super().__new__(cls)
        obj.state = {}
        return obj

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, dict) and all(isinstance(k, str) for k in state)):
            raise _Refused(f"TorchScript object {self.type_name} has a non-attribute state")
        self.state = state

    def __repr__(self) -> str:
        return f"<{self.type_name} {sorted(self.state)}>"

    @property
    def short_type(self) -> str:
        """The class name without module or TorchScript mangling, e.g. ``Conv2dLayer``."""
        return self.type_name.rsplit(".", 1)[-1]


def _fail(path: str, message: str) -> NoReturn:
    raise UserError(f"{path}: {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and all(_is_int(v) for v in value)


def _build_intlist(items: Any) -> list[int]:
    """Inert ``torch.jit._pickle.build_intlist``: a list of ints, checked."""
    if not (isinstance(items, list) and all(_is_int(v) for v in items)):
        raise _Refused("build_intlist expects a list of integers")
    return items


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a tensor state dict needs, to inert stand-ins.

    ``zip_format`` also admits what a zip archive's ``data.pkl`` needs: ``__torch__.*`` classes
    (as ``TorchScriptObject`` subclasses), ``build_intlist`` and 5-field storage persistent ids.
    """

    def __init__(self, file: BinaryIO, path: str, zip_format: bool = False) -> None:
        super().__init__(file)
        self._path = path
        self._zip = zip_format
        self._classes: dict[str, type[TorchScriptObject]] = {}
        self.storages: dict[str, _StorageRef] = {}

    def find_class(self, module: str, name: str) -> Any:
        """Allow-list of globals; everything else (os.system, builtins.eval, ...) is refused."""
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return self._rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name, STORAGE_DTYPES[name])
        if self._zip and (module, name) == ("torch.jit._pickle", "build_intlist"):
            return _build_intlist
        if (self._zip and _TORCHSCRIPT_NAME.fullmatch(module) and _IDENTIFIER.fullmatch(name)
                and len(self._classes) < MAX_ENTRIES):
            return self._script_class(f"{module}.{name}")
        allowed = "OrderedDict/_rebuild_tensor_v2/numeric torch storages"
        if self._zip:
            allowed += "/build_intlist/__torch__ module containers"
        _fail(self._path, f"refusing to unpickle global '{module}.{name}' (only tensor state "
                          f"dicts of {allowed} are allowed)")

    def _script_class(self, type_name: str) -> type[TorchScriptObject]:
        if type_name not in self._classes:
            self._classes[type_name] = type(
                "TorchScriptObject", (TorchScriptObject,), {"type_name": type_name}
            )
        return self._classes[type_name]

    def persistent_load(self, pid: Any) -> _StorageRef:
        """Resolve ``('storage', type, key, location, numel[, view_metadata])`` to a reference
        (the legacy format has 6 fields, the zip format 5)."""
        fields = 5 if self._zip else 6
        if not (isinstance(pid, tuple) and len(pid) == fields and pid[0] == "storage"):
            _fail(self._path, f"unsupported persistent id {pid!r:.80}")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(storage_type, _StorageType):
            _fail(self._path, f"persistent id names a non-storage type {storage_type!r:.80}")
        if not isinstance(key, str) or not _is_int(numel) or numel < 0:
            _fail(self._path, f"malformed storage reference {pid!r:.80}")
        if self._zip and not _STORAGE_KEY.fullmatch(key):
            _fail(self._path, f"malformed storage key {key!r:.80}")
        if not self._zip and pid[5] is not None:
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


def _load_pickle(
    f: BinaryIO, path: str, what: str, zip_format: bool = False
) -> tuple[Any, _RestrictedUnpickler]:
    unpickler = _RestrictedUnpickler(f, path, zip_format)
    try:
        return unpickler.load(), unpickler
    except UserError:
        raise
    except _Refused as exc:
        _fail(path, f"refusing {what}: {exc}")
    except (EOFError, pickle.UnpicklingError, struct.error) as exc:
        _fail(path, f"truncated or corrupt {what} ({type(exc).__name__}: {exc})")
    except RecursionError:
        _fail(path, f"{what} is nested too deeply")
    except Exception as exc:  # malformed opcodes surface as assorted builtin errors
        _fail(path, f"corrupt {what} ({type(exc).__name__}: {exc})")


def _read_exact(f: BinaryIO, n: int, path: str, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        _fail(path, f"file is truncated: expected {n} bytes of {what}, got {len(data)}")
    return data


def _materialise(name: str, t: _TensorRef, storage: np.ndarray, path: str) -> np.ndarray:
    """Copy the strided view described by ``t`` out of its storage, after bounds checks."""
    if any(s < 0 for s in t.shape) or len(t.shape) != len(t.stride) or len(t.shape) > MAX_NDIM:
        _fail(path, f"tensor {name!r} has invalid shape {t.shape} / stride {t.stride}")
    if any(s < 0 for s in t.stride) or t.offset < 0:
        _fail(path, f"tensor {name!r} has a negative stride or offset")
    if 0 in t.shape:
        return np.zeros(t.shape, dtype=storage.dtype)
    if np.prod([float(n) for n in t.shape]) > MAX_TENSOR_ELEMENTS:
        _fail(path, f"tensor {name!r} has an absurd shape {t.shape!s:.80}")
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
    """Read PyTorch weights as ``{name: numpy array}`` without importing torch.

    Legacy ``.pth`` files hold a state dict; zip archives hold a state dict (``torch.save``) or a
    scripted module (``torch.jit.save``), whose tensors are named by attribute path, e.g.
    ``net.layers.conv.weight`` (see ``load_archive`` for the whole module tree).

    Raises ``UserError`` (one line naming the file) for a disallowed pickle global, a wrong magic
    number or protocol, a truncated file, a storage of the wrong size, or a tensor that does not
    fit its storage.
    """
    path = os.fspath(path)
    if _is_zip(path):
        tree = load_archive(path)
        if isinstance(tree, dict) and all(
            isinstance(k, str) and isinstance(v, np.ndarray) for k, v in tree.items()
        ):
            return dict(tree)
        if isinstance(tree, TorchScriptObject):
            return dict(iter_tensors(tree))
        _fail(path, "archive holds neither a state dict nor a scripted module")
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


# --- zip archives (torch.save >= 1.6, torch.jit.save) ---


def _is_zip(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == ZIP_MAGIC
    except OSError:
        return False  # reported by the caller's own open


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, size: int, path: str) -> bytes:
    """Exactly ``size`` bytes of ``info``; at most size + 1 are ever decompressed."""
    if info.file_size != size:
        _fail(path, f"archive entry {info.filename!r} holds {info.file_size} bytes, "
                    f"expected {size}")
    if size > (1 << 20) and size > MAX_RATIO * info.compress_size:
        ratio = size // max(1, info.compress_size)
        _fail(path, f"archive entry {info.filename!r} is compressed {ratio}:1 (a zip bomb?)")
    try:
        with zf.open(info) as fh:
            data = fh.read(size + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError,
            NotImplementedError) as exc:
        _fail(path, f"corrupt archive entry {info.filename!r} ({type(exc).__name__}: {exc})")
    if len(data) != size:
        _fail(path, f"archive entry {info.filename!r} holds {len(data)} bytes, expected {size}")
    return data


def load_archive(path: str | os.PathLike[str]) -> Any:
    """The object pickled in a PyTorch zip archive, with every tensor as a numpy array.

    A ``torch.save``d state dict comes back as a dict; a TorchScript module as a tree of
    ``TorchScriptObject`` (``.type_name``, ``.state``: the module's attributes, submodules and
    tensors). Raises ``UserError`` (one line naming the file) for anything outside the allow-list
    (see the module docstring), a malformed or oversized archive, or a tensor that does not fit
    its storage; nothing in the archive is executed.
    """
    path = os.fspath(path)
    try:
        zf = zipfile.ZipFile(path)
    except OSError as exc:
        _fail(path, f"cannot read PyTorch weights ({exc.strerror or exc})")
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError) as exc:
        _fail(path, f"not a readable PyTorch zip archive ({type(exc).__name__}: {exc})")
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ENTRIES:
            _fail(path, f"archive has {len(infos)} entries (limit {MAX_ENTRIES})")
        entries = {info.filename: info for info in infos}
        roots = [n for n in entries if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(roots) != 1:
            _fail(path, "not a PyTorch archive (expected exactly one <root>/data.pkl)")
        root = roots[0][: -len("data.pkl")]
        pkl = entries[roots[0]]
        if pkl.file_size > MAX_PICKLE_BYTES:
            _fail(path, f"data.pkl is {pkl.file_size} bytes (limit {MAX_PICKLE_BYTES})")
        raw = _read_entry(zf, pkl, pkl.file_size, path)
        f = io.BytesIO(raw)
        tree, unpickler = _load_pickle(f, path, "data.pkl", zip_format=True)
        if f.tell() != len(raw):
            _fail(path, "unexpected bytes after the pickle in data.pkl")

        total = sum(r.numel * r.dtype.itemsize for r in unpickler.storages.values())
        if total > MAX_STORAGE_BYTES:
            _fail(path, f"storages declare {total} bytes (limit {MAX_STORAGE_BYTES})")
        arrays: dict[str, np.ndarray] = {}
        for key, ref in unpickler.storages.items():
            info = entries.get(f"{root}data/{key}")
            if info is None:
                _fail(path, f"storage {key!r} is missing from the archive")
            data = _read_entry(zf, info, ref.numel * ref.dtype.itemsize, path)
            arrays[key] = np.frombuffer(data, dtype=ref.dtype)
    return _resolve(tree, arrays, path, "", 0)


def _resolve(obj: Any, arrays: dict[str, np.ndarray], path: str, name: str, depth: int) -> Any:
    """``obj`` with every tensor reference replaced by its materialised array."""
    if depth > MAX_NESTING:
        _fail(path, "archive objects are nested too deeply")
    if isinstance(obj, _TensorRef):
        return _materialise(name or "tensor", obj, arrays[obj.storage.key], path)
    if isinstance(obj, TorchScriptObject):
        obj.state = {
            k: _resolve(v, arrays, path, f"{name}.{k}" if name else k, depth + 1)
            for k, v in obj.state.items()
        }
        return obj
    if isinstance(obj, dict):
        return type(obj)(
            (k, _resolve(v, arrays, path, f"{name}.{k}" if name else str(k), depth + 1))
            for k, v in obj.items()
        )
    if isinstance(obj, (list, tuple)):
        return type(obj)(
            _resolve(v, arrays, path, f"{name}[{i}]", depth + 1) for i, v in enumerate(obj)
        )
    if isinstance(obj, _StorageRef):
        _fail(path, f"bare storage {obj.key!r} outside a tensor")
    return obj


def iter_tensors(obj: Any, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
    """(dotted attribute path, array) for every tensor in a ``load_archive`` module tree."""
    items: Any = ()
    if isinstance(obj, TorchScriptObject):
        items = obj.state.items()
    elif isinstance(obj, dict):
        items = obj.items()
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, np.ndarray):
            yield name, value
        elif isinstance(value, (TorchScriptObject, dict)):
            yield from iter_tensors(value, f"{name}.")
