"""``tc.save`` and ``tc.load``: tensors in safetensors files, written atomically, read safely.

The format is safetensors (a JSON header, then raw little-endian data) through the
``safetensors`` library's NumPy API: loading never runs code, unlike pickle, which tensorcore
never reads. Tensors on any device are copied to the host to be written.

tensorcore adds two things of its own:
- **Atomic writes.** A file is written under a temporary name in the same directory, flushed
  and fsynced, renamed over the target, and the directory is fsynced. A process killed at
  any moment leaves either the old file or the new one, never a torn one.
- **Checks before anything is used.** The header is checked against the file's size (a
  truncated file is named as such), foreign formats (pickle, PyTorch zip, .npy, HDF5) are
  recognised and refused, and each tensor's CRC-32, stored in the metadata, is verified.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import tempfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tensorcore.errors import SerializationError
from tensorcore.tensor import Tensor

# Metadata keys that tensorcore writes; user metadata may not use the prefix.
RESERVED_PREFIX = "tensorcore."
CRC_KEY = "tensorcore.crc32"
TEMP_SUFFIX = ".tmp"

_MAX_HEADER = 100 * 2**20  # safetensors' own limit on the JSON header
_FOREIGN_FORMATS = (  # magic bytes of formats people mistake for checkpoints
    (b"PK\x03\x04", "a zip archive (PyTorch's torch.save format, which unpickles on load)"),
    (b"\x93NUMPY", "a NumPy .npy file"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (Keras .h5)"),
)


def save(tensors: Mapping[str, Any], path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """Write ``tensors`` (name -> tensor on any device, or NumPy array) to a safetensors file.

    ``metadata`` is extra string -> string data stored in the header. The write is atomic:
    an existing file at ``path`` is replaced only once the new one is complete on disk.
    """
    arrays = to_host_arrays(tensors, "tc.save")
    write_atomic(Path(path), arrays, user_metadata(metadata, "tc.save"))


def load(path: str | os.PathLike, device: Any = None) -> dict[str, Tensor]:
    """Read a safetensors file into a dict of tensors on ``device`` (default: the current device).

    Any safetensors file loads (one written by another library too); a file that is truncated,
    corrupted or not safetensors raises :class:`~tensorcore.errors.SerializationError` naming the
    file and what is wrong.
    """
    from tensorcore.ops.creation import from_host

    arrays, _ = read(Path(path))
    return {name: from_host(array, device) for name, array in arrays.items()}


def load_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata stored in a safetensors file's header (without reading its tensors)."""
    path = Path(path)
    with _open_for_reading(path) as f:
        header, _ = _read_header(path, f, os.fstat(f.fileno()).st_size)
    return dict(header.get("__metadata__") or {})


# --- the pieces, shared with tensorcore.train's checkpoints -----------------------------------
def to_host_arrays(tensors: Mapping[str, Any], what: str) -> dict[str, np.ndarray]:
    """Contiguous host copies of ``tensors``, with names and types checked first."""
    if not isinstance(tensors, Mapping):
        raise TypeError(f"{what}: expected a dict of name -> tensor, got {type(tensors).__name__}")
    bad = [f"{name!r} ({type(value).__name__})" for name, value in tensors.items()
           if not isinstance(name, str) or not isinstance(value, (Tensor, np.ndarray))]
    if bad:
        raise TypeError(f"{what}: every key must be a string and every value a tensor or NumPy array; "
                        f"not so for {', '.join(bad)}")
    # np.asarray(order="C"), not np.ascontiguousarray, which turns 0-d arrays into 1-d ones
    return {name: np.asarray(value.numpy() if isinstance(value, Tensor) else value, order="C")
            for name, value in tensors.items()}


def user_metadata(metadata: Mapping[str, str] | None, what: str) -> dict[str, str]:
    """``metadata`` checked: strings only, and none of tensorcore's own keys."""
    metadata = dict(metadata or {})
    wrong = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
    if wrong:
        raise TypeError(f"{what}: metadata maps strings to strings (safetensors' rule); not so for {wrong}")
    reserved = [k for k in metadata if k.startswith(RESERVED_PREFIX)]
    if reserved:
        raise ValueError(f"{what}: metadata keys starting with {RESERVED_PREFIX!r} are tensorcore's own: {reserved}")
    return metadata


