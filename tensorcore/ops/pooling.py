"""2-D max and average pooling (NCHW, PyTorch semantics, floor mode) and their backward ops.

``max_pool2d`` is an op with two outputs: the pooled values and, for each, the flat index
``row * W + col`` of the chosen element in its (unpadded) input plane; its backward op
``max_pool2d_backward`` scatter-adds the gradient to those indices. ``avg_pool2d`` counts
the zero padding in each window's average (``count_include_pad=True``); its backward op
``avg_pool2d_backward`` is its adjoint, so each is the other's gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore.dispatch import apply
from tensorcore.errors import OpError
from tensorcore.ops._nn import conv_out_size, pad2d, pair, require_tensor
from tensorcore.ops.creation import arange
from tensorcore.ops.indexing import getitem
from tensorcore.ops.manipulation import reshape
from tensorcore.ops.registry import Op, Spec, define
from tensorcore.tensor import Tensor

_Pair = tuple[int, int]
_ONE = (1, 1)


def _out_size(h: int, w: int, kernel: _Pair, stride: _Pair, padding: _Pair) -> _Pair:
    return conv_out_size(h, kernel[0], stride[0], padding[0], 1), conv_out_size(w, kernel[1], stride[1], padding[1], 1)


def _taps(kernel: _Pair, stride: _Pair, out: _Pair) -> Any:
    """For each kernel tap (i, j): the strided slice of the padded plane it reads."""
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            yield (Ellipsis, slice(i, i + stride[0] * (out[0] - 1) + 1, stride[0]), slice(j, j + stride[1] * (out[1] - 1) + 1, stride[1]))


# --- max pooling --------------------------------------------------------------------


def _max_pool_ref(x: np.ndarray, *, kernel_size: _Pair, stride: _Pair, padding: _Pair) -> tuple[np.ndarray, np.ndarray]:
    if kernel_size == stride == (2, 2) and padding == (0, 0) and x.size and x.dtype.kind in "iuf":
        pooled = _max_pool_2x2(x)
        if pooled is not None:
            return pooled
    return _max_pool_taps(x, kernel_size=kernel_size, stride=stride, padding=padding)


def _max_pool_2x2(x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The 2x2, stride 2 pool in two pairwise stages, or None where a NaN is pooled (then
    :func:`_max_pool_taps` chooses it). Each row's two columns first, then the two rows: ties
    keep the first, so the chosen element is the first maximum in the window's row-major
    order, and the values and indices are those of :func:`_max_pool_taps`, in half the passes
    over memory (3.2 against 9.0-9.4 ms for a (64, 32, 32, 32) float32 batch on a Xeon, where it
    was a quarter of the `cpu` CNN step; docs/performance.md, session 14)."""
    n, c, h, w = x.shape
    ho, wo = h // 2, w // 2
    x = x[:, :, :2 * ho, :2 * wo]
    left, right = x[..., 0::2], x[..., 1::2]
    pairs = np.maximum(left, right)
    right_wins = np.less(left, right)
    top, bottom = pairs[:, :, 0::2], pairs[:, :, 1::2]
    out = np.maximum(top, bottom)
    if out.dtype.kind == "f" and np.isnan(out).any():
        return None  # np.less says nothing about NaN: the general scan picks the first one
    bottom_wins = np.less(top, bottom)
    top_right, bottom_right = right_wins[:, :, 0::2], right_wins[:, :, 1::2]
    column = top_right ^ (bottom_wins & (top_right ^ bottom_right))  # the winning row's choice
    rows = bottom_wins * np.int64(w)
    rows += column
    rows += (np.arange(ho, dtype=np.int64) * (2 * w))[:, None] + np.arange(wo, dtype=np.int64) * 2
    return out, rows


