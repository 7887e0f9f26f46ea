"""Shared machinery of the elementwise launchers: dtype checks, programs, operand layouts, launch.

Each launcher decides the computation dtype and whether it handles the inputs (raising
``KernelUnsupported`` before anything is written when it does not), then calls :func:`run`
with its tensor and scalar operands. ``run`` picks the kernel variant by layout:

- ``t``: a contiguous tensor with the output's shape (no index math: the fast path),
- ``k``: a Python scalar passed as a kernel argument, already converted to the computation type,
- ``v``: any other view (transpose, slice, broadcast), read through strides.

If every tensor operand is ``t`` the contiguous kernel runs (``add_tt``, ``add_tk``, ...),
otherwise the strided one (``add_vv``, ``add_vk``, ...), after merging dimensions that are
contiguous in every operand so the kernel's odometer has as few dimensions as possible.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from tensorcore.backends.opencl import MAX_DIMS, CLArray, CLDevice
from tensorcore.backends.opencl_ops._common import CTYPES, long8

from tensorcore.errors import KernelUnsupported

# Kind codes of the kernels' -D*_KIND defines (kernels/opencl/elementwise_loops.cl).
KINDS = {"b": 0, "i": 1, "u": 2, "f": 3}
UNSIGNED = {"char": "uchar", "short": "ushort", "int": "uint", "long": "ulong",
            "uchar": "uchar", "ushort": "ushort", "uint": "uint", "ulong": "ulong"}
BOOL = np.dtype(bool)

# Work split (see elementwise_loops.cl): each work-item takes `chunk` consecutive elements.
# At least MIN_CHUNK so small arrays are one item (launch cost dominates there); at most
# MAX_ITEMS items so large arrays still spread over every PoCL thread in big contiguous runs.
MIN_CHUNK = 4096
MAX_ITEMS = 256
LOCAL = (1,)  # one work-item per group: PoCL then compiles each kernel once, for any size

_kernels: dict[tuple, Any] = {}  # (device, source, kernel name, dtypes) -> kernel, no per-call tuple building


def check(dev: CLDevice, *dtypes: np.dtype) -> None:
    """Decline (``KernelUnsupported``) dtypes without kernels: float16, or float64 without fp64."""
    for dt in dtypes:
        if dt not in CTYPES:
            raise KernelUnsupported(f"no OpenCL elementwise kernels for {dt}")
        if dt == np.float64 and not dev.fp64:
            raise KernelUnsupported(f"opencl:{dev.index} has no float64")


def _kind_defines(prefix: str, dtype: np.dtype) -> tuple[tuple[str, str], ...]:
    ct = CTYPES[dtype]
    return ((f"{prefix}_KIND", str(KINDS[dtype.kind])), (f"{prefix}_BITS", str(8 * dtype.itemsize)),
            ("U" + prefix, UNSIGNED.get(ct, ct)))


def unary_kernel(dev: CLDevice, name: str, dtype: np.dtype) -> Any:
    """Kernel ``name`` of the unary program for ``dtype`` (one program holds every unary op)."""
    key = (dev, "u", name, dtype)
    k = _kernels.get(key)
    if k is None:
        defines = (("T", CTYPES[dtype]),) + _kind_defines("T", dtype)
        k = _kernels[key] = dev.kernel("elementwise.cl", name, defines)
    return k


def cast_kernel(dev: CLDevice, name: str, src: np.dtype, dst: np.dtype) -> Any:
    """Kernel ``name`` (``cast_t`` or ``cast_v``) of the cast program from ``src`` to ``dst``."""
    key = (dev, "c", name, src, dst)
    k = _kernels.get(key)
    if k is None:
        defines = (("T", CTYPES[src]), ("T_KIND", str(KINDS[src.kind])), ("TO", CTYPES[dst])) + _kind_defines("TO", dst)
        k = _kernels[key] = dev.kernel("elementwise.cl", name, defines)
    return k


def binary_kernel(dev: CLDevice, name: str, ta: np.dtype, tb: np.dtype, c: np.dtype) -> Any:
    """Kernel ``name`` of the binary program for input types ``ta``, ``tb`` and computation type ``c``."""
    key = (dev, "b", name, ta, tb, c)
    k = _kernels.get(key)
    if k is None:
        defines = (("TA", CTYPES[ta]), ("TB", CTYPES[tb]), ("C", CTYPES[c])) + _kind_defines("C", c)
        k = _kernels[key] = dev.kernel("elementwise_binary.cl", name, defines)
    return k


def scalar_dtype(x: Any) -> Any:
    """What ``np.result_type`` should see for operand ``x``: a tensor's dtype, or the weak scalar itself."""
    return x.dtype if isinstance(x, CLArray) else x


