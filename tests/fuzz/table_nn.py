"""Fuzz specs of the neural-network ops: matmul and linear (with their backward ops), softmax
and log_softmax (and backward), cross_entropy (and backward), conv2d (and backward), max and
average pooling (and backward), batch_norm (and backward, and the running statistics' update)
and norm_partial.

Sums of products (matmul, linear, conv, pooling sums) use ``abs_bound``, the rounding bound of
any summation order. The others have bounds written for their formulas below: each is a few
rounding errors of every intermediate, relative to its magnitude (``eps`` is the result dtype's).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from fuzz.spec import EXACT, Case, Spec, abs_bound, custom_bound, dtype_of
from fuzz.values import FLOATS, NUMERIC, Arg, arg, array, laid_out, shape
from tensorcore.ops._nn import conv_out_size
from tensorcore.ops.pooling import _max_pool_ref
from tensorcore.ops.registry import OPS


def _dims(draw: st.DrawFn, n: int, lo: int = 0, hi: int = 3) -> tuple[int, ...]:
    """``n`` sizes in [lo, hi]."""
    return tuple(draw(st.integers(lo, hi)) for _ in range(n))


@st.composite
def _matmul(draw: st.DrawFn) -> Case:
    """matmul operands: 1-D or batched (batch dimensions broadcast), mixed dtypes sometimes."""
    m, k, n = _dims(draw, 3, 0, 4)
    batch = draw(shape(max_dims=2, max_side=3, max_size=6))
    a_shape = (k,) if draw(st.integers(0, 4)) == 0 else tuple(1 if draw(st.booleans()) else b for b in batch) + (m, k)
    b_shape = (k,) if draw(st.integers(0, 4)) == 0 else batch[draw(st.integers(0, len(batch))):] + (k, n)
    d1 = dtype_of(draw, FLOATS + NUMERIC)
    d2 = d1 if draw(st.integers(0, 3)) else dtype_of(draw, NUMERIC)
    return Case((draw(arg(a_shape, d1, specials="sums")), draw(arg(b_shape, d2, specials="sums"))))


@st.composite
def _linear(draw: st.DrawFn, which: str) -> Case:
    """linear's inputs (``which`` = 'linear'), or its bias or weight gradient's ('bias', 'weight')."""
    lead = draw(shape(max_dims=3, max_side=3, max_size=12))
    fin, fout = _dims(draw, 2, 0, 4)
    dt = dtype_of(draw, FLOATS)
    if which == "linear":
        x = draw(arg(lead + (fin,), dt, specials="sums"))
        args = [x, draw(arg((fout, fin), dt, specials="sums"))]
        epilogue = {"activation": "relu"} if draw(st.integers(0, 2)) == 0 else {}  # the rewrite's fused relu
        return Case(tuple(args + ([draw(arg((fout,), dt, specials="sums"))] if draw(st.booleans()) else [])), epilogue)
    g = draw(arg(lead + (fout,), dt, specials="sums"))
    if which == "bias":
        return Case((g,)) if lead else Case((draw(arg((draw(st.integers(0, 3)), fout), dt, specials="sums")),))
    return Case((g, draw(arg(lead + (fin,), dt, specials="sums"))))


@st.composite
def _masked_product(draw: st.DrawFn) -> Case:
    """matmul_relu_backward's operands: 2-D a (m, k), b (k, n) and the relu output y (m, n)."""
    m, k, n = _dims(draw, 3, 0, 4)
    dt = dtype_of(draw, FLOATS)
    return Case((draw(arg((m, k), dt, specials="sums")), draw(arg((k, n), dt, specials="sums")),
                 draw(arg((m, n), dt))))


