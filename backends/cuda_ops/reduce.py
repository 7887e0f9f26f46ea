"""CUDA launchers of the reductions (``kernels/cuda/reduce.cu``): sum, mean, max, min and
linear_backward_bias, over float32/float64.

A contiguous input reduced over a run of adjacent axes is read as (A, N, B) and reduced over
N: rows (B == 1) one block per row and chunk, or one warp per short row; columns (B > 1) one
thread per column and chunk. Long reductions split N into chunks whose partials further passes
of the same kernels combine; the last pass divides for ``mean``. A strided view is first
gathered into a contiguous copy (``movement_copy.contiguous``), and so is an input reduced
over axes that are not adjacent (permuted so that they come last). Integer and bool inputs and
a ``dtype`` other than the input's raise ``KernelUnsupported`` (the op then falls back to cpu).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from tensorcore.backends.cuda_ops._common import FLOATS, defines, elem_strides, float_dtype, i64
from tensorcore.backends.cuda_ops.movement_copy import contiguous

from tensorcore.errors import KernelUnsupported
from tensorcore.ops._axes import reduced_shape

SOURCE = "reduce.cu"
SUM, MAX, MIN = 0, 2, 3
ROW_BLOCK = 256  # threads of a row block
WARP_ROWS = 1024  # rows up to this length get one warp each
ROW_CHUNK = 1 << 16  # elements a row block reduces at most per pass
COL_CHUNK = 1024  # rows a column thread reduces at most per pass

#: (source, defines) the launchers build: compiled by tests/test_cuda_compile.py.
VARIANTS = [(SOURCE, defines(t, ("COMB", str(c)))) for t in FLOATS for c in (SUM, MAX, MIN)]


def cdiv(p: int, q: int) -> int:
    """``ceil(p / q)`` for non-negative ints."""
    return -(-p // q)


def plan(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, int, int]:
    """(A, N, B) for a C-contiguous array of ``shape`` reduced over ``axes``: the sizes before,
    of, and after the reduced axes, which must be adjacent once size-1 axes are ignored."""
    reduced = sorted(a for a in axes if shape[a] != 1)
    if reduced and reduced[-1] - reduced[0] + 1 != len(reduced):
        if any(shape[i] != 1 for i in range(reduced[0], reduced[-1] + 1) if i not in reduced):
            raise KernelUnsupported("reduced axes are not adjacent in memory")
    if not reduced:
        return math.prod(shape), 1, 1
    first, last = reduced[0], reduced[-1]
    return math.prod(shape[:first]), math.prod(shape[first:last + 1]), math.prod(shape[last + 1:])


def run(dev: Any, x: Any, a: int, n: int, b: int, comb: int, out: Any, div: float | None = None) -> Any:
    """Enqueue ``out[a, b] = COMB over n of x[a, n, b]`` (divided by ``div`` if given)."""
    dtype = np.dtype(x.dtype)
    defs = defines(dtype, ("COMB", str(comb)))
    scalar = dtype.type
    while True:
        if b == 1:
            parts = 1 if n <= ROW_CHUNK or a >= 4 * dev.sm_count else min(cdiv(n, ROW_CHUNK // 16), 1024)
        else:
            blocks = a * cdiv(b, ROW_BLOCK)
            parts = 1 if n <= COL_CHUNK or blocks >= 4 * dev.sm_count else min(cdiv(n, COL_CHUNK // 16), 1024)
        chunk = cdiv(max(n, 1), parts)
        parts = max(1, cdiv(n, chunk))
        final = parts == 1
        dst = out if final else dev.empty((a * parts * b,), dtype)
        finish = np.int32(1 if final and div is not None else 0)
        d = scalar(div if div is not None else 1.0)
        if b == 1 and parts == 1 and n <= WARP_ROWS:
            blocks = max(1, min(cdiv(a, ROW_BLOCK // 32), dev.sm_count * 32))
            dev.launch(SOURCE, "reduce_rows_warp", defs, (blocks,), (ROW_BLOCK,), (dst, x, i64(n), i64(a), finish, d))
        elif b == 1:
            dev.launch(SOURCE, "reduce_rows", defs, (a * parts,), (ROW_BLOCK,),
                       (dst, x, i64(n), i64(chunk), i64(parts), finish, d))
        else:
            dev.launch(SOURCE, "reduce_cols", defs, (a * parts * cdiv(b, ROW_BLOCK),), (ROW_BLOCK,),
                       (dst, x, i64(n), i64(b), i64(chunk), i64(parts), finish, d))
        if final:
            return out
        x, n = dst, parts  # the partials are a contiguous (A, parts, B) array


def _reduce(dev: Any, op: str, x: Any, axis: tuple[int, ...], keepdims: bool, comb: int, mean: bool = False) -> Any:
    float_dtype(op, x)
    shape = tuple(x.shape)
    axis = tuple(range(len(shape))) if axis is None else tuple(d % max(len(shape), 1) for d in axis)
    out_shape = reduced_shape(shape, axis, keepdims)
    try:
        a, n, b = plan(shape, axis)
        x = contiguous(dev, x)  # a view is gathered once (the kernels read (A, N, B) dense)
    except KernelUnsupported:
        # Axes apart in memory (conv2d's bias gradient sums over N, H and W): gather x with the
        # kept axes first and the reduced ones last, in one copy, and reduce its rows.
        kept, reduced = [d for d in range(len(shape)) if d not in axis], sorted(set(axis))
        strides = elem_strides(x)
        x = contiguous(dev, dev.view(x, tuple(shape[d] for d in kept + reduced),
                                     tuple(strides[d] for d in kept + reduced)))
        a, n, b = math.prod(shape[d] for d in kept), math.prod(shape[d] for d in reduced), 1
    if n == 0 and comb != SUM:
        raise KernelUnsupported(f"{op} over an empty axis")  # the reference raises
    out = dev.empty(out_shape, x.dtype)
    if out.size == 0:
        return out
    return run(dev, x, a, n, b, comb, out, float(n) if mean else None)


def sum_(dev: Any, x: Any, *, axis: tuple[int, ...], keepdims: bool, dtype: Any) -> Any:
    """Sum over ``axis`` of a float tensor, in its own dtype."""
    if dtype is not None and np.dtype(dtype) != getattr(x, "dtype", None):
        raise KernelUnsupported("sum: a dtype other than the input's")
    return _reduce(dev, "sum", x, axis, keepdims, SUM)


def mean(dev: Any, x: Any, *, axis: tuple[int, ...], keepdims: bool) -> Any:
    """Mean over ``axis`` (NaN for an empty axis, as NumPy gives)."""
    return _reduce(dev, "mean", x, axis, keepdims, SUM, mean=True)


def max_(dev: Any, x: Any, *, axis: tuple[int, ...], keepdims: bool) -> Any:
    """Maximum over ``axis`` (NaN wins, as in NumPy)."""
    return _reduce(dev, "max", x, axis, keepdims, MAX)


def min_(dev: Any, x: Any, *, axis: tuple[int, ...], keepdims: bool) -> Any:
    """Minimum over ``axis`` (NaN wins, as in NumPy)."""
    return _reduce(dev, "min", x, axis, keepdims, MIN)


def linear_backward_bias(dev: Any, g: Any) -> Any:
    """linear's bias gradient: ``g`` summed over all but its last axis (a column sum)."""
    if not getattr(g, "shape", ()):
        raise KernelUnsupported("linear_backward_bias of a 0-d gradient")
    return _reduce(dev, "linear_backward_bias", g, tuple(range(len(g.shape) - 1)), False, SUM)


KERNELS: dict = {"sum": sum_, "mean": mean, "max": max_, "min": min_, "linear_backward_bias": linear_backward_bias}
