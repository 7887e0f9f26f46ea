"""Helpers shared by the OpenCL kernel launchers: C type names, shape packing, outputs."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from tensorcore.backends.opencl import MAX_DIMS, CLArray, CLDevice

from tensorcore.errors import OpError

# NumPy dtype -> OpenCL C type. bool is stored as one byte, as in NumPy.
CTYPES = {
    np.dtype(np.bool_): "uchar", np.dtype(np.int8): "char", np.dtype(np.uint8): "uchar",
    np.dtype(np.int16): "short", np.dtype(np.uint16): "ushort", np.dtype(np.int32): "int",
    np.dtype(np.uint32): "uint", np.dtype(np.int64): "long", np.dtype(np.uint64): "ulong",
    np.dtype(np.float32): "float", np.dtype(np.float64): "double",
}


def ctype(dtype: np.dtype) -> str:
    """The OpenCL C type of a dtype; float16 has no kernels (those ops fall back to cpu)."""
    try:
        return CTYPES[np.dtype(dtype)]
    except KeyError:
        raise NotImplementedError(f"no OpenCL kernels for {dtype}") from None


@functools.lru_cache(maxsize=4096)
def long8(values: tuple[int, ...], pad: int) -> Any:
    """A tuple of at most 8 ints as an OpenCL long8, padded with ``pad``.

    Built with a NumPy view (``cltypes.make_long8`` costs ~8 us a call) and cached: the same
    shapes and strides come back every training step. Treat the result as read-only."""
    import pyopencl.cltypes as cltypes

    if len(values) > MAX_DIMS:
        raise OpError(f"OpenCL kernels handle at most {MAX_DIMS} dimensions, got {len(values)}")
    return np.array(tuple(values) + (pad,) * (MAX_DIMS - len(values)), np.int64).view(cltypes.long8)[0]


def shape_args(a: CLArray) -> tuple[Any, Any, np.int32]:
    """(shape, strides, ndim) of a view, as strided kernels take them."""
    return long8(a.shape, 1), long8(a.strides, 0), np.int32(len(a.shape))


def global_size(n: int, group: int = 256) -> tuple[int]:
    """A 1-D launch size of at least ``n``, rounded up to a multiple of ``group``."""
    return (max(group, -(-n // group) * group),)


def output(dev: CLDevice, shape: tuple[int, ...], dtype: Any) -> CLArray:
    """A new contiguous array on ``dev``."""
    return dev.empty(tuple(shape), dtype)
