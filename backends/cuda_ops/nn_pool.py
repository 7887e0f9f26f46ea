"""CUDA launchers: max_pool2d (values and indices), avg_pool2d and their backward ops
(``kernels/cuda/pool.cu``): one thread per output element forward; backward, avg_pool2d's
gathers (one thread per input element, the reference's summation order) and max_pool2d's
scatters to the recorded indices (its op carries no window geometry), with atomic adds only
where the windows overlap.

Max pooling takes float32, float64, int32 and int64; average pooling and both gradients take
float32 and float64. Inputs may have any strides. Anything else raises ``KernelUnsupported``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorcore.backends.cuda_ops._common import BLOCK, FLOATS, elem_strides, grid_1d, i64, int_arg, is_array

from tensorcore.errors import KernelUnsupported

SOURCE = "pool.cu"
_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double", np.dtype(np.int32): "int",
          np.dtype(np.int64): "i64"}

#: (source, defines) the launchers build: compiled by tests/test_cuda_compile.py.
VARIANTS = [(SOURCE, (("DTYPE", t),)) for t in _TYPES.values()]

_Pair = tuple[int, int]


def _dtype(op: str, x: Any, floats_only: bool) -> np.dtype:
    if not is_array(x) or len(x.shape) != 4:
        raise KernelUnsupported(f"{op}: pooling takes a 4-D device array")
    dtype = np.dtype(x.dtype)
    if dtype not in (FLOATS if floats_only else tuple(_TYPES)):
        raise KernelUnsupported(f"{op}: no CUDA pooling kernel for {dtype}")
    return dtype


def _defines(dtype: np.dtype) -> tuple[tuple[str, str], ...]:
    return (("DTYPE", _TYPES[dtype]),)


def _out_size(x: Any, kernel_size: _Pair, stride: _Pair, padding: _Pair) -> _Pair:
    ho, wo = ((s + 2 * p - k) // st + 1 for s, k, st, p in zip(x.shape[2:], kernel_size, stride, padding))
    if ho <= 0 or wo <= 0:
        raise KernelUnsupported("kernel does not fit")  # the reference explains the error
    return ho, wo


def _ints(*values: int) -> tuple[np.int32, ...]:
    return tuple(int_arg("pooling size", int(v)) for v in values)


def _strides(x: Any) -> tuple[np.int64, ...]:
    return tuple(i64(s) for s in elem_strides(x))


def max_pool2d(dev: Any, x: Any, *, kernel_size: _Pair, stride: _Pair, padding: _Pair) -> tuple[Any, Any]:
    """2-D max pooling: (values, flat plane index ``y * W + x`` of each chosen element)."""
    dtype = _dtype("max_pool2d", x, floats_only=False)
    n, c, h, w = x.shape
    ho, wo = _out_size(x, kernel_size, stride, padding)
    out = dev.empty((n, c, ho, wo), dtype)
    index = dev.empty((n, c, ho, wo), np.int64)
    total = n * c * ho * wo
    if total:
        dev.launch(SOURCE, "max_pool", _defines(dtype), grid_1d(dev, total), (BLOCK,),
                   (out, index, x, *_strides(x), *_ints(c, h, w, ho, wo, *kernel_size, *stride, *padding), i64(total)))
    return out, index


def max_pool2d_backward(dev: Any, g: Any, indices: Any, *, input_size: _Pair, overlapping: bool) -> Any:
    """max_pool2d's gradient: ``g`` added at the recorded flat plane indices (plain stores when
    the windows do not overlap, atomic adds when they do)."""
    dtype = _dtype("max_pool2d_backward", g, floats_only=True)
    if not is_array(indices) or np.dtype(indices.dtype) != np.int64 or tuple(indices.shape) != tuple(g.shape):
        raise KernelUnsupported("max_pool2d_backward: indices must be an int64 device array shaped like g")
    n, c, ho, wo = g.shape
    h, w = (int(v) for v in input_size)
    out = dev.zeros((n, c, h, w), dtype)
    total = n * c * ho * wo
    if total and out.size:
        dev.launch(SOURCE, "max_pool_backward", _defines(dtype), grid_1d(dev, total), (BLOCK,),
                   (out, g, *_strides(g), indices, *_strides(indices), *_ints(c, ho, wo), i64(h * w),
                    np.int32(bool(overlapping)), i64(total)))
    return out


def avg_pool2d(dev: Any, x: Any, *, kernel_size: _Pair, stride: _Pair, padding: _Pair) -> Any:
    """2-D average pooling, zero padding counted in each window's average."""
    dtype = _dtype("avg_pool2d", x, floats_only=True)
    n, c, h, w = x.shape
    ho, wo = _out_size(x, kernel_size, stride, padding)
    out = dev.empty((n, c, ho, wo), dtype)
    total = n * c * ho * wo
    if total:
        scale = dtype.type(1.0 / (kernel_size[0] * kernel_size[1]))  # as the reference: a Python float, cast
        dev.launch(SOURCE, "avg_pool", _defines(dtype), grid_1d(dev, total), (BLOCK,),
                   (out, x, *_strides(x), *_ints(c, h, w, ho, wo, *kernel_size, *stride, *padding), scale,
                    i64(total)))
    return out


def avg_pool2d_backward(dev: Any, g: Any, *, input_size: _Pair, kernel_size: _Pair, stride: _Pair,
                        padding: _Pair) -> Any:
    """avg_pool2d's gradient: each output's gradient shared equally over its window."""
    dtype = _dtype("avg_pool2d_backward", g, floats_only=True)
    n, c, ho, wo = g.shape
    h, w = (int(v) for v in input_size)
    out = dev.empty((n, c, h, w), dtype)
    total = n * c * h * w
    if total:
        scale = dtype.type(1.0 / (kernel_size[0] * kernel_size[1]))
        dev.launch(SOURCE, "avg_pool_backward", _defines(dtype), grid_1d(dev, total), (BLOCK,),
                   (out, g, *_strides(g), *_ints(c, h, w, ho, wo, *kernel_size, *stride, *padding), scale,
                    i64(total)))
    return out


KERNELS: dict = {
    "max_pool2d": max_pool2d,
    "max_pool2d_backward": max_pool2d_backward,
    "avg_pool2d": avg_pool2d,
    "avg_pool2d_backward": avg_pool2d_backward,
}