def _along_bound(kind: str):  # noqa: ANN202 - a bound function for custom_bound
    """Bounds of softmax-like ops along ``attrs["axis"]`` (see the module docstring)."""

    def bound(args: list, attrs: dict, eps: float) -> np.ndarray:
        axis = attrs["axis"]
        n = np.shape(args[0])[axis]
        if kind in ("softmax", "log_softmax"):
            x = args[0]
            z = np.abs(x - np.max(x, axis=axis, keepdims=True)) if x.size else x
            y = np.exp(-z) / np.sum(np.exp(-z), axis=axis, keepdims=True) if x.size else x
            return 2 * eps * (n + 8 + z) * (y if kind == "softmax" else 1 + np.abs(np.log(y)))
        g, y = np.abs(args[0]), args[1]
        if kind == "softmax_backward":
            gy = g * np.abs(y)
            return 2 * eps * (n + 4) * (gy + np.abs(y) * np.sum(gy, axis=axis, keepdims=True))
        return 2 * eps * ((n + 12) * np.exp(y) * np.sum(g, axis=axis, keepdims=True) + g)

    return bound


@st.composite
def _softmax(draw: st.DrawFn, backward: bool) -> Case:
    """x (or g and y, ``backward``) and an axis."""
    s, dt = draw(shape(min_dims=1)), dtype_of(draw, FLOATS)
    axis = draw(st.integers(0, len(s) - 1))
    xs = (draw(arg(s, dt, specials="sums")),) + ((draw(arg(s, dt, specials="sums")),) if backward else ())
    return Case(xs, {"axis": axis})


def _ce_bound(args: list, attrs: dict, eps: float) -> list:
    """cross_entropy's error bounds: the loss (log-sum-exp minus the label's logit) and the probabilities."""
    x, labels = args[0], np.asarray(args[1]).astype(np.int64)
    n, c = x.shape
    z = x - np.max(x, axis=1, keepdims=True) if x.size else x
    lse = np.log(np.sum(np.exp(z), axis=1)) if x.size else np.zeros(n)
    zl = np.abs(z[np.arange(n), labels]) if n else np.zeros(0)
    row = 4 * eps * (c + 8) * (1 + zl + np.abs(lse))
    loss = row if attrs["reduction"] == "none" else np.sum(row) + n * eps * np.sum(np.abs(lse - zl))
    if attrs["reduction"] == "mean":
        loss = loss / max(n, 1)
    probs = 2 * eps * (c + 8 + np.abs(z)) * np.exp(z - lse[:, None]) if x.size else np.zeros(x.shape)
    return [loss, probs]


@st.composite
def _cross_entropy(draw: st.DrawFn, backward: bool) -> Case:
    """(logits, labels) with a reduction, or the backward's (g, logits, probs, labels)."""
    n, c = draw(st.integers(0, 5)), draw(st.integers(1, 5))
    dt = dtype_of(draw, FLOATS)
    bad = draw(st.integers(0, 11)) == 0 and not backward
    labels = draw(arg((n,), dtype_of(draw, (np.int64, np.int32, np.uint8, np.int8)), kind="range",
                      lo=c if bad else 0, hi=c + 2 if bad else c - 1))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    logits = draw(arg((n, c), dt, specials="sums"))
    if not backward:
        return Case((logits, labels), {"reduction": reduction})
    g = draw(arg((n,) if reduction == "none" else (), dt, specials="sums"))
    # the probabilities the forward saved (a device's composite form recomputes them from the logits)
    labels_ok = np.clip(labels.numpy(), 0, c - 1)
    with np.errstate(all="ignore"):
        probs = OPS["cross_entropy"].reference(logits.numpy(), labels_ok, "none")[1] if n else np.zeros((0, c), dt)
    return Case((g, logits, draw(laid_out(np.asarray(probs, dt))), labels), {"reduction": reduction})


def _ce_backward_bound(args: list, attrs: dict, eps: float) -> np.ndarray:
    """cross_entropy_backward's error bound: (probs - onehot) * g, divided by N for 'mean'."""
    g, probs = np.abs(args[0]), np.abs(args[2])
    n = probs.shape[0]
    g = g.reshape(n, 1) if attrs["reduction"] == "none" else g / (max(n, 1) if attrs["reduction"] == "mean" else 1)
    return 4 * eps * (probs + 1) * g


