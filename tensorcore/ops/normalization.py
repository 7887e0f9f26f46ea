"""Normalization and regularization: ``batch_norm``, ``layer_norm`` and ``dropout``.

Training-mode ``batch_norm`` is one fused op with three outputs: the normalized tensor and
the batch mean and (biased) variance per channel, which the public function uses to update
the running statistics in place and the fused backward op ``batch_norm_backward`` reuses.
The mean and variance outputs are internal: the backward's own gradient is taken through a
composite that recomputes them from ``x``, so no gradient ever reaches those outputs.
Eval-mode ``batch_norm`` and ``layer_norm`` are compositions of differentiable ops.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tensorcore.dispatch import apply, apply_inplace
from tensorcore.errors import OpError
from tensorcore.ops._nn import require_tensor, vjp_through
from tensorcore.ops.arithmetic import add, divide, multiply, subtract
from tensorcore.ops.manipulation import reshape
from tensorcore.ops.math import sqrt
from tensorcore.ops.reductions import mean as _mean
from tensorcore.ops.reductions import sum as _sum
from tensorcore.ops.registry import Op, Spec, define
from tensorcore.tensor import Tensor


def _layout(x_shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    """Reduced axes, the per-channel broadcast shape, and the count per channel."""
    axes = (0,) + tuple(range(2, len(x_shape)))
    shape = (1, x_shape[1]) + (1,) * (len(x_shape) - 2)
    count = math.prod(x_shape) // max(x_shape[1], 1)
    return axes, shape, count


# --- batch_norm, training mode ------------------------------------------------------


def _bn_ref(x: np.ndarray, *params: np.ndarray, eps: float, has_weight: bool, has_bias: bool) -> tuple:
    axes, shape, _ = _layout(x.shape)
    mean = x.mean(axis=axes)
    out = np.subtract(x, mean.reshape(shape))
    sq = np.square(out)
    var = sq.mean(axis=axes)
    del sq
    scale = 1.0 / np.sqrt(var + eps)
    if has_weight:
        scale = scale * params[0]
    out *= scale.reshape(shape)
    if has_bias:
        out += params[-1].reshape(shape)
    return out, mean.astype(x.dtype, copy=False), var.astype(x.dtype, copy=False)


def _bn_backward_ref(g: np.ndarray, x: np.ndarray, mean: np.ndarray, var: np.ndarray, *weight: np.ndarray, eps: float, has_weight: bool) -> tuple:
    axes, shape, count = _layout(x.shape)
    invstd = 1.0 / np.sqrt(var + eps)
    xhat = np.subtract(x, mean.reshape(shape))
    xhat *= invstd.reshape(shape)
    gb = g.sum(axis=axes)
    gw = (g * xhat).sum(axis=axes)
    # gx = w * invstd * (g - mean(g) - xhat * mean(g * xhat)), built in xhat's buffer
    xhat *= (gw / -count).reshape(shape)
    xhat += g
    xhat -= (gb / count).reshape(shape)
    scale = invstd * weight[0] if has_weight else invstd
    xhat *= scale.reshape(shape)
    return xhat, gw.astype(x.dtype, copy=False), gb.astype(x.dtype, copy=False)


def _bn_backward_composite(g: Tensor, x: Tensor, mean: Tensor, var: Tensor, *weight: Tensor, eps: float, has_weight: bool) -> tuple:
    """The backward with tensorcore ops; recomputes the statistics from ``x``."""
    axes, shape, count = _layout(x.shape)
    centered = subtract(x, _mean(x, axis=axes, keepdims=True))
    invstd = divide(1.0, sqrt(add(_mean(multiply(centered, centered), axis=axes, keepdims=True), eps)))
    xhat = multiply(centered, invstd)
    gb = _sum(g, axis=axes, keepdims=True)
    gw = _sum(multiply(g, xhat), axis=axes, keepdims=True)
    inner = subtract(subtract(g, divide(gb, count)), multiply(xhat, divide(gw, count)))
    scale = multiply(invstd, reshape(weight[0], shape)) if has_weight else invstd
    c = x.shape[1]
    return multiply(inner, scale), reshape(gw, (c,)), reshape(gb, (c,))


_BN_BACKWARD = define(Op(
    "batch_norm_backward", _bn_backward_ref, n_outputs=3,
    infer=lambda g, x, mean, var, *w, **_: (x, mean, mean),
    grad=vjp_through(_bn_backward_composite, skip=(2, 3)),
    composite=_bn_backward_composite,
    doc="batch_norm's gradients (x, sum(g * xhat), sum(g)) from the saved batch mean and variance.",
))


def _bn_grad(ctx: Any, g: Tensor, _g_mean: Tensor, _g_var: Tensor) -> tuple:
    # _g_mean and _g_var are always zero: the statistics never reach user code (module doc).
    x, *params = ctx.inputs
    has_weight, has_bias = ctx.attrs["has_weight"], ctx.attrs["has_bias"]
    mean, var = ctx.outputs[1], ctx.outputs[2]
    weight = (params[0],) if has_weight else ()
    gx, gw, gb = apply(_BN_BACKWARD, (g, x, mean, var) + weight, {"eps": ctx.attrs["eps"], "has_weight": has_weight})
    grads = [gx]
    if has_weight:
        grads.append(gw)
    if has_bias:
        grads.append(gb)
    return tuple(grads)


def _bn_infer(x: Spec, *params: Spec, **_: Any) -> tuple[Spec, Spec, Spec]:
    stat = Spec((x.shape[1],), x.dtype)
    return x, stat, stat


_BATCH_NORM = define(Op(
    "batch_norm", _bn_ref, infer=_bn_infer, grad=_bn_grad, float_only=True, n_outputs=3,
    doc="Training-mode batch normalization over all axes but 1; outputs (y, batch mean, batch variance).",
))


def _running_update_ref(dst: np.ndarray, src: np.ndarray, *, momentum: float, correction: float) -> None:
    if dst.shape != src.shape:
        raise OpError(f"batch_norm: running statistic of shape {dst.shape} cannot take a batch statistic of shape {src.shape}")
    dst *= 1.0 - momentum
    dst += (momentum * correction) * src


_RUNNING_UPDATE = define(Op(
    "batch_norm_update_running", _running_update_ref,
    doc="In place: running = (1 - momentum) * running + momentum * correction * batch.",
))


def _update_running(stat: Tensor, batch: Tensor, momentum: float, correction: float) -> None:
    apply_inplace(_RUNNING_UPDATE, stat, (batch,), {"momentum": momentum, "correction": correction})


# --- batch_norm, public ---------------------------------------------------------------


def _check_channel_param(name: str, what: str, p: Any, c: int) -> None:
    if p is None:
        return
    require_tensor(name, what, p)
    if p.shape != (c,):
        raise OpError(f"{name}: {what} must have shape ({c},) (one value per channel), got {p.shape}")


def batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalization of ``x`` ``(N, C, ...)`` per channel (axis 1), PyTorch semantics.

    Training: normalize with the batch statistics and update ``running_mean`` and
    ``running_var`` in place (``(1 - momentum) * running + momentum * batch``, the variance
    unbiased). Eval: normalize with the running statistics. Differentiable w.r.t. ``x``,
    ``weight`` and ``bias``.
    """
    require_tensor("batch_norm", "input", x, floating=True)
    if x.ndim < 2:
        raise OpError(f"batch_norm: input must have at least 2 dimensions (N, C, ...), got shape {x.shape}")
    c = x.shape[1]
    for what, p in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        _check_channel_param("batch_norm", what, p, c)
    if not training:
        if running_mean is None or running_var is None:
            raise OpError("batch_norm: eval mode (training=False) needs running_mean and running_var")
        return _batch_norm_eval(x, running_mean, running_var, weight, bias, eps)
    _, _, count = _layout(x.shape)
    if count <= 1:
        raise OpError(f"batch_norm: training needs more than 1 value per channel, got input shape {x.shape}")
    params = tuple(p for p in (weight, bias) if p is not None)
    attrs = {"eps": float(eps), "has_weight": weight is not None, "has_bias": bias is not None}
    y, mean, var = apply(_BATCH_NORM, (x,) + params, attrs)
    if running_mean is not None:
        _update_running(running_mean, mean, momentum, 1.0)
    if running_var is not None:
        _update_running(running_var, var, momentum, count / (count - 1))
    return y


