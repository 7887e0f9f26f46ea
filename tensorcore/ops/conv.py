"""2-D convolution (NCHW, PyTorch semantics) and its two backward ops.

The NumPy reference is im2col: a strided view of the padded input's sliding windows is
copied into columns ``(N, groups, C/groups * kH * kW, Ho * Wo)`` and multiplied by the
weight, one batched matmul for all images and groups. ``conv2d``'s gradient is computed by
the ops ``conv2d_backward_input`` (the transposed convolution, a col2im scatter-add) and
``conv2d_backward_weight``; each of those has a gradient written with the three conv ops
(they are adjoints of one another), so gradients of any order work.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore.dispatch import apply
from tensorcore.errors import OpError
from tensorcore.ops._nn import (
    apply_epilogue,
    check_epilogue,
    conv_out_size,
    pad2d,
    pair,
    require_tensor,
    through_epilogue,
    windows,
)
from tensorcore.ops.host_gemm import gemm
from tensorcore.ops.reductions import sum as _sum
from tensorcore.ops.registry import Op, Spec, define
from tensorcore.tensor import Tensor

_Pair = tuple[int, int]


def _columns(x: np.ndarray, kernel: _Pair, stride: _Pair, padding: _Pair, dilation: _Pair, groups: int, out: _Pair) -> np.ndarray:
    """im2col: ``(N, G, Cg * kH * kW, Ho * Wo)``, contiguous."""
    n, c = x.shape[:2]
    win = windows(pad2d(x, padding), kernel, stride, dilation, out)  # (N, C, Ho, Wo, kH, kW) view
    win = win.reshape(n, groups, c // groups, out[0], out[1], kernel[0], kernel[1])
    cols = np.ascontiguousarray(win.transpose(0, 1, 2, 5, 6, 3, 4))
    return cols.reshape(n, groups, (c // groups) * kernel[0] * kernel[1], out[0] * out[1])  # no -1: n may be 0


def _check(x: Any, w: Any, b: Any, stride: _Pair, padding: _Pair, dilation: _Pair, groups: int) -> tuple[int, int, int, int]:
    """Validate conv2d's shapes (Specs or tensors); return the output shape."""
    xs, ws = tuple(x.shape), tuple(w.shape)
    if len(xs) != 4:
        raise OpError(f"conv2d: input must be 4-D (N, C, H, W), got shape {xs}")
    if len(ws) != 4:
        raise OpError(f"conv2d: weight must be 4-D (out_channels, in_channels/groups, kH, kW), got shape {ws}")
    n, c, h, wd = xs
    o, cg, kh, kw = ws
    if c % groups or o % groups:
        raise OpError(
            f"conv2d: groups={groups} must divide both the input channels ({c}, input {xs}) "
            f"and the output channels ({o}, weight {ws})"
        )
    if cg * groups != c:
        raise OpError(
            f"conv2d: input {xs} has {c} channels, but weight {ws} expects {cg * groups} "
            f"(in_channels/groups={cg} x groups={groups})"
        )
    if b is not None and tuple(b.shape) != (o,):
        raise OpError(f"conv2d: bias must have shape ({o},) (out_channels), got {tuple(b.shape)}")
    ho = conv_out_size(h, kh, stride[0], padding[0], dilation[0])
    wo = conv_out_size(wd, kw, stride[1], padding[1], dilation[1])
    if ho <= 0 or wo <= 0:
        raise OpError(
            f"conv2d: kernel {(kh, kw)} with dilation {dilation} does not fit the input {xs} padded by "
            f"{padding}; the output would be {ho}x{wo}"
        )
    return n, o, ho, wo


