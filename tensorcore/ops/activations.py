"""Activation functions as fused ops: relu, sigmoid, gelu, softmax, log_softmax.

Each op's gradient is a fused ``<op>_backward`` op of its own (so device backends can
register kernels for both directions), and each backward op has a gradient written with
tensorcore ops, so second and higher-order gradients work.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tensorcore.dispatch import apply
from tensorcore.errors import OpError
from tensorcore.ops._axes import normalize_axis
from tensorcore.ops._define import reference_dtype, same_shape
from tensorcore.ops._nn import relu_into
from tensorcore.ops.arithmetic import add, multiply, subtract
from tensorcore.ops.math import exp
from tensorcore.ops.math import tanh as _tanh
from tensorcore.ops.reductions import sum as _sum
from tensorcore.ops.registry import Op, Spec, define
from tensorcore.tensor import Tensor

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TANH_C = math.sqrt(2.0 / math.pi)  # tanh approximation: tanh(c * (x + a x**3))
_TANH_A = 0.044715


def _backward_infer(name: str, reference: Any) -> Any:
    """Shape rule of ``<op>_backward(g, saved)``: both the same shape; the result too, with the
    dtype the reference gives."""

    def infer(g: Spec, saved: Spec, **attrs: Any) -> Spec:
        if g.shape != saved.shape:
            raise OpError(f"{name}: the gradient has shape {g.shape} but the saved tensor has shape {saved.shape}; expected equal shapes")
        return Spec(saved.shape, reference_dtype(reference, g, saved, **attrs))

    return infer


# --- relu ---------------------------------------------------------------------------


def _relu_backward_ref(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.empty_like(g)  # g and y have one shape (the rule checks it when this fails)
    np.greater(y, 0, out=out)  # 1.0 where the unit was active, else 0.0
    out *= g
    return out


_RELU_BACKWARD = define(Op(
    "relu_backward", _relu_backward_ref, infer=_backward_infer("relu_backward", _relu_backward_ref),
    grad=lambda ctx, h: (apply(_RELU_BACKWARD, (h, ctx.inputs[1])), None),  # relu'' = 0
    doc="relu's gradient: ``g`` where the relu output ``y`` is positive, else 0.",
))
_RELU = define(Op(
    "relu", relu_into, infer=same_shape,  # keeps x's dtype (bool too)
    grad=lambda ctx, g: (apply(_RELU_BACKWARD, (g, ctx.output)),),
    doc="Elementwise ``max(x, 0)``.",
))


def relu(x: Tensor, /) -> Tensor:
    """Rectified linear unit: ``max(x, 0)`` elementwise."""
    return apply(_RELU, (x,))


# --- sigmoid ------------------------------------------------------------------------


def _sigmoid_ref(x: np.ndarray) -> np.ndarray:
    # exp(-|x|) never overflows; then 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0.
    e = np.exp(-np.abs(x))
    out = np.where(x >= 0, 1.0, e).astype(e.dtype, copy=False)
    e += 1.0
    out /= e
    return out


def _sigmoid_backward_ref(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.subtract(1.0, y)
    out *= y
    out *= g
    return out


def _sigmoid_backward_grad(ctx: Any, h: Tensor) -> tuple:
    g, y = ctx.inputs
    dg = apply(_SIGMOID_BACKWARD, (h, y)) if ctx.needs_grad[0] else None
    dy = multiply(multiply(h, g), subtract(1.0, multiply(y, 2.0))) if ctx.needs_grad[1] else None
    return dg, dy


_SIGMOID_BACKWARD = define(Op(
    "sigmoid_backward", _sigmoid_backward_ref, infer=_backward_infer("sigmoid_backward", _sigmoid_backward_ref),
    grad=_sigmoid_backward_grad, doc="sigmoid's gradient ``g * y * (1 - y)`` from its output ``y``.",
))
_SIGMOID = define(Op(
    "sigmoid", _sigmoid_ref, infer=same_shape, float_only=True,
    grad=lambda ctx, g: (apply(_SIGMOID_BACKWARD, (g, ctx.output)),),
    doc="Elementwise logistic function ``1 / (1 + exp(-x))``.",
))


def sigmoid(x: Tensor, /) -> Tensor:
    """Logistic sigmoid ``1 / (1 + exp(-x))`` elementwise, without overflow for large ``|x|``."""
    return apply(_SIGMOID, (x,))


tanh = _tanh


# --- gelu ---------------------------------------------------------------------------

_erf_ufunc: Any = None


def _erf(x: np.ndarray) -> np.ndarray:
    """The error function elementwise (SciPy's ufunc when installed, else ``math.erf``)."""
    global _erf_ufunc
    if _erf_ufunc is None:
        try:
            from scipy.special import erf as _scipy_erf

            _erf_ufunc = _scipy_erf
        except ImportError:  # pragma: no cover - scipy comes with scikit-learn
            scalar = np.frompyfunc(math.erf, 1, 1)
            _erf_ufunc = lambda a: np.asarray(scalar(a), dtype=np.result_type(a, np.float32))  # noqa: E731
    return _erf_ufunc(x)


def _gelu_ref(x: np.ndarray, approximate: str) -> np.ndarray:
    if approximate == "tanh":
        inner = np.asarray(x * x)  # an array (x * x of a 0-d array is a scalar): np.tanh writes into it
        inner *= _TANH_A
        inner += 1.0
        inner *= x
        inner *= _TANH_C
        out = np.tanh(inner, out=inner)
    else:
        out = _erf(x * _SQRT_HALF)
    out += 1.0
    out *= 0.5  # before x: (1 + erf) / 2 is at most 1, so this never overflows where x * 2 would
    out *= x
    return out.astype(x.dtype, copy=False)


def _gelu_backward_ref(g: np.ndarray, x: np.ndarray, approximate: str) -> np.ndarray:
    if approximate == "tanh":
        x2 = x * x
        t = np.tanh(_TANH_C * x * (1.0 + _TANH_A * x2))
        du = _TANH_C * (1.0 + 3.0 * _TANH_A * x2)
        out = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du
    else:
        out = 0.5 * (1.0 + _erf(x * _SQRT_HALF)) + x * np.exp(-0.5 * x * x) * _INV_SQRT_2PI
    out *= g
    return out.astype(np.result_type(g, x), copy=False)


def _gelu_second(x: Tensor, approximate: str) -> Tensor:
    """gelu''(x) written with tensorcore ops (differentiable again)."""
    x2 = multiply(x, x)
    if approximate == "tanh":
        t = _tanh(multiply(multiply(x, add(multiply(x2, _TANH_A), 1.0)), _TANH_C))
        du = add(multiply(x2, 3.0 * _TANH_C * _TANH_A), _TANH_C)
        bracket = add(subtract(du, multiply(multiply(x, t), multiply(du, du))), multiply(x2, 3.0 * _TANH_C * _TANH_A))
        return multiply(subtract(1.0, multiply(t, t)), bracket)
    pdf = multiply(exp(multiply(x2, -0.5)), _INV_SQRT_2PI)
    return multiply(pdf, subtract(2.0, x2))


def _gelu_backward_grad(ctx: Any, h: Tensor) -> tuple:
    g, x = ctx.inputs
    approximate = ctx.attrs["approximate"]
    dg = apply(_GELU_BACKWARD, (h, x), ctx.attrs) if ctx.needs_grad[0] else None
    dx = multiply(multiply(h, g), _gelu_second(x, approximate)) if ctx.needs_grad[1] else None
    return dg, dx


_GELU_BACKWARD = define(Op(
    "gelu_backward", _gelu_backward_ref, infer=_backward_infer("gelu_backward", _gelu_backward_ref),
    grad=_gelu_backward_grad, doc="gelu's gradient ``g * gelu'(x)`` from its input ``x``.",
))
_GELU = define(Op(
    "gelu", _gelu_ref, infer=same_shape, float_only=True,
    grad=lambda ctx, g: (apply(_GELU_BACKWARD, (g, ctx.inputs[0]), ctx.attrs),),
    doc="Gaussian error linear unit ``x * Phi(x)`` (``approximate='tanh'``: the tanh form).",
))


def gelu(x: Tensor, /, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit ``x * Phi(x)``; ``approximate="tanh"`` uses the tanh formula."""
    if approximate not in ("none", "tanh"):
        raise OpError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return apply(_GELU, (x,), {"approximate": approximate})


# --- softmax and log_softmax --------------------------------------------------------


def _softmax_ref(x: np.ndarray, axis: int) -> np.ndarray:
    if x.size == 0:
        return np.zeros_like(x)
    out = np.subtract(x, x.max(axis=axis, keepdims=True))  # largest exponent is 0: no overflow
    np.exp(out, out=out)
    out /= out.sum(axis=axis, keepdims=True)
    return out


def _softmax_backward_ref(g: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
    gy = g * y
    s = gy.sum(axis=axis, keepdims=True)
    s = y * s
    gy -= s
    return gy


def _softmax_backward_grad(ctx: Any, h: Tensor) -> tuple:
    g, y = ctx.inputs
    axis = ctx.attrs["axis"]
    dg = apply(_SOFTMAX_BACKWARD, (h, y), ctx.attrs) if ctx.needs_grad[0] else None
    dy = None
    if ctx.needs_grad[1]:
        s = _sum(multiply(g, y), axis=axis, keepdims=True)
        hs = _sum(multiply(h, y), axis=axis, keepdims=True)
        dy = subtract(multiply(h, subtract(g, s)), multiply(g, hs))
    return dg, dy


_SOFTMAX_BACKWARD = define(Op(
    "softmax_backward", _softmax_backward_ref, infer=_backward_infer("softmax_backward", _softmax_backward_ref),
    grad=_softmax_backward_grad, doc="softmax's gradient ``y * (g - sum(g * y))`` from its output ``y``.",
))
_SOFTMAX = define(Op(
    "softmax", _softmax_ref, infer=same_shape, float_only=True,
    grad=lambda ctx, g: (apply(_SOFTMAX_BACKWARD, (g, ctx.output), ctx.attrs),),
    doc="``exp(x) / sum(exp(x))`` along ``axis``, computed stably.",
))


def _log_softmax_ref(x: np.ndarray, axis: int) -> np.ndarray:
    if x.size == 0:
        return np.zeros_like(x)
    out = np.subtract(x, x.max(axis=axis, keepdims=True))
    out -= np.log(np.exp(out).sum(axis=axis, keepdims=True))
    return out


def _log_softmax_backward_ref(g: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
    p = np.exp(y)
    p *= g.sum(axis=axis, keepdims=True)
    return np.subtract(g, p, out=p)


def _log_softmax_backward_grad(ctx: Any, h: Tensor) -> tuple:
    g, y = ctx.inputs
    axis = ctx.attrs["axis"]
    p = exp(y)
    dg = subtract(h, _sum(multiply(h, p), axis=axis, keepdims=True)) if ctx.needs_grad[0] else None
    dy = None
    if ctx.needs_grad[1]:
        dy = multiply(multiply(h, p), multiply(_sum(g, axis=axis, keepdims=True), -1.0))
    return dg, dy


_LOG_SOFTMAX_BACKWARD = define(Op(
    "log_softmax_backward", _log_softmax_backward_ref, infer=_backward_infer("log_softmax_backward", _log_softmax_backward_ref),
    grad=_log_softmax_backward_grad, doc="log_softmax's gradient ``g - exp(y) * sum(g)`` from its output ``y``.",
))
_LOG_SOFTMAX = define(Op(
    "log_softmax", _log_softmax_ref, infer=same_shape, float_only=True,
    grad=lambda ctx, g: (apply(_LOG_SOFTMAX_BACKWARD, (g, ctx.output), ctx.attrs),),
    doc="``x - log(sum(exp(x)))`` along ``axis``, computed stably.",
))


def _along(op: Op, x: Tensor, axis: int) -> Tensor:
    if not isinstance(x, Tensor):
        raise OpError(f"{op.name}: expected a tensor, got {type(x).__name__}")
    return apply(op, (x,), {"axis": normalize_axis(op.name, axis, x.ndim)})


def softmax(x: Tensor, /, axis: int = -1) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``axis`` (the maximum is subtracted first: no overflow)."""
    return _along(_SOFTMAX, x, axis)


def log_softmax(x: Tensor, /, axis: int = -1) -> Tensor:
    """``log(softmax(x))`` along ``axis``, computed as ``x - max - log(sum(exp(x - max)))``."""
    return _along(_LOG_SOFTMAX, x, axis)


__all__ = ["relu", "sigmoid", "tanh", "gelu", "softmax", "log_softmax"]