def write_atomic(path: Path, arrays: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Write a safetensors file at ``path`` so that a crash leaves the old file or the new one."""
    import safetensors.numpy

    metadata = dict(metadata)
    metadata[CRC_KEY] = json.dumps({name: _crc32(a) for name, a in arrays.items()})
    directory = path.parent
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=directory)
        os.close(fd)
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot write {path}: cannot create a file in {directory}: {exc.strerror}") from None
    try:
        safetensors.numpy.save_file(arrays, temp, metadata=metadata)
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException as exc:  # KeyboardInterrupt too: never leave the temporary file behind
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise type(exc)(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from exc
        if _is_io(exc):
            raise OSError(f"cannot write {path}: {exc}") from exc
        raise
    fsync_directory(directory)


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the rename itself still happened
    finally:
        os.close(fd)


def read(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read and check a safetensors file: (arrays, metadata)."""
    with _open_for_reading(path) as f:
        data = f.read()
    return parse(path, data)


def parse(path: Path, data: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Check and decode the bytes of a safetensors file read from ``path`` (named in errors)."""
    import safetensors
    import safetensors.numpy

    header, data_start = _check_header(path, data[:8], len(data), data)
    try:
        arrays = safetensors.numpy.load(data)
    except safetensors.SafetensorError as exc:
        raise SerializationError(f"{path}: not a valid safetensors file: {exc}") from None
    metadata = dict(header.get("__metadata__") or {})
    if CRC_KEY in metadata:
        _verify_crc(path, arrays, metadata[CRC_KEY])
    return arrays, metadata


def _open_for_reading(path: Path) -> Any:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{path} is a directory, not a safetensors file") from None


def _read_header(path: Path, f: Any, size: int) -> tuple[dict, int]:
    head = f.read(8)
    if len(head) == 8:
        (length,) = struct.unpack("<Q", head)
        if 0 < length <= min(_MAX_HEADER, size - 8):
            return _check_header(path, head, size, head + f.read(length))
    return _check_header(path, head, size, head)


def _check_header(path: Path, head: bytes, size: int, data: bytes) -> tuple[dict, int]:
    """The parsed header and where the data starts; raises naming what is wrong."""
    plausible = size >= 9 and 0 < struct.unpack("<Q", head[:8])[0] <= size - 8 and data[8:9] == b"{"
    if not plausible:  # then name the format it is, if it is a common one
        _refuse_foreign_format(path, head)
    if size < 8:
        raise SerializationError(f"{path} is {size} bytes long: too short for a safetensors file (truncated?)")
    (length,) = struct.unpack("<Q", head[:8])
    if length == 0 or length > _MAX_HEADER:
        raise SerializationError(f"{path} is not a safetensors file: its first 8 bytes give a header of "
                                 f"{length:,} bytes")
    if length > size - 8:
        raise SerializationError(f"{path} is truncated or not a safetensors file: its header says {length:,} "
                                 f"bytes, but only {size - 8:,} follow")
    try:
        header = json.loads(data[8:8 + length])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SerializationError(f"{path} is corrupted or not a safetensors file: its header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise SerializationError(f"{path} is not a safetensors file: its header is not a JSON object")
    ends = [entry.get("data_offsets", [0, 0])[1] for key, entry in header.items()
            if key != "__metadata__" and isinstance(entry, dict)]
    needed, present = max(ends, default=0), size - 8 - length
    if needed > present:
        raise SerializationError(f"{path} is truncated: its tensors need {needed:,} bytes of data, "
                                 f"the file has {present:,}")
    return header, 8 + length


def _refuse_foreign_format(path: Path, head: bytes) -> None:
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise SerializationError(f"{path} is a Python pickle, which can run code when loaded: tensorcore never "
                                 "loads pickles. Convert it to safetensors where it was made.")
    for magic, what in _FOREIGN_FORMATS:
        if head.startswith(magic):
            raise SerializationError(f"{path} is {what}, not a safetensors file")


def _crc32(array: np.ndarray) -> int:
    return zlib.crc32(memoryview(array).cast("B")) if array.size else 0


def _verify_crc(path: Path, arrays: dict[str, np.ndarray], stored: str) -> None:
    try:
        expected = json.loads(stored)
    except json.JSONDecodeError:
        raise SerializationError(f"{path}: its checksum metadata is corrupted") from None
    bad = sorted(name for name, array in arrays.items() if name in expected and _crc32(array) != expected[name])
    if bad:
        raise SerializationError(f"{path} is corrupted: the data of {', '.join(map(repr, bad))} fails its CRC-32 check")


def _is_io(exc: BaseException) -> bool:
    """Whether a writer's exception is an I/O failure (safetensors wraps them in its own type)."""
    return isinstance(exc, OSError) or "I/O error" in str(exc)
