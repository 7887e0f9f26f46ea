"""Helpers shared by the CUDA kernel launchers: dtype checks, element strides, launch sizes.

Launchers never import CuPy themselves: they take the ``CUDADevice`` (bound by
``CUDABackend.bind``, with its device and stream current) and ``cupy.ndarray`` operands, so
these modules import on machines without CuPy (the compile test reads ``VARIANTS`` from them).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tensorcore.errors import KernelUnsupported
from tensorcore.strides import contiguous_strides  # noqa: F401 - re-exported to the launchers

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
BLOCK = 256  # threads per block of the elementwise and per-element kernels
MAX_DIMS = 8


def is_array(x: Any) -> bool:
    """Whether ``x`` is a device array (anything with shape, dtype and a data pointer). NumPy
    scalars have all four attributes too, and are the launchers' scalar arguments: not arrays."""
    return (not isinstance(x, np.generic) and hasattr(x, "data") and hasattr(x, "shape") and hasattr(x, "dtype")
            and hasattr(x, "strides"))


def float_dtype(op: str, *arrays: Any) -> np.dtype:
    """The one float dtype (float32 or float64) of ``arrays``, else ``KernelUnsupported``."""
    if not all(is_array(a) for a in arrays):
        raise KernelUnsupported(f"{op}: operands must be device arrays")
    dtypes = {np.dtype(a.dtype) for a in arrays}
    if len(dtypes) != 1 or next(iter(dtypes)) not in FLOATS:
        raise KernelUnsupported(f"{op}: CUDA kernels take one of float32/float64, got {sorted(map(str, dtypes))}")
    return next(iter(dtypes))


def defines(dtype: np.dtype, *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    """Build defines: the element type (``DTYPE``), then ``extra``."""
    return (("DTYPE", CTYPES[np.dtype(dtype)]),) + tuple(extra)


def elem_strides(x: Any) -> tuple[int, ...]:
    """``x``'s strides in elements (CuPy's are in bytes)."""
    size = x.dtype.itemsize
    if any(s % size for s in x.strides):
        raise KernelUnsupported("strides that are not a multiple of the element size")
    return tuple(s // size for s in x.strides)


def is_contiguous(x: Any) -> bool:
    """C-contiguous (size-1 dimensions may have any stride)."""
    step = 1
    for n, s in zip(reversed(x.shape), reversed(elem_strides(x))):
        if n != 1 and s != step:
            return False
        step *= n
    return True


def grid_1d(dev: Any, n: int, block: int = BLOCK) -> tuple[int]:
    """Blocks for a grid-stride loop over ``n`` elements: enough to fill the device a few times
    over, not one per element (the loop covers the rest)."""
    return (max(1, min(-(-n // block), dev.sm_count * 32)),)


def size(shape: tuple[int, ...]) -> int:
    """Number of elements of ``shape``."""
    return math.prod(shape)


def i64(v: int) -> np.int64:
    """A kernel's ``i64`` argument."""
    return np.int64(v)


def cdiv(p: int, q: int) -> int:
    """``ceil(p / q)`` for non-negative ints."""
    return -(-p // q)



def int_arg(name: str, value: int) -> np.int32:
    """A kernel's ``int`` argument, or ``KernelUnsupported`` where it does not fit in 32 bits."""
    if not -(2**31) <= value < 2**31:
        raise KernelUnsupported(f"{name} = {value} does not fit the kernel's 32-bit int")
    return np.int32(value)
