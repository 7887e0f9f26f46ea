"""Dense layers: ``linear`` (the MLP hot path) and ``embedding``, as fused ops.

``linear``'s gradient is ``matmul`` for the input and the fused ops ``linear_backward_weight``
and ``linear_backward_bias`` for the weight and bias; ``embedding``'s is the scatter-add
``embedding_backward``. All of them have gradients of their own, so second-order gradients work.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tensorcore.dispatch import apply
from tensorcore.errors import OpError, index_position
from tensorcore.ops._nn import apply_epilogue, check_epilogue, require_tensor, through_epilogue
from tensorcore.ops.host_gemm import gemm
from tensorcore.ops.linalg import matmul
from tensorcore.ops.manipulation import broadcast_to, matrix_transpose
from tensorcore.ops.registry import OPS, Op, Spec, define
from tensorcore.tensor import Tensor

# --- linear -------------------------------------------------------------------------


def _linear_ref(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, activation: str | None = None) -> np.ndarray:
    if w.ndim != 2 or x.ndim == 0 or (b is not None and b.shape != w.shape[:1]):
        raise ValueError("bad shapes")  # explained by _linear_infer
    out = gemm(x, w.T)  # w.T is a view: BLAS reads it transposed, no copy
    if b is not None:
        if b.dtype == out.dtype:
            out += b
        else:
            out = out + b
    return apply_epilogue(out, activation)


def _linear_infer(x: Spec, w: Spec, b: Spec | None = None, activation: str | None = None) -> Spec:
    check_epilogue("linear", activation)
    if len(w.shape) != 2:
        raise OpError(f"linear: weight must be 2-D (out_features, in_features), got shape {w.shape}")
    if len(x.shape) == 0 or x.shape[-1] != w.shape[1]:
        raise OpError(
            f"linear: input of shape {x.shape} has {x.shape[-1] if x.shape else 'no'} features but weight "
            f"{w.shape} expects in_features={w.shape[1]} in the input's last dimension"
        )
    if b is not None and tuple(b.shape) != (w.shape[0],):
        raise OpError(f"linear: bias must have shape ({w.shape[0]},) (out_features), got {b.shape}")
    dtypes = [s.dtype for s in (x, w, b) if s is not None]
    return Spec(tuple(x.shape[:-1]) + (w.shape[0],), np.result_type(*dtypes))


def _linear_backward_weight_ref(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    rows = math.prod(g.shape[:-1])  # not -1: a reshape of an empty tensor cannot infer it
    g2 = g.reshape(rows, g.shape[-1])
    x2 = x.reshape(rows, x.shape[-1])
    return gemm(g2.T, x2)


def _linear_backward_weight_infer(g: Spec, x: Spec) -> Spec:
    if g.shape[:-1] != x.shape[:-1]:
        raise OpError(f"linear_backward_weight: gradient {g.shape} and input {x.shape} differ before the last dimension")
    return Spec((g.shape[-1], x.shape[-1]), np.result_type(g.dtype, x.dtype))


def _linear_backward_weight_grad(ctx: Any, h: Tensor) -> tuple:
    g, x = ctx.inputs
    dg = apply(_LINEAR, (x, h)) if ctx.needs_grad[0] else None  # x @ h.T
    dx = matmul(g, h) if ctx.needs_grad[1] else None
    return dg, dx


def _linear_backward_bias_ref(g: np.ndarray) -> np.ndarray:
    return np.add.reduce(g.reshape(math.prod(g.shape[:-1]), g.shape[-1]) if g.ndim != 2 else g, axis=0)


_LINEAR_BACKWARD_BIAS = define(Op(
    "linear_backward_bias", _linear_backward_bias_ref,
    infer=lambda g: Spec(tuple(g.shape[-1:]), g.dtype),
    grad=lambda ctx, h: (broadcast_to(h, ctx.inputs[0].shape),),
    doc="linear's bias gradient: ``g`` summed over all but its last dimension.",
))
_LINEAR_BACKWARD_WEIGHT = define(Op(
    "linear_backward_weight", _linear_backward_weight_ref, infer=_linear_backward_weight_infer,
    grad=_linear_backward_weight_grad,
    doc="linear's weight gradient ``g.T @ x`` over all leading dimensions: shape (out, in).",
))


def _linear_grad(ctx: Any, g: Tensor) -> tuple:
    inputs, needs = ctx.inputs, ctx.needs_grad
    x, w = inputs[0], inputs[1]
    g = through_epilogue(ctx, g)
    gx = matmul(g, w) if needs[0] else None
    gw = apply(_LINEAR_BACKWARD_WEIGHT, (g, x)) if needs[1] else None
    if len(inputs) == 2:
        return gx, gw
    gb = None
    if needs[2]:
        gb = g if g.ndim == 1 else apply(_LINEAR_BACKWARD_BIAS, (g,))
    return gx, gw, gb


_LINEAR = define(Op(
    "linear", _linear_ref, infer=_linear_infer, grad=_linear_grad,
    doc="``x @ weight.T + bias`` with weight of shape (out_features, in_features); with the "
        "``activation`` attribute (one of ``_nn.EPILOGUES``: ``'relu'``, ``'gelu'``, ``'gelu_tanh'``, "
        "``'sigmoid'``, ``'tanh'``), that activation of it, applied as the result is stored.",
))


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias``: weight is ``(out_features, in_features)``, bias ``(out_features,)``."""
    if bias is None:
        return apply(_LINEAR, (x, weight))
    return apply(_LINEAR, (x, weight, bias))


