"""OpenCL launchers: reductions (sum, prod, mean, var, max, min, all, any, count_nonzero,
argmax, argmin, linear_backward_bias, cumulative_sum) and, from ``reduce_softmax``, the softmax family.

All of them go through the (A, N, B) engine of ``reduce_core``. Accumulation dtypes follow
NumPy: sums and products accumulate in their output dtype (int64 for small ints, as the op's
``dtype`` attribute says), max and min in the input's, and booleans as bytes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorcore.backends.opencl import CLArray, CLDevice
from tensorcore.backends.opencl_ops import reduce_core as core
from tensorcore.backends.opencl_ops._common import output
from tensorcore.backends.opencl_ops.elementwise import astype
from tensorcore.backends.opencl_ops.movement import contiguous
from tensorcore.backends.opencl_ops.reduce_softmax import KERNELS as SOFTMAX_KERNELS

from tensorcore.errors import KernelUnsupported
from tensorcore.ops._axes import reduced_shape

_BOOL, _INT64 = np.dtype(np.bool_), np.dtype(np.int64)


def _float_only(x: CLArray, op: str) -> None:
    if x.dtype.kind != "f":
        raise KernelUnsupported(f"{op}: OpenCL kernels take float32/float64, got {x.dtype}")


def _sum_like(dev: CLDevice, x: CLArray, comb: int, axis: tuple[int, ...], keepdims: bool, dtype: Any) -> CLArray:
    out_dtype = np.dtype(x.dtype if dtype is None else dtype)
    if out_dtype.kind not in "biuf" or x.dtype.kind not in "biuf":
        raise KernelUnsupported(f"no OpenCL sum/prod from {x.dtype} to {out_dtype}")
    # A bool result would need logical or/and rather than + and *; NumPy's sum to bool is rare.
    if out_dtype == _BOOL:
        raise KernelUnsupported("sum/prod to bool runs on cpu")
    x = _as_numpy_casts(dev, x, out_dtype)
    return core.reduce(dev, x, axis, keepdims, comb, core.IDENTITY, out_dtype, out_dtype)


def _as_numpy_casts(dev: CLDevice, x: CLArray, out_dtype: np.dtype) -> CLArray:
    """``x`` as the sums and scans read it: floats summed into integers go through the cast
    kernel first, which converts as x86 NumPy does (-1.0 to uint32 is 4294967295); the
    reduction kernels' own C cast of a negative float to an unsigned type is undefined, and gave
    0 with AVX-512 where NumPy wraps."""
    return astype(dev, x, out_dtype) if x.dtype.kind == "f" and out_dtype.kind in "iu" else x


def sum_(dev: CLDevice, x: CLArray, *, axis: tuple[int, ...], keepdims: bool, dtype: Any) -> CLArray:
    """Sum over ``axis`` in the op's accumulation dtype (bool, ints, floats)."""
    return _sum_like(dev, x, core.SUM, axis, keepdims, dtype)


def prod(dev: CLDevice, x: CLArray, *, axis: tuple[int, ...], keepdims: bool, dtype: Any) -> CLArray:
    """Product over ``axis`` in the op's accumulation dtype (bool, ints, floats)."""
    return _sum_like(dev, x, core.PROD, axis, keepdims, dtype)


def mean(dev: CLDevice, x: CLArray, *, axis: tuple[int, ...], keepdims: bool) -> CLArray:
    """Mean over ``axis`` (float32/float64); NaN for an empty axis, as NumPy gives."""
    _float_only(x, "mean")
    return core.reduce(dev, x, axis, keepdims, core.SUM, core.IDENTITY, x.dtype, x.dtype, mean=True)


def var(dev: CLDevice, x: CLArray, *, axis: tuple[int, ...], keepdims: bool, correction: float) -> CLArray:
    """Variance over ``axis`` as NumPy computes it: the mean first, then the mean squared
    deviation (two passes, no cancellation), divided by ``max(N - correction, 0)``."""
    _float_only(x, "var")
    core.supported(dev, x.dtype)
    out = output(dev, reduced_shape(x.shape, axis, keepdims), x.dtype)
    if out.buf is None:
        return out
    lay = core.layout(x, axis)
    center = core.run(dev, lay, dev.empty((lay.a * lay.b,), x.dtype), core.SUM, core.IDENTITY, x.dtype,
                      div=float(lay.n))
    return core.run(dev, lay, out, core.SUM, core.SQDEV, x.dtype, div=max(lay.n - correction, 0.0), center=center)


def _extremum(dev: CLDevice, x: CLArray, comb: int, axis: tuple[int, ...], keepdims: bool) -> CLArray:
    if x.dtype.kind not in "biuf":
        raise KernelUnsupported(f"no OpenCL max/min for {x.dtype}")
    return core.reduce(dev, x, axis, keepdims, comb, core.IDENTITY, x.dtype, x.dtype)


