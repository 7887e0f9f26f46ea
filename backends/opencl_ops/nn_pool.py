"""OpenCL launchers: max_pool2d (values and indices), avg_pool2d and their backward ops.

Forward kernels run one work-item per plane (or block of rows of a plane, when there are
few planes); ``avg_pool2d_backward`` gathers over input rows the same way; ``max_pool2d_backward`` scatters the gradient to the recorded
indices one (n, c) plane per work-item, so overlapping windows accumulate without atomics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorcore.backends.opencl import CLArray, CLDevice
from tensorcore.backends.opencl_ops._common import ctype, output
from tensorcore.backends.opencl_ops.matmul import vec

from tensorcore.errors import KernelUnsupported

_Pair = tuple[int, int]
LOCAL = 64
_WINDOW = "int int int int int int"  # kh kw sh sw ph pw


def _launch_1d(total: int) -> tuple[tuple[int], tuple[int]]:
    """Launch sizes for ``total`` work-items; PoCL pays per work-group, so groups are large."""
    return (-(-total // LOCAL) * LOCAL,), (LOCAL,)


def _blocks(planes: int, rows: int) -> tuple:
    """Launch sizes and (blocks, rows per block, items): whole planes per work-item when there
    are enough planes to fill the device's threads, else planes split into row blocks."""
    blocks = max(1, min(rows, -(-2 * LOCAL // max(planes, 1))))
    per = -(-rows // blocks)
    blocks = -(-rows // per)
    items = planes * blocks
    return (*_launch_1d(items), blocks, per, items)


def _pool_kernel(dev: CLDevice, name: str, dtype: np.dtype) -> Any:
    defines = (("T", ctype(dtype)), ("FLOAT", str(int(dtype.kind == "f"))))
    return dev.kernel("pool.cl", name, defines)


def _check(dev: CLDevice, x: Any, kinds: str) -> np.dtype:
    if not isinstance(x, CLArray) or len(x.shape) != 4:
        raise KernelUnsupported("pooling takes a 4-D device array")
    if x.dtype.kind not in kinds or x.dtype.itemsize > 8 or x.dtype == np.float16 or (
            x.dtype == np.float64 and not dev.fp64):
        raise KernelUnsupported(f"no OpenCL pooling kernel for {x.dtype}")
    return x.dtype


def _out_size(x: CLArray, kernel_size: _Pair, stride: _Pair, padding: _Pair) -> _Pair:
    ho, wo = ((s + 2 * p - k) // st + 1 for s, k, st, p in zip(x.shape[2:], kernel_size, stride, padding))
    if ho <= 0 or wo <= 0:
        raise KernelUnsupported("kernel does not fit")
    return ho, wo


def _window(kernel_size: _Pair, stride: _Pair, padding: _Pair) -> tuple:
    return (*kernel_size, *stride, *padding)


def max_pool2d(dev: CLDevice, x: CLArray, *, kernel_size: _Pair, stride: _Pair, padding: _Pair) -> tuple[CLArray, CLArray]:
    """2-D max pooling: (values, flat plane index ``y * W + x`` of each chosen element)."""
    dtype = _check(dev, x, "fiu")
    n, c, h, w = x.shape
    ho, wo = _out_size(x, kernel_size, stride, padding)
    out = output(dev, (n, c, ho, wo), dtype)
    index = output(dev, (n, c, ho, wo), np.int64)
    if n * c:
        gsize, lsize, *split = _blocks(n * c, ho)
        dev.launch(_pool_kernel(dev, "max_pool", dtype), gsize, lsize, out.buf, index.buf, x.buf,
                   x.offset, vec(x.strides, 4), c, h, w, ho, wo, *_window(kernel_size, stride, padding), *split)
    return out, index


def max_pool2d_backward(dev: CLDevice, g: CLArray, indices: CLArray, *, input_size: _Pair, overlapping: bool) -> CLArray:
    """max_pool2d's gradient: ``g`` added at the recorded flat plane indices."""
    dtype = _check(dev, g, "f")
    if not isinstance(indices, CLArray) or indices.dtype != np.int64 or indices.shape != g.shape:
        raise KernelUnsupported("indices must be an int64 device array shaped like g")
    n, c, ho, wo = g.shape
    h, w = input_size
    out = output(dev, (n, c, h, w), dtype)
    planes = n * c
    if out.buf is not None:
        dev.launch(_pool_kernel(dev, "max_pool_backward", dtype), *_launch_1d(planes), out.buf,
                   g.buf if g.buf is not None else out.buf, g.offset, vec(g.strides, 4),
                   indices.buf if indices.buf is not None else out.buf, indices.offset, vec(indices.strides, 4),
                   c, h * w, ho, wo, planes)
    return out


def avg_pool2d(dev: CLDevice, x: CLArray, *, kernel_size: _Pair, stride: _Pair, padding: _Pair) -> CLArray:
    """2-D average pooling, zero padding counted in each window's average."""
    dtype = _check(dev, x, "f")
    n, c, h, w = x.shape
    ho, wo = _out_size(x, kernel_size, stride, padding)
    out = output(dev, (n, c, ho, wo), dtype)
    if n * c:
        gsize, lsize, *split = _blocks(n * c, ho)
        dev.launch(_pool_kernel(dev, "avg_pool", dtype), gsize, lsize, out.buf, x.buf, x.offset,
                   vec(x.strides, 4), c, h, w, ho, wo, *_window(kernel_size, stride, padding), *split)
    return out


def avg_pool2d_backward(dev: CLDevice, g: CLArray, *, input_size: _Pair, kernel_size: _Pair, stride: _Pair,
                        padding: _Pair) -> CLArray:
    """avg_pool2d's gradient: each output's gradient shared equally over its window."""
    dtype = _check(dev, g, "f")
    n, c, ho, wo = g.shape
    h, w = input_size
    out = output(dev, (n, c, h, w), dtype)
    if out.buf is not None:
        gsize, lsize, *split = _blocks(n * c, h)
        dev.launch(_pool_kernel(dev, "avg_pool_backward", dtype), gsize, lsize, out.buf,
                   g.buf if g.buf is not None else out.buf, g.offset, vec(g.strides, 4), c, h, w, ho, wo,
                   *_window(kernel_size, stride, padding), *split)
    return out


KERNELS: dict = {
    "max_pool2d": max_pool2d,
    "max_pool2d_backward": max_pool2d_backward,
    "avg_pool2d": avg_pool2d,
    "avg_pool2d_backward": avg_pool2d_backward,
}