@st.composite
def _conv(draw: st.DrawFn, which: str) -> Case:
    """conv2d's inputs and attributes (``which``: 'forward', 'input' or 'weight' for the backward ops)."""
    groups, cg, og, n = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(0, 2))
    kh, kw = _dims(draw, 2, 1, 3)
    stride, padding, dilation = _dims(draw, 2, 1, 2), _dims(draw, 2, 0, 2), _dims(draw, 2, 1, 2)
    h, w = (max(draw(st.integers(1, 6)), dilation[i] * (k - 1) + 1 - 2 * padding[i]) for i, k in enumerate((kh, kw)))
    ho, wo = (conv_out_size(size, k, stride[i], padding[i], dilation[i]) for i, (size, k) in enumerate(((h, kh), (w, kw))))
    dt = dtype_of(draw, FLOATS)
    attrs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    weight = draw(arg((groups * og, cg, kh, kw), dt, specials="sums"))
    if which == "input":
        return Case((draw(arg((n, groups * og, ho, wo), dt, specials="sums")), weight), {"input_size": (h, w), **attrs})
    x = draw(arg((n, groups * cg, h, w), dt, specials="sums"))
    if which == "weight":
        return Case((x, draw(arg((n, groups * og, ho, wo), dt, specials="sums"))), {"kernel_size": (kh, kw), **attrs})
    bias = (draw(arg((groups * og,), dt, specials="sums")),) if draw(st.booleans()) else ()
    epilogue = {"activation": "relu"} if draw(st.integers(0, 2)) == 0 else {}  # the rewrite's fused relu
    return Case((x, weight) + bias, {**attrs, **epilogue})


@st.composite
def _pool(draw: st.DrawFn, which: str) -> Case:
    """A pooling op's inputs and attributes (``which``: 'max', 'avg', 'max_backward', 'avg_backward')."""
    kernel, stride = _dims(draw, 2, 1, 3), _dims(draw, 2, 1, 3)
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    h, w = (max(draw(st.integers(1, 6)), k - 2 * p) for k, p in zip(kernel, padding))
    n, c = draw(st.integers(0, 2)), draw(st.integers(0, 3))
    ho, wo = (conv_out_size(size, k, s, p, 1) for size, k, s, p in zip((h, w), kernel, stride, padding))
    attrs = {"kernel_size": kernel, "stride": stride, "padding": padding}
    if which == "max":
        return Case((draw(arg((n, c, h, w), dtype_of(draw, NUMERIC))),), attrs)
    if which == "avg":
        return Case((draw(arg((n, c, h, w), dtype_of(draw, FLOATS), specials="sums")),), attrs)
    dt = dtype_of(draw, FLOATS)
    g = draw(arg((n, c, ho, wo), dt, specials="sums"))
    if which == "avg_backward":
        return Case((g,), {"input_size": (h, w), **attrs})
    # The indices of a real max pooling (of finite values, so no window is won by its padding).
    _, indices = _max_pool_ref(draw(array((n, c, h, w), dt, specials="none")), **attrs)
    overlapping = stride[0] < kernel[0] or stride[1] < kernel[1]
    return Case((g, Arg(indices)), {"input_size": (h, w), "overlapping": overlapping})