# --- the backward's epilogue: relu_backward of a product ---------------------------------


def _matmul_relu_backward_ref(x1: np.ndarray, x2: np.ndarray, y: np.ndarray) -> np.ndarray:
    if x1.ndim != 2 or x2.ndim != 2 or y.shape != (x1.shape[0], x2.shape[1]):
        raise ValueError("bad shapes")  # explained by _matmul_relu_backward_infer
    return OPS["relu_backward"].reference(gemm(x1, x2), y)  # relu_backward's own reference: the same bits


def _matmul_relu_backward_infer(x1: Spec, x2: Spec, y: Spec) -> Spec:
    if len(x1.shape) != 2 or len(x2.shape) != 2 or x1.shape[1] != x2.shape[0]:
        raise OpError(f"matmul_relu_backward: needs 2-D operands whose inner dimensions agree, got {x1.shape} @ {x2.shape}")
    if tuple(y.shape) != (x1.shape[0], x2.shape[1]):
        raise OpError(f"matmul_relu_backward: the relu output must have the product's shape "
                      f"{(x1.shape[0], x2.shape[1])}, got {y.shape}")
    return Spec((x1.shape[0], x2.shape[1]), np.result_type(x1.dtype, x2.dtype))


def _matmul_relu_backward_grad(ctx: Any, h: Tensor) -> tuple:
    x1, x2, y = ctx.inputs
    masked = apply(OPS["relu_backward"], (h, y))
    return (matmul(masked, matrix_transpose(x2)) if ctx.needs_grad[0] else None,
            matmul(matrix_transpose(x1), masked) if ctx.needs_grad[1] else None, None)


MATMUL_RELU_BACKWARD = define(Op(
    "matmul_relu_backward", _matmul_relu_backward_ref, infer=_matmul_relu_backward_infer,
    grad=_matmul_relu_backward_grad,
    doc="``relu_backward(x1 @ x2, y)`` for 2-D operands: the product where the relu output ``y`` "
        "is positive, else 0, in one GEMM (the graph rewrite's backward epilogue).",
))


# --- embedding ----------------------------------------------------------------------


def _check_indices(op: str, indices: np.ndarray, rows: int) -> None:
    if indices.size:
        lo, hi = int(indices.min()), int(indices.max())
        if lo < 0 or hi >= rows:
            at = int(np.flatnonzero((indices < 0) | (indices >= rows))[0])  # named as a device names it
            raise OpError(f"{op}: index {int(indices.reshape(-1)[at])} is out of range for a weight with {rows} rows"
                          f"{index_position(at, indices.shape)}; expected 0 <= index < {rows}")


def _embedding_ref(indices: np.ndarray, weight: np.ndarray) -> np.ndarray:
    if indices.dtype.kind not in "iu" or weight.ndim != 2:
        raise ValueError("bad inputs")  # explained by _embedding_infer
    _check_indices("embedding", indices, weight.shape[0])
    return np.take(weight, indices, axis=0)


def _embedding_infer(indices: Spec, weight: Spec) -> Spec:
    if indices.dtype.kind not in "iu":
        raise OpError(f"embedding: indices must be an integer tensor, got {indices.dtype}")
    if len(weight.shape) != 2:
        raise OpError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got shape {weight.shape}")
    return Spec(tuple(indices.shape) + (weight.shape[1],), weight.dtype)


def _embedding_backward_ref(g: np.ndarray, indices: np.ndarray, num_embeddings: int) -> np.ndarray:
    dim = g.shape[-1]
    out = np.zeros((num_embeddings, dim), dtype=g.dtype)
    np.add.at(out, indices.reshape(-1), g.reshape(indices.size, dim))  # repeated indices accumulate
    return out


_EMBEDDING_BACKWARD = define(Op(
    "embedding_backward", _embedding_backward_ref,
    infer=lambda g, indices, num_embeddings: Spec((num_embeddings, g.shape[-1]), g.dtype),
    grad=lambda ctx, h: (apply(_EMBEDDING, (ctx.inputs[1], h)), None),
    doc="embedding's weight gradient: rows of ``g`` scatter-added at ``indices``.",
))
_EMBEDDING = define(Op(
    "embedding", _embedding_ref, infer=_embedding_infer,
    grad=lambda ctx, g: (None, apply(_EMBEDDING_BACKWARD, (g, ctx.inputs[0]), {"num_embeddings": ctx.inputs[1].shape[0]})),
    doc="Rows of ``weight`` at integer ``indices``.",
))


def embedding(indices: Tensor, weight: Tensor) -> Tensor:
    """Rows of ``weight`` ``(num_embeddings, dim)`` at integer ``indices``: shape ``indices.shape + (dim,)``."""
    require_tensor("embedding", "indices", indices)
    require_tensor("embedding", "weight", weight, ndim=2)
    if indices.dtype.kind not in "iu":
        raise OpError(f"embedding: indices must be an integer tensor, got {indices.dtype}")
    return apply(_EMBEDDING, (indices, weight))


__all__ = ["linear", "embedding"]
