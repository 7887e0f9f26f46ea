"""New tensors made on an OpenCL device: ``tc.zeros``/``ones``/``full``/``empty`` (a fill of the
buffer, ``clEnqueueFillBuffer``), ``tc.arange`` and ``tc.eye`` (``kernels/opencl/fill.cl``).

The memory is allocated on the device first, so a tensor too big for it raises
``tc.OutOfMemoryError`` naming the device before anything else happens, and nothing is built
on the host or uploaded. The values are NumPy's, bit for bit: the fill value is cast by
``np.full`` itself, and arange follows NumPy's own formula (elements 0 and 1 as NumPy casts
them, then ``start + i * delta`` in the element type, integers wrapping). These are not ops
(the ``OpenCLBackend`` creation methods call them), so they take no part in placement.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from tensorcore.backends.opencl import CLArray, CLDevice
from tensorcore.backends.opencl_ops._common import global_size

_WIDTH = {1: ("uchar", np.uint8), 2: ("ushort", np.uint16), 4: ("uint", np.uint32), 8: ("ulong", np.uint64)}
_FLOAT = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


def full(dev: CLDevice, shape: tuple[int, ...], value: Any, dtype: Any) -> CLArray:
    """A new contiguous array of ``shape``, every element ``value`` cast as ``np.full`` casts it."""
    dtype = np.dtype(dtype)
    pattern = np.full((), value, dtype)  # NumPy's cast (and its errors) before any allocation
    out = dev.empty(tuple(shape), dtype)  # raises OutOfMemoryError naming the device
    if out.buf is not None:
        with dev.lock:  # the queue and pool are shared by threads
            dev.cl.enqueue_fill_buffer(dev.queue, out.buf, pattern, 0, out.size * dtype.itemsize)
    return out


def arange(dev: CLDevice, start: Any, stop: Any, step: Any, dtype: Any) -> CLArray:
    """``np.arange(start, stop, step, dtype=dtype)``, computed on the device."""
    dtype = np.dtype(dtype)
    count = (stop - start) / step  # NumPy's length: the true quotient's ceiling
    if not math.isfinite(count):
        np.arange(start, stop, step, dtype=dtype)  # NumPy raises its own error, before allocating
        raise ValueError(f"arange: cannot compute the length of [{start}, {stop}) by {step}")
    n = max(math.ceil(count), 0)
    head = np.array([start] if n == 1 else [start, start + step] if n else [], dtype=dtype)  # as NumPy casts them
    float_type = _FLOAT.get(dtype) if dtype != np.float64 or dev.fp64 else None
    if dtype.kind not in "iu" and float_type is None:  # bool, float16, float64 without it: the host's
        host = np.arange(start, stop, step, dtype=dtype)
        out = dev.empty(host.shape, dtype)
        dev.upload(host, out)
        return out
    out = dev.empty((n,), dtype)
    if n == 0:
        return out
    first = head[0]
    second = head[1] if n > 1 else head[0]
    if float_type is not None:
        kernel = dev.kernel("fill.cl", "arange_float", (("T", float_type),))
        dev.launch(kernel, global_size(n), None, out.buf, n, first, second, second - first)
    else:
        bits = [int(v) % (1 << 64) for v in (first, second)]  # modulo 2^64, as the kernel computes
        kernel = dev.kernel("fill.cl", "arange_int", (("T", _WIDTH[dtype.itemsize][0]),))
        dev.launch(kernel, global_size(n), None, out.buf, n, bits[0], bits[1], (bits[1] - bits[0]) % (1 << 64))
    return out


def eye(dev: CLDevice, n_rows: int, n_cols: int, k: int, dtype: Any) -> CLArray:
    """``np.eye(n_rows, n_cols, k=k, dtype=dtype)``: a zero fill, then the diagonal's ones."""
    dtype = np.dtype(dtype)
    out = full(dev, (n_rows, n_cols), 0, dtype)
    count = min(n_rows, n_cols - k) if k >= 0 else min(n_rows + k, n_cols)
    if count > 0:
        width, bits = _WIDTH[dtype.itemsize]
        one = np.ones((), dtype).view(bits)[()]
        kernel = dev.kernel("fill.cl", "strided_set", (("T", width),))
        dev.launch(kernel, global_size(count), None, out.buf, k if k >= 0 else -k * n_cols, n_cols + 1, count, one)
    return out