def _bn_stats(x: np.ndarray) -> tuple:
    """batch_norm's reduced axes, per-channel broadcast shape and count per channel."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape_ = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    n = math.prod(x.shape) // max(x.shape[1], 1)
    return axes, shape_, n


def _bn_bound(args: list, attrs: dict, eps: float) -> list:
    """batch_norm's error bounds: the output (through the mean and the inverse std), the mean, the variance."""
    x, params = args[0], args[1:]
    axes, shape_, n = _bn_stats(x)
    mean, m_abs = np.mean(x, axis=axes), np.mean(np.abs(x), axis=axes)
    var = np.var(x, axis=axes)
    b_mean = (n + 2) * eps * m_abs
    b_var = 4 * (n + 4) * eps * np.mean((np.abs(x) + m_abs.reshape(shape_)) ** 2, axis=axes)
    invstd = 1 / np.sqrt(var + attrs["eps"])
    w = np.abs(params[0]) if attrs["has_weight"] else np.ones_like(mean)
    bias = np.abs(params[-1]) if attrs["has_bias"] else np.zeros_like(mean)
    rel = b_var / (var + attrs["eps"]) + 8 * eps  # relative error of invstd (and of the scale)
    xc = (np.abs(x) + np.abs(mean).reshape(shape_))
    y = (w * invstd).reshape(shape_) * (4 * eps * xc + b_mean.reshape(shape_) + xc * rel.reshape(shape_)) \
        + 4 * eps * bias.reshape(shape_)
    return [y, b_mean, b_var]


@st.composite
def _batch_norm(draw: st.DrawFn, backward: bool) -> Case:
    # batch_norm (the public function) refuses fewer than 2 values per channel: none are drawn
    """batch_norm's inputs (x, weight, bias), or its backward's (g, x, mean, var, weight)."""
    s = (draw(st.integers(1, 3)), draw(st.integers(0, 3))) + draw(shape(max_dims=2, min_side=1, max_side=3, max_size=6))
    if math.prod(s[2:]) * s[0] < 2:
        s = (2,) + s[1:]
    dt = dtype_of(draw, FLOATS)
    has_weight = draw(st.booleans())
    x = draw(arg(s, dt, specials="sums" if not backward else "finite"))
    eps = draw(st.sampled_from([1e-5, 0.1]))
    if backward:  # the batch statistics of x, as batch_norm saves them
        axes, _, _ = _bn_stats(x.numpy())
        stats = [Arg(np.asarray(f(x.numpy().astype(np.float64), axis=axes)).astype(dt)) for f in (np.mean, np.var)]
        weight = (draw(arg((s[1],), dt, specials="finite")),) if has_weight else ()
        g = draw(arg(s, dt, specials="finite"))
        return Case((g, x, *stats, *weight), {"eps": eps, "has_weight": has_weight})
    has_bias = draw(st.booleans())
    params = tuple(draw(arg((s[1],), dt, specials="sums")) for flag in (has_weight, has_bias) if flag)
    return Case((x, *params), {"eps": eps, "has_weight": has_weight, "has_bias": has_bias})


def _bn_backward_bound(args: list, attrs: dict, eps: float) -> list:
    """batch_norm_backward's error bounds: the input's gradient, the weight's and the bias's."""
    g, x, mean, var = (np.asarray(a, np.float64) for a in args[:4])
    axes, shape_, n = _bn_stats(x)
    invstd = 1 / np.sqrt(var + attrs["eps"])
    w = np.abs(args[4]) if attrs["has_weight"] else np.ones_like(mean)
    xc = (np.abs(x) + np.abs(mean).reshape(shape_)) * invstd.reshape(shape_)  # |xhat| and its error scale
    b_gb = (n + 2) * eps * np.sum(np.abs(g), axis=axes)
    b_gw = 4 * (n + 4) * eps * np.sum(np.abs(g) * xc, axis=axes)
    gb, gw = np.sum(g, axis=axes), np.sum(g * (x - mean.reshape(shape_)) * invstd.reshape(shape_), axis=axes)
    inner = np.abs(g) + ((np.abs(gb) + b_gb).reshape(shape_) + xc * (np.abs(gw) + b_gw).reshape(shape_)) / max(n, 1)
    return [8 * (n + 4) * eps * (w * invstd).reshape(shape_) * inner, b_gw, b_gb]