def _conv2d_ref(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *, stride: _Pair, padding: _Pair,
                dilation: _Pair, groups: int, activation: str | None = None) -> np.ndarray:
    n, o, ho, wo = _check(x, w, b, stride, padding, dilation, groups)
    cols = _columns(x, w.shape[2:], stride, padding, dilation, groups, (ho, wo))
    out = gemm(w.reshape(groups, o // groups, cols.shape[2]), cols)  # (N, G, O/G, Ho*Wo)
    out = out.reshape(n, o, ho, wo)
    if b is not None:
        out += b.reshape(1, o, 1, 1)
    return apply_epilogue(out, activation)


def _conv2d_infer(x: Spec, w: Spec, b: Spec | None = None, activation: str | None = None, **params: Any) -> Spec:
    check_epilogue("conv2d", activation)
    return Spec(_check(x, w, b, **params), np.result_type(*[s.dtype for s in (x, w, b) if s is not None]))


def _backward_input_ref(g: np.ndarray, w: np.ndarray, *, input_size: _Pair, stride: _Pair, padding: _Pair, dilation: _Pair, groups: int) -> np.ndarray:
    n, o, ho, wo = g.shape
    _, cg, kh, kw = w.shape
    og = o // groups
    h, wd = input_size
    # Columns ordered (kH, kW, C/groups), so each kernel tap's slice below is one contiguous block per group.
    wk = w.transpose(0, 2, 3, 1).reshape(groups, og, kh * kw * cg).transpose(0, 2, 1)
    g4 = g.reshape(n, groups, og, ho * wo)
    gcols = wk * g4 if og == 1 else gemm(wk, g4)  # (N, G, kH*kW*Cg, Ho*Wo); og == 1: outer products
    gcols = gcols.reshape(n, groups, kh, kw, cg, ho, wo)
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    gxp = np.zeros((n, groups, cg, h + 2 * ph, wd + 2 * pw), dtype=gcols.dtype)
    for i in range(kh):  # col2im: add each kernel tap's columns back where they were read
        for j in range(kw):
            gxp[..., i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw] += gcols[:, :, i, j]
    gxp = gxp.reshape(n, groups * cg, h + 2 * ph, wd + 2 * pw)
    if ph or pw:
        return np.ascontiguousarray(gxp[:, :, ph:ph + h, pw:pw + wd])
    return gxp


def _backward_weight_ref(x: np.ndarray, g: np.ndarray, *, kernel_size: _Pair, stride: _Pair, padding: _Pair, dilation: _Pair, groups: int) -> np.ndarray:
    n, o, ho, wo = g.shape
    c = x.shape[1]
    cols = _columns(x, kernel_size, stride, padding, dilation, groups, (ho, wo))  # (N, G, K, Ho*Wo)
    g4 = g.reshape(n, groups, o // groups, ho * wo)
    gw = gemm(g4, cols.transpose(0, 1, 3, 2)).sum(axis=0)  # (G, O/G, K)
    return gw.reshape(o, c // groups, kernel_size[0], kernel_size[1])


def _params(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: attrs[k] for k in ("stride", "padding", "dilation", "groups")}


def _backward_input_grad(ctx: Any, h: Tensor) -> tuple:
    g, w = ctx.inputs
    params = _params(ctx.attrs)
    dg = apply(_CONV2D, (h, w), params) if ctx.needs_grad[0] else None
    dw = apply(_BACKWARD_WEIGHT, (h, g), {"kernel_size": w.shape[2:], **params}) if ctx.needs_grad[1] else None
    return dg, dw


def _backward_weight_grad(ctx: Any, h: Tensor) -> tuple:
    x, g = ctx.inputs
    params = _params(ctx.attrs)
    dx = apply(_BACKWARD_INPUT, (g, h), {"input_size": x.shape[2:], **params}) if ctx.needs_grad[0] else None
    dg = apply(_CONV2D, (x, h), params) if ctx.needs_grad[1] else None
    return dx, dg


_BACKWARD_INPUT = define(Op(
    "conv2d_backward_input", _backward_input_ref,
    infer=lambda g, w, input_size, groups, **_: Spec((g.shape[0], w.shape[1] * groups) + tuple(input_size), g.dtype),
    grad=_backward_input_grad,
    doc="conv2d's input gradient (a transposed convolution of g with the weight), shape (N, C, H, W).",
))
_BACKWARD_WEIGHT = define(Op(
    "conv2d_backward_weight", _backward_weight_ref,
    infer=lambda x, g, kernel_size, groups, **_: Spec((g.shape[1], x.shape[1] // groups) + tuple(kernel_size), g.dtype),
    grad=_backward_weight_grad,
    doc="conv2d's weight gradient (the input's windows times g), shape (O, C/groups, kH, kW).",
))


def _conv2d_grad(ctx: Any, g: Tensor) -> tuple:
    x, w = ctx.inputs[0], ctx.inputs[1]
    params = _params(ctx.attrs)
    g = through_epilogue(ctx, g)
    gx = apply(_BACKWARD_INPUT, (g, w), {"input_size": x.shape[2:], **params}) if ctx.needs_grad[0] else None
    gw = apply(_BACKWARD_WEIGHT, (x, g), {"kernel_size": w.shape[2:], **params}) if ctx.needs_grad[1] else None
    if len(ctx.inputs) == 2:
        return gx, gw
    gb = _sum(g, axis=(0, 2, 3)) if ctx.needs_grad[2] else None
    return gx, gw, gb


_CONV2D = define(Op(
    "conv2d", _conv2d_ref, infer=_conv2d_infer, grad=_conv2d_grad,
    doc="2-D cross-correlation of x (N, C, H, W) with weight (O, C/groups, kH, kW), plus bias (O,); with the "
        "``activation`` attribute (one of ``_nn.EPILOGUES``: ``'relu'``, ``'gelu'``, ``'gelu_tanh'``, "
        "``'sigmoid'``, ``'tanh'``), that activation of it, applied as the result is stored.",
))


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation, as in PyTorch) of ``x`` ``(N, C, H, W)``.

    ``weight`` is ``(out_channels, C / groups, kH, kW)``, ``bias`` ``(out_channels,)``;
    ``stride``, ``padding`` (zeros) and ``dilation`` are an int or an ``(h, w)`` pair.
    """
    require_tensor("conv2d", "input", x)
    require_tensor("conv2d", "weight", weight)
    if bias is not None:
        require_tensor("conv2d", "bias", bias)
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise OpError(f"conv2d: groups must be a positive int, got {groups!r}")
    attrs = {
        "stride": pair("conv2d", "stride", stride, 1),
        "padding": pair("conv2d", "padding", padding, 0),
        "dilation": pair("conv2d", "dilation", dilation, 1),
        "groups": int(groups),
    }
    _check(x, weight, bias, **attrs)
    return apply(_CONV2D, (x, weight) if bias is None else (x, weight, bias), attrs)


__all__ = ["conv2d"]
