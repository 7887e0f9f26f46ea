"""New tensors made on a CUDA device with CuPy's own means: ``tc.zeros``/``ones``/``full``/
``empty`` (a ``cudaMemsetAsync`` for all-zero bits, else ``ndarray.fill``), ``tc.arange`` (a
CuPy ``ElementwiseKernel``) and ``tc.eye`` (zeros, then a fill of the diagonal's strided view).

The array comes from the device's pool first (``CUDADevice.empty``: a failed allocation
frees the pool's cached blocks, tries once more, then raises ``tc.OutOfMemoryError`` naming
the device), so nothing is built on the host or uploaded. Work is queued on the device's
stream; the caller has made the device current (``CUDADevice.activate``). The values are
NumPy's bit for bit: the fill value is cast by ``np.full``, and arange computes
``start + i * delta`` with one rounding per operation (``__fmul_rn``/``__fadd_rn``: no fused
multiply-add), integers wrapping, as NumPy does. Not ops: ``CUDABackend``'s creation
methods call these.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}

# Overloads that keep nvcc from contracting start + i * delta into one fused multiply-add.
_PREAMBLE = """
__device__ __forceinline__ float tc_axpy(float start, float delta, long long i) {
    return __fadd_rn(start, __fmul_rn((float)i, delta));
}
__device__ __forceinline__ double tc_axpy(double start, double delta, long long i) {
    return __dadd_rn(start, __dmul_rn((double)i, delta));
}
"""


@functools.cache
def _kernels(cp: Any) -> tuple[Any, Any]:
    """(float arange, integer arange) as CuPy ElementwiseKernels (compiled once per type)."""
    floats = cp.ElementwiseKernel(
        "T first, T second, T delta", "T out",
        "out = i == 0 ? first : i == 1 ? second : tc_axpy(first, delta, (long long)i)",
        "tensorcore_arange_float", preamble=_PREAMBLE)
    # Integers: modulo 2^64 on the values' bits, cut to the element's width (the output is
    # viewed as the unsigned type of that width, so the cut is well defined).
    ints = cp.ElementwiseKernel(
        "uint64 first, uint64 second, uint64 delta", "T out",
        "out = (T)(i == 0 ? first : i == 1 ? second : first + (unsigned long long)i * delta)",
        "tensorcore_arange_int")
    return floats, ints


def full(dev: Any, shape: tuple[int, ...], value: Any, dtype: Any) -> Any:
    """A new C-contiguous array of ``shape``, every element ``value`` cast as ``np.full`` casts it."""
    dtype = np.dtype(dtype)
    pattern = np.full((), value, dtype)  # NumPy's cast (and its errors) before any allocation
    out = dev.empty(tuple(shape), dtype)
    if out.size:
        if not pattern.view(_UNSIGNED[dtype.itemsize]):  # all-zero bits (-0.0 is not): a memset
            out.data.memset_async(0, out.nbytes)
        else:
            out.fill(pattern[()])
    return out


def arange(dev: Any, start: Any, stop: Any, step: Any, dtype: Any) -> Any:
    """``np.arange(start, stop, step, dtype=dtype)``, computed on the device; None for the
    dtypes it does not compute (bool, float16), which the caller builds on the host."""
    dtype = np.dtype(dtype)
    count = (stop - start) / step  # NumPy's length: the true quotient's ceiling
    if dtype.kind not in "iuf" or dtype == np.float16 or not math.isfinite(count):
        return None
    n = max(math.ceil(count), 0)
    head = np.array([start] if n == 1 else [start, start + step] if n else [], dtype=dtype)  # as NumPy casts them
    out = dev.empty((n,), dtype)
    if n == 0:
        return out
    floats, ints = _kernels(dev.cp)
    first = head[0]
    second = head[1] if n > 1 else head[0]
    if dtype.kind == "f":
        floats(first, second, second - first, out)
    else:
        bits = [int(v) % (1 << 64) for v in (first, second)]
        ints(np.uint64(bits[0]), np.uint64(bits[1]), np.uint64((bits[1] - bits[0]) % (1 << 64)),
             out.view(_UNSIGNED[dtype.itemsize]))
    return out


def eye(dev: Any, n_rows: int, n_cols: int, k: int, dtype: Any) -> Any:
    """``np.eye(n_rows, n_cols, k=k, dtype=dtype)``: zeros, then the diagonal's strided view filled."""
    dtype = np.dtype(dtype)
    out = full(dev, (n_rows, n_cols), 0, dtype)
    count = min(n_rows, n_cols - k) if k >= 0 else min(n_rows + k, n_cols)
    if count > 0:
        diagonal = dev.view(out, (count,), (n_cols + 1,), k if k >= 0 else -k * n_cols)
        diagonal.fill(np.ones((), dtype)[()])
    return out