def _max_pool_taps(x: np.ndarray, *, kernel_size: _Pair, stride: _Pair, padding: _Pair) -> tuple[np.ndarray, np.ndarray]:
    """Any max pool: the window's taps scanned in order, the first maximum (or NaN) chosen."""
    n, c, h, w = x.shape
    ho, wo = _out_size(h, w, kernel_size, stride, padding)
    floating = x.dtype.kind == "f"
    xp = pad2d(x, padding, -np.inf if floating else np.iinfo(x.dtype).min)
    windows = list(_taps(kernel_size, stride, (ho, wo)))
    if kernel_size == stride and not any(padding) and x.size:
        taps = _tiles(x, kernel_size, (ho, wo))
    else:
        taps = [xp[t] for t in windows]  # strided views, no copies
    out = taps[0].copy()
    for v in taps[1:]:
        np.maximum(out, v, out=out)  # NaN propagates
    # The first tap holding each maximum (so ties go to the first element, as argmax would).
    # Only real elements count: padding equals the maximum of a window of lowest values, and
    # its index would lie outside the plane.
    real = pad2d(np.ones((1, 1, h, w), bool), padding, False) if any(padding) else None
    tap = np.zeros(out.shape, dtype=np.int32)
    found = None
    nan = floating and bool(np.isnan(out).any())
    for t, (v, window) in enumerate(zip(taps, windows)):
        hit = np.equal(v, out)
        if nan:
            hit |= np.isnan(v)
        if real is not None:
            hit &= real[window]
        if found is None:
            found = hit
            continue
        hit &= ~found
        found |= hit
        tap += hit * np.int32(t)
    # row * w + col of each chosen element: the tap's offset in its window, looked up in a
    # table (a gather is several times faster than dividing every tap by kW), plus where the
    # window starts
    tap_row, tap_col = np.divmod(np.arange(kernel_size[0] * kernel_size[1], dtype=np.int64), kernel_size[1])
    start_row = np.arange(ho, dtype=np.int64) * stride[0] - padding[0]
    start_col = np.arange(wo, dtype=np.int64) * stride[1] - padding[1]
    rows = np.take(tap_row * w + tap_col, tap)
    rows += start_row[:, None] * w + start_col
    return out, rows


def _tiles(x: np.ndarray, kernel: _Pair, out: _Pair) -> list[np.ndarray]:
    """Where the windows tile the plane (kernel == stride, no padding: the common 2x2), the
    taps of :func:`_taps` as contiguous arrays, from one copy of ``x`` with the tap as its first
    axis: the scan then runs over contiguous memory rather than strided views, about twice as
    fast for a (64, 32, 32, 32) batch (docs/performance.md), with the same values."""
    (kh, kw), (ho, wo) = kernel, out
    n, c = x.shape[:2]
    tiles = x[:, :, :ho * kh, :wo * kw].reshape(n, c, ho, kh, wo, kw).transpose(3, 5, 0, 1, 2, 4)
    return list(np.ascontiguousarray(tiles).reshape(kh * kw, n, c, ho, wo))


def _max_pool_backward_ref(g: np.ndarray, indices: np.ndarray, *, input_size: _Pair, overlapping: bool) -> np.ndarray:
    n, c = g.shape[:2]
    plane = input_size[0] * input_size[1]
    flat = (indices.reshape(n * c, indices.shape[2] * indices.shape[3]) + (np.arange(n * c) * plane)[:, None]).reshape(-1)
    if overlapping:  # windows share elements: accumulate
        out = np.bincount(flat, weights=g.reshape(-1), minlength=n * c * plane).astype(g.dtype, copy=False)
    else:  # each element is chosen at most once
        out = np.zeros(n * c * plane, dtype=g.dtype)
        out[flat] = g.reshape(-1)
    return out.reshape(n, c, input_size[0], input_size[1])


def _gather(h: Tensor, indices: Tensor) -> Tensor:
    """``h`` (N, C, H, W) at the flat plane ``indices`` (N, C, Ho, Wo), with tensorcore ops."""
    n, c = h.shape[:2]
    key = (
        reshape(arange(n, device=h.device), (n, 1, 1)),
        reshape(arange(c, device=h.device), (1, c, 1)),
        reshape(indices, (n, c, -1)),
    )
    return reshape(getitem(reshape(h, (n, c, -1)), key), indices.shape)


_MAX_POOL_BACKWARD = define(Op(
    "max_pool2d_backward", _max_pool_backward_ref,
    infer=lambda g, indices, input_size, **_: Spec(tuple(g.shape[:2]) + tuple(input_size), g.dtype),
    grad=lambda ctx, h: (_gather(h, ctx.inputs[1]), None),
    doc="max_pool2d's gradient: g added at the flat plane indices of the chosen elements.",
))


def _max_pool_grad(ctx: Any, g: Tensor, _g_indices: Tensor) -> tuple:
    x = ctx.inputs[0]
    a = ctx.attrs
    overlapping = a["stride"][0] < a["kernel_size"][0] or a["stride"][1] < a["kernel_size"][1]
    attrs = {"input_size": x.shape[2:], "overlapping": overlapping}
    return (apply(_MAX_POOL_BACKWARD, (g, ctx.outputs[1]), attrs),)