@st.composite
def _running(draw: st.DrawFn) -> Case:
    """(running statistic, batch statistic) and the update's momentum and correction."""
    c, dt = draw(st.integers(0, 4)), dtype_of(draw, FLOATS)
    src_shape = (c,) if draw(st.integers(0, 9)) else (c + 1,)  # a wrong shape now and then: refused
    return Case((draw(arg((c,), dt, views=False)), draw(arg(src_shape, dt))),
                {"momentum": draw(st.sampled_from([0.1, 0.0, 1.0, 0.37])), "correction": draw(st.sampled_from([1.0, 1.25]))})


def _running_bound(args: list, attrs: dict, eps: float) -> np.ndarray:
    """batch_norm_update_running's error bound."""
    return 4 * eps * (np.abs(args[0]) + np.abs(attrs["momentum"] * attrs["correction"] * args[1]))


@st.composite
def _norm_partial(draw: st.DrawFn) -> Case:
    """1 to 3 tensors (mostly of one dtype, as clip_grad_norm groups them; sometimes mixed) and a
    norm type (1, 2, inf, 0.5, 3)."""
    dt = dtype_of(draw, FLOATS)
    mixed = not draw(st.integers(0, 2))
    xs = tuple(draw(arg(draw(shape(max_size=16)), dtype_of(draw, FLOATS) if mixed else dt, specials="sums"))
               for _ in range(draw(st.integers(1, 3))))
    return Case(xs, {"norm_type": draw(st.sampled_from([2.0, 1.0, math.inf, 0.5, 3.0]))})


def _norm_bound(args: list, attrs: dict, eps: float) -> np.ndarray:
    """norm_partial's error bound: the sum of |x|**p (exact for inf: a maximum)."""
    p, n = attrs["norm_type"], sum(np.size(a) for a in args)
    if p == math.inf:
        return np.zeros(())
    return (n + 24) * eps * sum(np.sum(np.abs(a) ** p) for a in args)


def _lead(args: list, attrs: dict) -> int:
    """The number of rows (all but the last dimension) of the first input."""
    return max(math.prod(np.shape(args[0])[:-1]), 1)


SPECS: list[Spec] = [
    Spec("matmul", _matmul(), abs_bound(), examples=1.5),
    Spec("linear", _linear("linear"), abs_bound()),
    Spec("linear_backward_bias", _linear("bias"), abs_bound(_lead)),
    Spec("linear_backward_weight", _linear("weight"), abs_bound(_lead)),
    Spec("matmul_relu_backward", _masked_product(), abs_bound(keep=(2,))),  # y as is: masked values are exact
    *(Spec(name, _softmax(name.endswith("backward")), custom_bound(_along_bound(name)))
      for name in ("softmax", "log_softmax", "softmax_backward", "log_softmax_backward")),
    Spec("cross_entropy", _cross_entropy(False), custom_bound(_ce_bound, extra_ulps=8)),
    Spec("cross_entropy_backward", _cross_entropy(True), custom_bound(_ce_backward_bound)),
    Spec("conv2d", _conv("forward"), abs_bound()),
    Spec("conv2d_backward_input", _conv("input"), abs_bound()),
    Spec("conv2d_backward_weight", _conv("weight"), abs_bound()),
    Spec("max_pool2d", _pool("max"), EXACT),
    Spec("max_pool2d_backward", _pool("max_backward"), abs_bound(keep=(1,))),
    Spec("avg_pool2d", _pool("avg"), abs_bound()),
    Spec("avg_pool2d_backward", _pool("avg_backward"), abs_bound()),
    Spec("batch_norm", _batch_norm(False), custom_bound(_bn_bound)),
    Spec("batch_norm_backward", _batch_norm(True), custom_bound(_bn_backward_bound)),
    Spec("batch_norm_update_running", _running(), custom_bound(_running_bound), inplace=True,
         names=("batch_norm",)),
    Spec("norm_partial", _norm_partial(), custom_bound(_norm_bound, extra_ulps=4)),
]
