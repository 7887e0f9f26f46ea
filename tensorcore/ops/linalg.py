"""Products of tensors: matmul (with batching and broadcasting), tensordot, vecdot."""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore.dispatch import apply
from tensorcore.errors import OpError
from tensorcore.ops.arithmetic import multiply, sum_to_shape
from tensorcore.ops.complex_parts import conj_of
from tensorcore.ops.host_gemm import gemm
from tensorcore.ops.manipulation import matrix_transpose, reshape
from tensorcore.ops.registry import Op, Spec, define
from tensorcore.tensor import Tensor


def _matmul_infer(a: Spec, b: Spec) -> Spec:
    if not a.shape or not b.shape:
        raise OpError(f"matmul: inputs must be at least 1-D, got shapes {a.shape} and {b.shape}")
    k1 = a.shape[-1]
    k2 = b.shape[0] if len(b.shape) == 1 else b.shape[-2]
    if k1 != k2:
        raise OpError(
            f"matmul: inner dimensions differ: x1 has shape {a.shape} (last dim {k1}) and x2 has "
            f"shape {b.shape} ({'only' if len(b.shape) == 1 else 'second-to-last'} dim {k2}); expected them equal"
        )
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise OpError(f"matmul: batch dimensions of {a.shape} and {b.shape} cannot be broadcast together") from None
    rows = a.shape[-2:-1] if len(a.shape) > 1 else ()
    cols = b.shape[-1:] if len(b.shape) > 1 else ()
    return Spec(batch + rows + cols, np.result_type(a.dtype, b.dtype))


def _matmul_grad(ctx: Any, g: Tensor) -> tuple:
    a, b = ctx.inputs
    a2 = reshape(a, (1, a.shape[0])) if a.ndim == 1 else a
    b2 = reshape(b, (b.shape[0], 1)) if b.ndim == 1 else b
    g2 = g
    if a.ndim == 1:
        g2 = reshape(g2, g2.shape[:-1] + (1,) + g2.shape[-1:]) if b.ndim > 1 else reshape(g2, g2.shape + (1,))
    if b.ndim == 1:
        g2 = reshape(g2, g2.shape + (1,))
    ga = gb = None
    # For complex inputs the conjugate transposes: ga = g @ b^H, gb = a^H @ g.
    if ctx.needs_grad[0]:
        ga = reshape(sum_to_shape(matmul(g2, conj_of(matrix_transpose(b2))), a2.shape), a.shape)
    if ctx.needs_grad[1]:
        gb = reshape(sum_to_shape(matmul(conj_of(matrix_transpose(a2)), g2), b2.shape), b.shape)
    return ga, gb


# host_gemm.gemm is np.matmul (vectors and non-BLAS dtypes pass straight through), BLAS warmed first.
_MATMUL = define(Op("matmul", gemm, infer=_matmul_infer, grad=_matmul_grad, doc="Matrix product.", complex_grad=True))


def matmul(x1: Tensor, x2: Tensor, /) -> Tensor:
    """Matrix product with NumPy's rules for 1-D operands and broadcast batch dimensions."""
    return apply(_MATMUL, (x1, x2))


def tensordot(x1: Tensor, x2: Tensor, /, *, axes: Any = 2) -> Tensor:
    """Sum of products over the given axes (an int n: last n of x1 with first n of x2)."""
    from tensorcore.ops.manipulation import permute_dims

    if isinstance(axes, int):
        if axes < 0 or axes > min(x1.ndim, x2.ndim):
            raise OpError(f"tensordot: axes={axes} is invalid for shapes {x1.shape} and {x2.shape}")
        ax1, ax2 = list(range(x1.ndim - axes, x1.ndim)), list(range(axes))
    else:
        ax1, ax2 = [a % x1.ndim for a in axes[0]], [a % x2.ndim for a in axes[1]]
    if len(ax1) != len(ax2) or any(x1.shape[i] != x2.shape[j] for i, j in zip(ax1, ax2)):
        raise OpError(f"tensordot: contracted axes {ax1} of {x1.shape} and {ax2} of {x2.shape} differ in size")
    free1 = [i for i in range(x1.ndim) if i not in ax1]
    free2 = [j for j in range(x2.ndim) if j not in ax2]
    k = int(np.prod([x1.shape[i] for i in ax1], dtype=np.int64))
    a = reshape(permute_dims(x1, tuple(free1 + ax1)), (-1, k) if free1 else (1, k))
    b = reshape(permute_dims(x2, tuple(ax2 + free2)), (k, -1) if free2 else (k, 1))
    return reshape(matmul(a, b), tuple(x1.shape[i] for i in free1) + tuple(x2.shape[j] for j in free2))


def vecdot(x1: Tensor, x2: Tensor, /, *, axis: int = -1) -> Tensor:
    """Dot product of vectors along ``axis`` (broadcasting the other dimensions):
    ``sum(conj(x1) * x2)``, conjugating ``x1`` as the spec asks for complex vectors."""
    from tensorcore.ops.reductions import sum as sum_

    n1, n2 = x1.shape[axis] if x1.ndim else None, x2.shape[axis] if x2.ndim else None
    if n1 != n2:
        raise OpError(f"vecdot: axis {axis} has size {n1} in x1 {x1.shape} but {n2} in x2 {x2.shape}")
    product = multiply(conj_of(x1), x2)
    # In the promoted dtype, as the spec asks (sum alone widens small integers to 64 bits).
    return sum_(product, axis=axis, dtype=product.dtype)


__all__ = ["matmul", "tensordot", "vecdot"]
