"""The restricted PyTorch unpickler: inert stand-ins for the few globals a tensor state dict or
a TorchScript module's attributes need (``collections.OrderedDict``,
``torch._utils._rebuild_tensor_v2``, the numeric ``torch.*Storage`` types and, in zip archives
only, ``torch.jit._pickle.build_intlist`` and ``__torch__.*`` classes as ``TorchScriptObject``
containers). Anything else is refused with a one-line ``UserError``; nothing in a file runs.
The file formats around these pickles are read by render.weights.torch_pth.
"""

from __future__ import annotations

import collections
import pickle
import re
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO, ClassVar, NoReturn

import numpy as np

from render.errors import UserError

MAX_TENSOR_ELEMENTS = 1 << 30  # one materialised tensor (guards stride-0 "broadcast" shapes)
MAX_NDIM = 16
MAX_ENTRIES = 1 << 16
MAX_NESTING = 200

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
class StorageType:
    """Inert stand-in for a ``torch.<X>Storage`` class: just its name and numpy dtype."""

    name: str
    dtype: np.dtype


@dataclass(frozen=True)
class StorageRef:
    """A storage referenced by persistent id; its bytes come later in the file."""

    key: str
    dtype: np.dtype
    numel: int


@dataclass(frozen=True)
class TensorRef:
    """What ``_rebuild_tensor_v2`` would build: a strided view into a storage."""

    storage: StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


class Refused(pickle.UnpicklingError):
    """Raised inside the unpickler for content we will not build; reported as its message."""


class TorchScriptObject:
    """Inert stand-in for a pickled ``__torch__.*`` object (a scripted module): its TorchScript
    type name and its attribute dict (``state``). Built without running any of the archive's code.

    One subclass is made per type name (pickle's NEWOBJ needs a class); see ``type_name``.
    """

    type_name: ClassVar[str] = "__torch__"

    def __new__(cls, *args: Any) -> TorchScriptObject:
        if args:
            raise Refused(f"refusing arguments to TorchScript object {cls.type_name}")
        obj = super().__new__(cls)
        obj.state = {}
        return obj

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, dict) and all(isinstance(k, str) for k in state)):
            raise Refused(f"TorchScript object {self.type_name} has a non-attribute state")
        self.state = state

    def __repr__(self) -> str:
        return f"<{self.type_name} {sorted(self.state)}>"

    @property
    def short_type(self) -> str:
        """The class name without module or TorchScript mangling, e.g. ``Conv2dLayer``."""
        return self.type_name.rsplit(".", 1)[-1]


def fail(path: str, message: str) -> NoReturn:
    raise UserError(f"{path}: {message}")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def int_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and all(is_int(v) for v in value)