def max_(dev: CLDevice, x: CLArray, *, axis: tuple[int, ...], keepdims: bool) -> CLArray:
    """Maximum over ``axis`` (NaN wins, as in NumPy); empty axes are rejected before the kernel."""
    return _extremum(dev, x, core.MAX, axis, keepdims)


def min_(dev: CLDevice, x: CLArray, *, axis: tuple[int, ...], keepdims: bool) -> CLArray:
    """Minimum over ``axis`` (NaN wins, as in NumPy)."""
    return _extremum(dev, x, core.MIN, axis, keepdims)


def all_(dev: CLDevice, x: CLArray, *, axis: tuple[int, ...], keepdims: bool) -> CLArray:
    """Whether every element over ``axis`` is non-zero (True for an empty axis)."""
    return core.reduce(dev, x, axis, keepdims, core.AND, core.NONZERO, _BOOL, _BOOL)


def any_(dev: CLDevice, x: CLArray, *, axis: tuple[int, ...], keepdims: bool) -> CLArray:
    """Whether some element over ``axis`` is non-zero (False for an empty axis)."""
    return core.reduce(dev, x, axis, keepdims, core.OR, core.NONZERO, _BOOL, _BOOL)


def count_nonzero(dev: CLDevice, x: CLArray, *, axis: tuple[int, ...], keepdims: bool) -> CLArray:
    """The number of non-zero elements over ``axis``, as int64."""
    return core.reduce(dev, x, axis, keepdims, core.SUM, core.NONZERO, _INT64, _INT64)


def _arg(dev: CLDevice, x: CLArray, axis: int | None, keepdims: bool, largest: bool) -> CLArray:
    if x.dtype.kind not in "biuf":
        raise KernelUnsupported(f"no OpenCL argmax/argmin for {x.dtype}")
    core.supported(dev, x.dtype)
    axes = tuple(range(len(x.shape))) if axis is None else (axis,)
    out = output(dev, reduced_shape(x.shape, axes, keepdims), _INT64)
    if out.buf is None:
        return out
    if axis is None:
        # The flat index counts in row-major order: read a contiguous copy as one row.
        flat = contiguous(x)
        lay = core.Layout(flat, 1, flat.size, 1, 0, 1, 0)
    else:
        lay = core.layout(x, axes)
    return core.arg_reduce(dev, lay, out, largest)


def argmax(dev: CLDevice, x: CLArray, *, axis: int | None, keepdims: bool) -> CLArray:
    """Index of the first largest element along ``axis`` (flat if None); NaN counts as largest."""
    return _arg(dev, x, axis, keepdims, True)


def argmin(dev: CLDevice, x: CLArray, *, axis: int | None, keepdims: bool) -> CLArray:
    """Index of the first smallest element along ``axis`` (flat if None); NaN counts as smallest."""
    return _arg(dev, x, axis, keepdims, False)


def linear_backward_bias(dev: CLDevice, g: CLArray) -> CLArray:
    """linear's bias gradient: ``g`` summed over all but its last axis (a column sum)."""
    _float_only(g, "linear_backward_bias")
    if not g.shape:
        raise KernelUnsupported("linear_backward_bias of a 0-d gradient")
    return core.reduce(dev, g, tuple(range(len(g.shape) - 1)), False, core.SUM, core.IDENTITY, g.dtype, g.dtype)


def cumulative_sum(dev: CLDevice, x: CLArray, *, axis: int, dtype: Any, include_initial: bool) -> CLArray:
    """Running sums along ``axis`` in the op's dtype (as NumPy's cumsum), optionally after a 0."""
    out_dtype = np.dtype(x.dtype if dtype is None else dtype)
    if out_dtype.kind not in "iuf" or x.dtype.kind not in "biuf":
        raise KernelUnsupported(f"no OpenCL cumulative_sum from {x.dtype} to {out_dtype}")
    core.supported(dev, x.dtype, out_dtype)
    x = _as_numpy_casts(dev, x, out_dtype)
    shape = tuple(n + 1 if i == axis and include_initial else n for i, n in enumerate(x.shape))
    return core.scan(dev, x, axis, output(dev, shape, out_dtype), include_initial)


KERNELS: dict = {
    "sum": sum_, "prod": prod, "mean": mean, "var": var, "max": max_, "min": min_,
    "all": all_, "any": any_, "count_nonzero": count_nonzero, "argmax": argmax, "argmin": argmin,
    "linear_backward_bias": linear_backward_bias, "cumulative_sum": cumulative_sum,
    **SOFTMAX_KERNELS,
}
