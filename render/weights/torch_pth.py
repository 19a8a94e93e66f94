"""Read PyTorch weights into numpy arrays without torch: legacy ``.pth`` state dicts and zip
archives (``torch.save`` since 1.6, and TorchScript ``torch.jit.save`` modules).

Why: bundled ImageNet weights ship only as PyTorch files (EfficientNet-Lite0 as a legacy ``.pth``,
the 2015 Inception-v3 as a TorchScript archive), and dreamreel must not depend on torch. These
files are pickles, read with render.weights.torch_pickle's restricted unpickler (nothing in a
file runs; anything but tensors and inert module containers is refused).

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

import io
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from render.weights.torch_pickle import (
    MAX_ENTRIES,
    MAX_NESTING,
    StorageRef,
    TensorRef,
    TorchScriptObject,
    fail,
    is_int,
    load_pickle,
    materialise,
    read_exact,
)

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
ZIP_MAGIC = b"PK\x03\x04"
MAX_PICKLE_BYTES = 64 << 20  # a data.pkl this large is no weights file (ours: 28 KB)
MAX_STORAGE_BYTES = 4 << 30  # all storages of one archive together (ours: 87 MB)
MAX_RATIO = 200  # uncompressed / compressed size of one entry (PyTorch stores, ratio 1)


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
        fail(path, "archive holds neither a state dict nor a scripted module")
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        fail(path, f"cannot read PyTorch weights ({exc.strerror or exc})")
    f = io.BytesIO(raw)

    magic, _ = load_pickle(f, path, "header")
    if magic != MAGIC_NUMBER or not is_int(magic):
        fail(path, "not a legacy PyTorch .pth file (wrong magic number)")
    version, _ = load_pickle(f, path, "header")
    if version != PROTOCOL_VERSION or not is_int(version):
        fail(path, f"unsupported PyTorch legacy protocol version {version!r:.40}")
    sys_info, _ = load_pickle(f, path, "header")
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        fail(path, "only little-endian legacy PyTorch files are supported")

    state, unpickler = load_pickle(f, path, "state dict")
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, TensorRef) for k, v in state.items()
    ):
        fail(path, "pickle is not a plain state dict of name -> tensor")
    keys, _ = load_pickle(f, path, "storage key list")
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        fail(path, "storage key list is malformed")
    if len(set(keys)) != len(keys) or set(keys) != set(unpickler.storages):
        fail(path, "storage key list does not match the storages the tensors use")

    arrays: dict[str, np.ndarray] = {}
    for key in keys:
        ref = unpickler.storages[key]
        (count,) = struct.unpack("<q", read_exact(f, 8, path, f"storage {key!r} size"))
        if count != ref.numel:
            fail(path, f"storage {key!r} holds {count} elements but {ref.numel} were declared")
        nbytes = count * ref.dtype.itemsize
        if nbytes > len(raw) - f.tell():
            fail(path, f"file is truncated inside storage {key!r}")
        data = read_exact(f, nbytes, path, f"storage {key!r}")
        arrays[key] = np.frombuffer(data, dtype=ref.dtype)
    if f.tell() != len(raw):
        fail(path, f"{len(raw) - f.tell()} unexpected trailing bytes after the last storage")

    return {name: materialise(name, t, arrays[t.storage.key], path) for name, t in state.items()}


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
        fail(path, f"archive entry {info.filename!r} holds {info.file_size} bytes, "
                    f"expected {size}")
    if size > (1 << 20) and size > MAX_RATIO * info.compress_size:
        ratio = size // max(1, info.compress_size)
        fail(path, f"archive entry {info.filename!r} is compressed {ratio}:1 (a zip bomb?)")
    try:
        with zf.open(info) as fh:
            data = fh.read(size + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError,
            NotImplementedError) as exc:
        fail(path, f"corrupt archive entry {info.filename!r} ({type(exc).__name__}: {exc})")
    if len(data) != size:
        fail(path, f"archive entry {info.filename!r} holds {len(data)} bytes, expected {size}")
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
        fail(path, f"cannot read PyTorch weights ({exc.strerror or exc})")
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError) as exc:
        fail(path, f"not a readable PyTorch zip archive ({type(exc).__name__}: {exc})")
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ENTRIES:
            fail(path, f"archive has {len(infos)} entries (limit {MAX_ENTRIES})")
        entries = {info.filename: info for info in infos}
        roots = [n for n in entries if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(roots) != 1:
            fail(path, "not a PyTorch archive (expected exactly one <root>/data.pkl)")
        root = roots[0][: -len("data.pkl")]
        pkl = entries[roots[0]]
        if pkl.file_size > MAX_PICKLE_BYTES:
            fail(path, f"data.pkl is {pkl.file_size} bytes (limit {MAX_PICKLE_BYTES})")
        raw = _read_entry(zf, pkl, pkl.file_size, path)
        f = io.BytesIO(raw)
        tree, unpickler = load_pickle(f, path, "data.pkl", zip_format=True)
        if f.tell() != len(raw):
            fail(path, "unexpected bytes after the pickle in data.pkl")

        total = sum(r.numel * r.dtype.itemsize for r in unpickler.storages.values())
        if total > MAX_STORAGE_BYTES:
            fail(path, f"storages declare {total} bytes (limit {MAX_STORAGE_BYTES})")
        arrays: dict[str, np.ndarray] = {}
        for key, ref in unpickler.storages.items():
            info = entries.get(f"{root}data/{key}")
            if info is None:
                fail(path, f"storage {key!r} is missing from the archive")
            data = _read_entry(zf, info, ref.numel * ref.dtype.itemsize, path)
            arrays[key] = np.frombuffer(data, dtype=ref.dtype)
    return _resolve(tree, arrays, path, "", 0)


def _resolve(obj: Any, arrays: dict[str, np.ndarray], path: str, name: str, depth: int) -> Any:
    """``obj`` with every tensor reference replaced by its materialised array."""
    if depth > MAX_NESTING:
        fail(path, "archive objects are nested too deeply")
    if isinstance(obj, TensorRef):
        return materialise(name or "tensor", obj, arrays[obj.storage.key], path)
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
    if isinstance(obj, StorageRef):
        fail(path, f"bare storage {obj.key!r} outside a tensor")
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