def _build_intlist(items: Any) -> list[int]:
    """Inert ``torch.jit._pickle.build_intlist``: a list of ints, checked."""
    if not (isinstance(items, list) and all(is_int(v) for v in items)):
        raise Refused("build_intlist expects a list of integers")
    return items


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a tensor state dict needs, to inert stand-ins.

    ``zip_format`` also admits what a zip archive's ``data.pkl`` needs: ``__torch__.*`` classes
    (as ``TorchScriptObject`` subclasses), ``build_intlist`` and 5-field storage persistent ids.
    """

    def __init__(self, file: BinaryIO, path: str, zip_format: bool = False) -> None:
        super().__init__(file)
        self._path = path
        self._zip = zip_format
        self._classes: dict[str, type[TorchScriptObject]] = {}
        self.storages: dict[str, StorageRef] = {}

    def find_class(self, module: str, name: str) -> Any:
        """Allow-list of globals; everything else (os.system, builtins.eval, ...) is refused."""
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return self._rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(name, STORAGE_DTYPES[name])
        if self._zip and (module, name) == ("torch.jit._pickle", "build_intlist"):
            return _build_intlist
        if (self._zip and _TORCHSCRIPT_NAME.fullmatch(module) and _IDENTIFIER.fullmatch(name)
                and len(self._classes) < MAX_ENTRIES):
            return self._script_class(f"{module}.{name}")
        allowed = "OrderedDict/_rebuild_tensor_v2/numeric torch storages"
        if self._zip:
            allowed += "/build_intlist/__torch__ module containers"
        fail(self._path, f"refusing to unpickle global '{module}.{name}' (only tensor state "
                          f"dicts of {allowed} are allowed)")

    def _script_class(self, type_name: str) -> type[TorchScriptObject]:
        if type_name not in self._classes:
            self._classes[type_name] = type(
                "TorchScriptObject", (TorchScriptObject,), {"type_name": type_name}
            )
        return self._classes[type_name]

    def persistent_load(self, pid: Any) -> StorageRef:
        """Resolve ``('storage', type, key, location, numel[, view_metadata])`` to a reference
        (the legacy format has 6 fields, the zip format 5)."""
        fields = 5 if self._zip else 6
        if not (isinstance(pid, tuple) and len(pid) == fields and pid[0] == "storage"):
            fail(self._path, f"unsupported persistent id {pid!r:.80}")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(storage_type, StorageType):
            fail(self._path, f"persistent id names a non-storage type {storage_type!r:.80}")
        if not isinstance(key, str) or not is_int(numel) or numel < 0:
            fail(self._path, f"malformed storage reference {pid!r:.80}")
        if self._zip and not _STORAGE_KEY.fullmatch(key):
            fail(self._path, f"malformed storage key {key!r:.80}")
        if not self._zip and pid[5] is not None:
            fail(self._path, f"storage views are not supported (storage {key!r})")
        ref = StorageRef(key, storage_type.dtype, numel)
        if self.storages.setdefault(key, ref) != ref:
            fail(self._path, f"storage {key!r} is referenced with conflicting type or size")
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
    ) -> TensorRef:
        """Record the tensor's view parameters; data is attached once storages are read."""
        if not isinstance(storage, StorageRef):
            fail(self._path, "tensor is not backed by a storage")
        if not (is_int(storage_offset) and int_tuple(size) and int_tuple(stride)):
            fail(self._path, f"malformed tensor in storage {storage.key!r}")
        return TensorRef(storage, storage_offset, size, stride)


def load_pickle(
    f: BinaryIO, path: str, what: str, zip_format: bool = False
) -> tuple[Any, RestrictedUnpickler]:
    unpickler = RestrictedUnpickler(f, path, zip_format)
    try:
        return unpickler.load(), unpickler
    except UserError:
        raise
    except Refused as exc:
        fail(path, f"refusing {what}: {exc}")
    except (EOFError, pickle.UnpicklingError, struct.error) as exc:
        fail(path, f"truncated or corrupt {what} ({type(exc).__name__}: {exc})")
    except RecursionError:
        fail(path, f"{what} is nested too deeply")
    except Exception as exc:  # malformed opcodes surface as assorted builtin errors
        fail(path, f"corrupt {what} ({type(exc).__name__}: {exc})")


def read_exact(f: BinaryIO, n: int, path: str, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        fail(path, f"file is truncated: expected {n} bytes of {what}, got {len(data)}")
    return data


def materialise(name: str, t: TensorRef, storage: np.ndarray, path: str) -> np.ndarray:
    """Copy the strided view described by ``t`` out of its storage, after bounds checks."""
    if any(s < 0 for s in t.shape) or len(t.shape) != len(t.stride) or len(t.shape) > MAX_NDIM:
        fail(path, f"tensor {name!r} has invalid shape {t.shape} / stride {t.stride}")
    if any(s < 0 for s in t.stride) or t.offset < 0:
        fail(path, f"tensor {name!r} has a negative stride or offset")
    if 0 in t.shape:
        return np.zeros(t.shape, dtype=storage.dtype)
    if np.prod([float(n) for n in t.shape]) > MAX_TENSOR_ELEMENTS:
        fail(path, f"tensor {name!r} has an absurd shape {t.shape!s:.80}")
    last = t.offset + sum((n - 1) * s for n, s in zip(t.shape, t.stride, strict=True))
    if last >= storage.size:
        fail(
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