def _max_pool_infer(x: Spec, kernel_size: _Pair, stride: _Pair, padding: _Pair) -> tuple[Spec, Spec]:
    shape = tuple(x.shape[:2]) + _out_size(x.shape[2], x.shape[3], kernel_size, stride, padding)
    return Spec(shape, x.dtype), Spec(shape, np.dtype(np.int64))


_MAX_POOL = define(Op(
    "max_pool2d", _max_pool_ref, infer=_max_pool_infer, grad=_max_pool_grad, n_outputs=2,
    doc="2-D max pooling; outputs (values, flat plane index of each chosen element).",
))


# --- average pooling ----------------------------------------------------------------


def _avg_pool_ref(x: np.ndarray, *, kernel_size: _Pair, stride: _Pair, padding: _Pair) -> np.ndarray:
    n, c, h, w = x.shape
    out_size = _out_size(h, w, kernel_size, stride, padding)
    xp = pad2d(x, padding)
    out = np.zeros((n, c) + out_size, dtype=x.dtype)
    for tap in _taps(kernel_size, stride, out_size):
        out += xp[tap]
    out *= 1.0 / (kernel_size[0] * kernel_size[1])
    return out


def _avg_pool_backward_ref(g: np.ndarray, *, input_size: _Pair, kernel_size: _Pair, stride: _Pair, padding: _Pair) -> np.ndarray:
    n, c = g.shape[:2]
    (h, w), (ph, pw) = input_size, padding
    share = g * (1.0 / (kernel_size[0] * kernel_size[1]))
    gxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=share.dtype)
    for tap in _taps(kernel_size, stride, g.shape[2:]):
        gxp[tap] += share
    if ph or pw:
        return np.ascontiguousarray(gxp[:, :, ph:ph + h, pw:pw + w])
    return gxp


def _pool_params(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: attrs[k] for k in ("kernel_size", "stride", "padding")}


_AVG_POOL_BACKWARD = define(Op(
    "avg_pool2d_backward", _avg_pool_backward_ref,
    infer=lambda g, input_size, **_: Spec(tuple(g.shape[:2]) + tuple(input_size), g.dtype),
    grad=lambda ctx, h: (apply(_AVG_POOL, (h,), _pool_params(ctx.attrs)),),
    doc="avg_pool2d's gradient: each output's gradient shared equally over its window.",
))
_AVG_POOL = define(Op(
    "avg_pool2d", _avg_pool_ref, float_only=True,
    infer=lambda x, kernel_size, stride, padding: Spec(
        tuple(x.shape[:2]) + _out_size(x.shape[2], x.shape[3], kernel_size, stride, padding), x.dtype),
    grad=lambda ctx, g: (apply(_AVG_POOL_BACKWARD, (g,), {"input_size": ctx.inputs[0].shape[2:], **ctx.attrs}),),
    doc="2-D average pooling; zero padding counts in each window's average.",
))


def _pool_attrs(name: str, x: Tensor, kernel_size: Any, stride: Any, padding: Any) -> dict[str, Any]:
    require_tensor(name, "input", x, ndim=4)
    kernel = pair(name, "kernel_size", kernel_size, 1)
    step = kernel if stride is None else pair(name, "stride", stride, 1)
    pad = pair(name, "padding", padding, 0)
    if pad[0] > kernel[0] // 2 or pad[1] > kernel[1] // 2:
        raise OpError(f"{name}: padding {pad} must be at most half the kernel size {kernel}")
    ho, wo = _out_size(x.shape[2], x.shape[3], kernel, step, pad)
    if ho <= 0 or wo <= 0:
        raise OpError(f"{name}: kernel {kernel} does not fit the input {x.shape} padded by {pad}; the output would be {ho}x{wo}")
    return {"kernel_size": kernel, "stride": step, "padding": pad}


def max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Tensor:
    """2-D max pooling of ``x`` ``(N, C, H, W)``; ``stride`` defaults to ``kernel_size``.

    Padding (at most half the kernel) never wins the maximum. The gradient goes to the first
    maximal element of each window.
    """
    return apply(_MAX_POOL, (x,), _pool_attrs("max_pool2d", x, kernel_size, stride, padding))[0]


def avg_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Tensor:
    """2-D average pooling of ``x`` ``(N, C, H, W)``; ``stride`` defaults to ``kernel_size``.

    The zero padding counts in the average (PyTorch's ``count_include_pad=True``).
    """
    return apply(_AVG_POOL, (x,), _pool_attrs("avg_pool2d", x, kernel_size, stride, padding))


__all__ = ["max_pool2d", "avg_pool2d"]