def _batch_norm_eval(x: Tensor, mean: Tensor, var: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
    """``(x - mean) / sqrt(var + eps) * weight + bias`` as one per-channel scale and shift."""
    _, shape, _ = _layout(x.shape)
    scale = divide(1.0, sqrt(add(var, eps)))
    if weight is not None:
        scale = multiply(scale, weight)
    shift = multiply(mean, scale)
    shift = subtract(bias, shift) if bias is not None else multiply(shift, -1.0)
    return add(multiply(x, reshape(scale, shape)), reshape(shift, shape))


# --- layer_norm and dropout ---------------------------------------------------------


def layer_norm(x: Tensor, normalized_shape: Any, weight: Tensor | None = None, bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize over the trailing ``normalized_shape`` axes, then scale by ``weight`` and add ``bias``."""
    require_tensor("layer_norm", "input", x, floating=True)
    norm = (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) else tuple(int(n) for n in normalized_shape)
    k = len(norm)
    if k == 0 or k > x.ndim or x.shape[x.ndim - k:] != norm:
        raise OpError(f"layer_norm: normalized_shape {norm} must match the trailing dimensions of the input {x.shape}")
    for what, p in (("weight", weight), ("bias", bias)):
        if p is not None:
            require_tensor("layer_norm", what, p)
            if p.shape != norm:
                raise OpError(f"layer_norm: {what} must have shape {norm} (normalized_shape), got {p.shape}")
    axes = tuple(range(x.ndim - k, x.ndim))
    centered = subtract(x, _mean(x, axis=axes, keepdims=True))
    var = _mean(multiply(centered, centered), axis=axes, keepdims=True)
    out = divide(centered, sqrt(add(var, eps)))
    if weight is not None:
        out = multiply(out, weight)
    if bias is not None:
        out = add(out, bias)
    return out


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale the rest by ``1 / (1 - p)``.

    The identity when ``training`` is False or ``p`` is 0. The mask comes from ``tc.random``.
    """
    from tensorcore.random import bernoulli

    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise OpError(f"dropout: p must be a probability in [0, 1), got {p!r}")
    require_tensor("dropout", "input", x, floating=True)
    if not training or p == 0:
        return x
    mask = bernoulli(x.shape, 1.0 - p, dtype=x.dtype, device=x.device)
    return multiply(x, multiply(mask, 1.0 / (1.0 - p)))


__all__ = ["batch_norm", "layer_norm", "dropout"]
