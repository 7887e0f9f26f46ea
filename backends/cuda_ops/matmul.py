"""CUDA launchers: matmul, linear and linear_backward_weight on one tiled GEMM
(``kernels/cuda/matmul.cu``: 128 x 128 block tiles, 8 x 8 per thread, batched over
``gridDim.z``).

The kernel reads A, B and writes C through element strides, so transposed views (``x @ w.T``,
``g.T @ x``) need no copy. Batches: the broadcast batch dimensions merge into one
(each operand's batch strides uniform, 0 where it broadcasts), at most 65535 of them; where
they do not, the operands are first gathered into dense broadcast copies. The same GEMM
serves conv2d (``nn_conv``): its C columns may be split across images, its bias run along
rows, and it may accumulate into C. float32 and float64 with matching dtypes; anything else
raises ``KernelUnsupported``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from tensorcore.backends.cuda_ops._common import FLOATS, contiguous_strides, defines, elem_strides, float_dtype, i64
from tensorcore.backends.cuda_ops.movement_copy import contiguous, copy_strided

from tensorcore.errors import KernelUnsupported

SOURCE = "matmul.cu"
TILE = 128
THREADS = 256
MAX_BATCH = 65535  # gridDim.z
INT_MAX = 2**31 - 1
HAS_BIAS, ACCUMULATE, RELU, RELU_MASK, GELU, GELU_TANH, SIGMOID, TANH = 1, 2, 4, 8, 16, 32, 64, 128  # gemm's flags (matmul.cu)
# Applied as C is stored: linear's and conv2d's activations (ops/_nn.EPILOGUES) and
# matmul_relu_backward's mask.
EPILOGUES = {None: 0, "relu": RELU, "relu_backward": RELU_MASK, "gelu": GELU, "gelu_tanh": GELU_TANH,
             "sigmoid": SIGMOID, "tanh": TANH}

#: (source, defines) the launchers build: compiled by tests/test_cuda_compile.py.
VARIANTS = [(SOURCE, defines(t)) for t in FLOATS]


def merge_batch(bshape: tuple[int, ...], strides: list[tuple[int, ...]]) -> tuple[int, list[int]]:
    """(count, one batch stride per operand) for batch dims ``bshape`` with each operand's
    batch strides (0 where broadcast), or ``KernelUnsupported`` if they do not merge into one."""
    dims = [(n, [s[d] for s in strides]) for d, n in enumerate(bshape) if n != 1]
    if not dims:
        return 1, [0] * len(strides)
    count, inner = dims[-1][0], list(dims[-1][1])
    for n, outer in reversed(dims[:-1]):
        if any(o != i * c for o, i, c in zip(outer, inner, [count] * len(inner))):
            raise KernelUnsupported("batch dimensions that do not merge into one")
        count *= n
    if count > MAX_BATCH:
        raise KernelUnsupported(f"more than {MAX_BATCH} matrices in a batch")
    return count, inner


def gemm(dev: Any, dtype: np.dtype, m: int, n: int, k: int, count: int, c: Any, a: Any, b: Any,
         a_strides: tuple[int, int, int], b_strides: tuple[int, int, int], c_strides: tuple[int, int, int],
         bias: Any = None, bias_strides: tuple[int, int, int] = (0, 0, 0), csplit: int | None = None,
         c_split_stride: int = 0, accumulate: bool = False, activation: str | None = None,
         mask: Any = None, mask_strides: tuple[int, int] = (0, 0)) -> None:
    """Enqueue ``C (+)= A @ B (+ bias)``; ``*_strides`` are (row, column, batch) in elements,
    ``bias_strides`` too. Column j of C sits at ``(j // csplit) * c_split_stride + (j % csplit)
    * c_strides[1]`` (default: no split). ``accumulate`` adds to what C holds; ``activation``
    (a key of ``EPILOGUES``) is applied to each finished value; ``"relu_backward"`` multiplies it
    by ``mask > 0`` (``mask_strides``: row, column), for one matrix without a split."""
    if activation is not None and accumulate:
        raise ValueError("an activation applies to a finished product, not to one accumulated over launches")
    if (activation == "relu_backward") != (mask is not None) or (mask is not None and (count != 1 or csplit)):
        raise ValueError("relu_backward's epilogue takes a mask, for one matrix without a column split")
    if not (m and n and count):
        return
    if max(m, n, k) > INT_MAX:
        raise KernelUnsupported("a matrix dimension beyond 2^31")
    if count > MAX_BATCH:
        raise KernelUnsupported(f"more than {MAX_BATCH} matrices in a batch")
    grid = (-(-n // TILE), -(-m // TILE), count)
    if grid[1] > 65535:
        raise KernelUnsupported("more than 65535 row tiles")
    flags = (HAS_BIAS if bias is not None else 0) | (ACCUMULATE if accumulate else 0) | EPILOGUES[activation]
    args = (c, a, b, bias if bias is not None else c, np.int32(m), np.int32(n), np.int32(k),
            i64(a_strides[0]), i64(a_strides[1]), i64(b_strides[0]), i64(b_strides[1]),
            i64(c_strides[0]), i64(c_strides[1]), np.int32(csplit or n), i64(c_split_stride),
            i64(bias_strides[0]), i64(bias_strides[1]), i64(a_strides[2]), i64(b_strides[2]), i64(c_strides[2]),
            i64(bias_strides[2]), np.int32(flags), mask if mask is not None else c,
            i64(mask_strides[0]), i64(mask_strides[1]))
    dev.launch(SOURCE, "gemm", defines(dtype), grid, (THREADS,), args)


def matmul(dev: Any, x1: Any, x2: Any) -> Any:
    """NumPy's matmul: 1-D operands, broadcast batch dimensions, any strides."""
    dtype = float_dtype("matmul", x1, x2)
    if not x1.shape or not x2.shape:
        raise KernelUnsupported("matmul of a 0-D array")  # the reference explains the error
    s1, s2 = elem_strides(x1), elem_strides(x2)
    shape1, st1 = ((1,) + tuple(x1.shape), (0,) + s1) if len(x1.shape) == 1 else (tuple(x1.shape), s1)
    shape2, st2 = (tuple(x2.shape) + (1,), s2 + (0,)) if len(x2.shape) == 1 else (tuple(x2.shape), s2)
    m, k = shape1[-2:]
    k2, n = shape2[-2:]
    if k != k2:
        raise KernelUnsupported("inner dimensions differ")  # the reference explains the error
    try:
        bshape = tuple(np.broadcast_shapes(shape1[:-2], shape2[:-2]))
    except ValueError:
        raise KernelUnsupported("batch dimensions do not broadcast") from None

    def batch_strides(shape: tuple[int, ...], strides: tuple[int, ...]) -> tuple[int, ...]:
        nb = len(shape) - 2
        lead = len(bshape) - nb
        return (0,) * lead + tuple(0 if d == 1 else s for d, s in zip(shape[:nb], strides[:nb]))

    out_batch = tuple(int(v) for v in np.cumprod((1,) + bshape[::-1][:-1])[::-1] * m * n) if bshape else ()
    bs1, bs2 = batch_strides(shape1, st1), batch_strides(shape2, st2)
    try:
        count, (ba, bb, bc) = merge_batch(bshape, [bs1, bs2, out_batch])
    except KernelUnsupported:
        # e.g. (2, 1, M, K) @ (3, K, N): each operand broadcasts along a different batch
        # dimension. Gather both into dense (2, 3, ...) copies, whose batches merge.
        x1, st1, bs1 = _dense_batch(dev, x1, bshape, bs1, shape1[-2:], st1[-2:])
        x2, st2, bs2 = _dense_batch(dev, x2, bshape, bs2, shape2[-2:], st2[-2:])
        count, (ba, bb, bc) = merge_batch(bshape, [bs1, bs2, out_batch])
    shape = bshape + ((m,) if len(x1.shape) > 1 else ()) + ((n,) if len(x2.shape) > 1 else ())
    out = dev.empty(shape, dtype)
    gemm(dev, dtype, m, n, k, count, out, x1, x2, (st1[-2], st1[-1], ba), (st2[-2], st2[-1], bb), (n, 1, bc))
    return out


def _dense_batch(dev: Any, x: Any, bshape: tuple[int, ...], bstrides: tuple[int, ...], mat: tuple[int, int],
                 mat_strides: tuple[int, ...]) -> tuple[Any, tuple[int, ...], tuple[int, ...]]:
    """(copy, its strides, its batch strides): ``x`` broadcast to batch ``bshape`` and gathered
    into a contiguous array of shape ``bshape + mat``."""
    shape = tuple(bshape) + tuple(mat)
    out = dev.empty(shape, x.dtype)
    strides = contiguous_strides(shape)
    copy_strided(dev, shape, out, strides, x, tuple(bstrides) + tuple(mat_strides))
    return out, strides, strides[:len(bshape)]


def _rows(x: Any) -> tuple[int, int, int] | None:
    """(rows, row stride, column stride) of ``x`` read as a 2-D (rows, last dim) matrix, or
    None where its leading dimensions do not merge into one row dimension."""
    s = elem_strides(x)
    if len(x.shape) == 1:
        return 1, 0, s[0]
    lead = x.shape[:-1]
    for d in range(len(lead) - 1):
        if lead[d] != 1 and s[d] != s[d + 1] * lead[d + 1]:
            return None
    return math.prod(lead), s[-2], s[-1]


def _as_rows(dev: Any, x: Any) -> tuple[Any, tuple[int, int, int]]:
    """(``x``, its ``_rows``), or a contiguous copy of ``x`` (one gather) where they do not merge."""
    rows = _rows(x)
    if rows is None:
        x = contiguous(dev, x)
        rows = _rows(x)
    return x, rows


def linear(dev: Any, x: Any, weight: Any, bias: Any = None, activation: str | None = None) -> Any:
    """``activation(x @ weight.T + bias)`` in one GEMM, the bias added and the activation
    applied as the tile is stored."""
    dtype = float_dtype("linear", *(a for a in (x, weight, bias) if a is not None))
    if len(weight.shape) != 2 or not x.shape or x.shape[-1] != weight.shape[1] or (
            bias is not None and tuple(bias.shape) != tuple(weight.shape[:1])):
        raise KernelUnsupported("bad shapes")  # the reference explains the error
    x, (m, sxm, sxk) = _as_rows(dev, x)
    k, n = x.shape[-1], weight.shape[0]
    sw = elem_strides(weight)
    out = dev.empty(tuple(x.shape[:-1]) + (n,), dtype)
    gemm(dev, dtype, m, n, k, 1, out, x, weight, (sxm, sxk, 0), (sw[1], sw[0], 0), (n, 1, 0),
         bias, (0, elem_strides(bias)[0] if bias is not None else 0, 0), activation=activation)
    return out


def linear_backward_weight(dev: Any, g: Any, x: Any) -> Any:
    """``g.T @ x`` over all leading dimensions: (out_features, in_features)."""
    dtype = float_dtype("linear_backward_weight", g, x)
    if not g.shape or not x.shape or tuple(g.shape[:-1]) != tuple(x.shape[:-1]):
        raise KernelUnsupported("bad shapes")
    g, (rows, sgr, sgc) = _as_rows(dev, g)
    x, (_, sxr, sxc) = _as_rows(dev, x)
    m, n = g.shape[-1], x.shape[-1]
    out = dev.empty((m, n), dtype)
    # A = g2.T (m x rows), B = x2 (rows x n)
    gemm(dev, dtype, m, n, rows, 1, out, g, x, (sgc, sgr, 0), (sxr, sxc, 0), (n, 1, 0))
    return out


def matmul_relu_backward(dev: Any, x1: Any, x2: Any, y: Any) -> Any:
    """``relu_backward(x1 @ x2, y)`` for 2-D operands in one GEMM: each value times ``y > 0``
    as the tile is stored."""
    dtype = float_dtype("matmul_relu_backward", x1, x2, y)
    if len(x1.shape) != 2 or len(x2.shape) != 2 or x1.shape[1] != x2.shape[0] or \
            tuple(y.shape) != (x1.shape[0], x2.shape[1]):
        raise KernelUnsupported("bad shapes")  # the reference explains the error
    (m, k), n = x1.shape, x2.shape[1]
    s1, s2, sy = elem_strides(x1), elem_strides(x2), elem_strides(y)
    out = dev.empty((m, n), dtype)
    gemm(dev, dtype, m, n, k, 1, out, x1, x2, (s1[0], s1[1], 0), (s2[0], s2[1], 0), (n, 1, 0),
         activation="relu_backward", mask=y, mask_strides=(sy[0], sy[1]))
    return out


KERNELS: dict = {"matmul": matmul, "linear": linear, "linear_backward_weight": linear_backward_weight,
                 "matmul_relu_backward": matmul_relu_backward}