def scalar_arg(value: Any, dtype: np.dtype) -> np.generic:
    """Python scalar ``value`` as a kernel argument of ``dtype``, as NumPy would convert it.

    An integer that does not fit an integer ``dtype`` is declined: NumPy raises (or, for
    comparisons, special-cases it), so the cpu reference decides.
    """
    if dtype.kind in "iu":
        if isinstance(value, float):
            raise KernelUnsupported("a float scalar with an integer computation type")
        info = np.iinfo(dtype)
        if not info.min <= int(value) <= info.max:
            raise KernelUnsupported(f"a Python int out of range for {dtype}")
        return dtype.type(int(value))
    if dtype.kind == "b":
        return np.uint8(bool(value))
    try:
        with np.errstate(over="ignore"):  # 1e300 with float32 is inf, as in NumPy
            return dtype.type(value)
    except OverflowError:  # an int beyond float64: NumPy raises, let it
        raise KernelUnsupported(f"a Python int out of range for {dtype}") from None


def chunking(n: int) -> tuple[tuple[int], int]:
    """(global size, elements per work-item) for ``n`` output elements."""
    chunk = max(MIN_CHUNK, -(-n // MAX_ITEMS))
    chunk = -(-chunk // 64) * 64  # runs start 256-byte aligned for float32 and wider
    return (-(-n // chunk),), chunk


def strided_layout(shape: tuple[int, ...], arrays: list[CLArray]) -> tuple[list[int], list[list[int]]]:
    """Each array's strides broadcast to ``shape`` (0 where it repeats), with dimensions merged
    where every array steps through them contiguously, and size-1 dimensions dropped.

    Returns (merged shape, strides per array), at least one dimension.
    """
    nd = len(shape)
    full = []
    for a in arrays:
        lead = nd - len(a.shape)
        full.append([0] * lead + [0 if n == 1 else s for n, s in zip(a.shape, a.strides)])
    dims: list[int] = []
    strides: list[list[int]] = [[] for _ in arrays]
    for d, n in enumerate(shape):
        if n == 1:
            continue
        if dims and all(st[-1] == f[d] * n for st, f in zip(strides, full)):
            dims[-1] *= n
            for st, f in zip(strides, full):
                st[-1] = f[d]
        else:
            dims.append(n)
            for st, f in zip(strides, full):
                st.append(f[d])
    if not dims:
        return [1], [[0] for _ in arrays]
    if len(dims) > MAX_DIMS:
        raise KernelUnsupported(f"more than {MAX_DIMS} dimensions after merging")
    return dims, strides


def run(dev: CLDevice, kernel_of: Any, out: CLArray, operands: tuple, c_dtype: np.dtype,
        extra: tuple = ()) -> CLArray:
    """Launch the variant of an elementwise kernel for ``operands`` (CLArrays, or scalars: NumPy
    scalars already converted, Python scalars become ``c_dtype``) writing contiguous ``out``;
    ``kernel_of(suffix)`` returns the kernel for a layout suffix such as ``"tk"``. ``extra``
    arguments (NumPy scalars) follow the operands.
    """
    shape = out.shape
    n = math.prod(shape)
    if n == 0:
        return out  # empty: nothing to launch
    # contiguous with the output's shape: out was just made, so its strides are the row-major ones
    flat = all(x.shape == shape and (x.strides == out.strides or x.is_contiguous)
               for x in operands if isinstance(x, CLArray))
    args: list[Any] = [out.buf]
    suffix = ""
    if flat:
        for x in operands:
            if isinstance(x, CLArray):
                suffix += "t"
                args += (x.buf, x.offset)
            else:
                suffix += "k"
                args.append(x if isinstance(x, np.generic) else scalar_arg(x, c_dtype))
        args += extra
    else:
        dims, strides = strided_layout(shape, [x for x in operands if isinstance(x, CLArray)])
        it = iter(strides)
        for x in operands:
            if isinstance(x, CLArray):
                suffix += "v"
                args += (x.buf, x.offset, long8(tuple(next(it)), 0))
            else:
                suffix += "k"
                args.append(x if isinstance(x, np.generic) else scalar_arg(x, c_dtype))
        args += extra
        args += (long8(tuple(dims), 1), len(dims))
    size, chunk = chunking(n)
    # scalar arguments may be Python ints: CLDevice.kernel declared the kernel's argument types
    dev.launch(kernel_of(suffix), size, LOCAL, *args, n, chunk)
    return out
