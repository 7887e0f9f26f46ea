"""``norm_partial``: one device's share of a global norm over many tensors, as one op.

``clip_grad_norm`` (``tensorcore/nn/utils.py``) needs the norm of all gradients together. Read
one tensor at a time, that is a reduction launch per gradient; ``norm_partial`` takes every
tensor of one device as inputs of one op, so a backend reads them all in one pass (OpenCL:
one launch per 16 tensors; CUDA: one launch over a table of pointers) and writes a single
0-d partial: ``sum(|x| ** norm_type)`` over every element of every input, or ``max(|x|)`` for
``norm_type=inf``. The caller adds (or takes the maximum of) the partials of several devices and
takes the ``1/norm_type`` root, all on a device, so a traced step never waits for the host.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tensorcore.dispatch import apply
from tensorcore.errors import OpError
from tensorcore.ops.arithmetic import add, maximum, multiply
from tensorcore.ops.arithmetic import pow as _pow
from tensorcore.ops.creation import zeros
from tensorcore.ops.logic import astype, equal
from tensorcore.ops.math import abs as _abs
from tensorcore.ops.math import sign, square
from tensorcore.ops.reductions import max as _max
from tensorcore.ops.reductions import sum as _sum
from tensorcore.ops.registry import Op, Spec, define
from tensorcore.tensor import Tensor


def check_norm_type(what: str, norm_type: Any) -> float:
    """``norm_type`` as a float: a positive number or ``inf``; else an error naming ``what``."""
    if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float, np.integer, np.floating)) or not norm_type > 0:
        raise OpError(f"{what}: norm_type must be a positive number or inf (e.g. 2.0, 1.0, math.inf), got {norm_type!r}")
    return float(norm_type)


def _result_dtype(what: str, dtypes: list[np.dtype]) -> np.dtype:
    if not dtypes:
        raise OpError(f"{what}: needs at least one tensor")
    bad = [str(d) for d in dtypes if np.dtype(d).kind != "f"]
    if bad:
        raise OpError(f"{what}: tensors must be floating point, got {', '.join(sorted(set(bad)))}")
    return np.dtype(np.result_type(*dtypes))


def _norm_partial_ref(*xs: np.ndarray, norm_type: float) -> np.ndarray:
    dtype = _result_dtype("norm_partial", [x.dtype for x in xs])
    if norm_type == math.inf:
        peaks = [np.max(np.abs(x)) for x in xs if x.size]
        return np.asarray(np.max(peaks) if peaks else 0, dtype)  # np.max: a NaN anywhere wins
    total = dtype.type(0)
    for x in xs:
        flat = x.astype(dtype, copy=False).ravel()
        if norm_type == 2.0:
            total += np.dot(flat, flat)
        elif norm_type == 1.0:
            total += np.sum(np.abs(flat))
        else:
            total += np.sum(np.abs(flat) ** dtype.type(norm_type))
    return np.asarray(total, dtype)


def _norm_partial_infer(*xs: Spec, norm_type: float) -> Spec:
    return Spec((), _result_dtype("norm_partial", [x.dtype for x in xs]))


def _norm_partial_composite(*xs: Tensor, norm_type: float) -> Tensor:
    """The op with other ops, one reduction per tensor: for a backend without the kernel."""
    dtype = _result_dtype("norm_partial", [x.dtype for x in xs])
    parts = []
    for x in xs:
        if x.size == 0:
            continue
        if x.dtype != dtype:  # cast first, as the reference: |x|**p may overflow a narrower dtype
            x = astype(x, dtype)
        if norm_type == math.inf:
            part = _max(_abs(x))
        elif norm_type == 2.0:
            part = _sum(square(x))
        elif norm_type == 1.0:
            part = _sum(_abs(x))
        else:
            part = _sum(_pow(_abs(x), norm_type))
        parts.append(part)
    if not parts:
        return zeros((), dtype=dtype, device=xs[0].device)
    total = parts[0]
    for part in parts[1:]:
        total = maximum(total, part) if norm_type == math.inf else add(total, part)
    return total


def _norm_partial_grad(ctx: Any, g: Tensor) -> tuple:
    """d/dx of ``sum |x|**p`` is ``p * sign(x) * |x|**(p-1)``; for ``max |x|`` the gradient
    goes to every element whose magnitude is the maximum (a subgradient)."""
    norm_type = ctx.attrs["norm_type"]
    grads: list[Any] = []
    for x, need in zip(ctx.inputs, ctx.needs_grad):
        if not need:
            grads.append(None)
            continue
        gx = g if g.dtype == x.dtype else astype(g, x.dtype)
        if norm_type == 2.0:
            d = multiply(x, 2.0)
        elif norm_type == 1.0:
            d = sign(x)
        elif norm_type == math.inf:
            peak = ctx.outputs[0] if ctx.outputs[0].dtype == x.dtype else astype(ctx.outputs[0], x.dtype)
            d = multiply(sign(x), astype(equal(_abs(x), peak), x.dtype))
        else:
            d = multiply(sign(x), multiply(_pow(_abs(x), norm_type - 1.0), norm_type))
        grads.append(multiply(d, gx))
    return tuple(grads)


NORM_PARTIAL = define(Op(
    "norm_partial", _norm_partial_ref, infer=_norm_partial_infer, grad=_norm_partial_grad,
    composite=_norm_partial_composite, float_only=True,
    doc="``sum(|x| ** norm_type)`` over every element of every input (``max |x|`` for norm_type=inf), as one 0-d "
        "tensor: one device's share of a global norm, read in one pass.",
))


def norm_partial(*tensors: Tensor, norm_type: float = 2.0) -> Tensor:
    """``sum(|x| ** norm_type)`` over all elements of all ``tensors`` (``max |x|`` for ``norm_type=inf``),
    a 0-d tensor of their result dtype; the tensors should share a device (others are copied).

    The building block of :func:`tensorcore.nn.utils.global_norm`: ``global_norm = partial ** (1/norm_type)``.
    """
    norm_type = check_norm_type("norm_partial", norm_type)
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise OpError(f"norm_partial: input {i} must be a tensor, got {type(t).__name__}")
    _result_dtype("norm_partial", [t.dtype for t in tensors])
    return apply(NORM_PARTIAL, tuple(tensors), {"norm_type": norm_type})


# Not star-exported into the tc namespace: reached as tensorcore.ops.global_norm.norm_partial
# and through tc.nn.utils.
__all__: list[str] = []
