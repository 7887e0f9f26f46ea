"""The ops of ``tensorcore bench kernels``: size presets, cost formulas, and each op built twice,
through tensorcore on a device and in the reference library (NumPy, or CuPy for ``cuda``).
The training paths (conv2d's backward, batch_norm, scatter_add, Adam) are in
``kernel_cases_nn.py``; any other elementwise op or reduction gets a case from
``kernel_cases_generic.py``.

A cost is the op's arithmetic (FLOP; a transcendental or a comparison counts as one) and its
minimum memory traffic (every input read once, every output written once). Their ratio is
the arithmetic intensity that places a case on the roofline (``docs/benchmarks.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from math import prod
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Cost:
    """FLOP and minimum bytes moved by one call."""

    flops: float
    bytes: float

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOP per byte."""
        return self.flops / self.bytes if self.bytes else 0.0


@dataclass
class Env:
    """What a builder needs: the device, dtype, the reference's array module and random data."""

    device: str
    dtype: np.dtype
    xp: Any  # numpy, or cupy for a cuda device
    rng: np.random.Generator

    def data(self, *shape: int) -> np.ndarray:
        """Host data of ``shape`` in the case's dtype: standard normal, or small integers (a
        sum over them stays exact, and both sides wrap alike where a product overflows)."""
        if self.dtype.kind in "iu":
            low = 0 if self.dtype.kind == "u" else -8
            return self.rng.integers(low, 8, shape).astype(self.dtype)
        return self.rng.standard_normal(shape).astype(self.dtype)

    def pair(self, array: np.ndarray) -> tuple[Any, Any]:
        """``array`` on the device as a tensor, and as the reference library's array."""
        import tensorcore as tc

        return tc.asarray(array, device=self.device), self.xp.asarray(array)


@dataclass(frozen=True)
class CheckOnly:
    """A reference that checks tensorcore's result but is not timed (the reference library has
    no such function): its record has no reference time and no ratio."""

    fn: Callable[[], Any]

    def __call__(self) -> Any:
        """The expected result."""
        return self.fn()


Pair = tuple[Callable[[], Any], Callable[[], Any]]  # (tensorcore, reference, which may be a CheckOnly)


@dataclass(frozen=True)
class OpSpec:
    """One op of the benchmark: what its size numbers mean, its presets, cost and builder."""

    name: str
    params: str
    sizes: Mapping[str, tuple[int, ...]]
    cost: Callable[[tuple[int, ...], int], Cost]  # (size, itemsize) -> Cost
    build: Callable[[tuple[int, ...], Env], Pair]
    kinds: str = "f"  # the dtype kinds it is benchmarked in: "f" floating, "iu" integers too
    excluded: tuple[str, ...] = ()  # dtypes of those kinds it is not benchmarked in

    def takes(self, dtype: np.dtype) -> bool:
        """Whether the op is benchmarked in ``dtype``."""
        return np.dtype(dtype).kind in self.kinds and np.dtype(dtype).name not in self.excluded


# --- builders --------------------------------------------------------------------------------

def _matmul(p: tuple[int, ...], env: Env) -> Pair:
    *batch, m, k, n = p
    (ta, ra), (tb, rb) = env.pair(env.data(*batch, m, k)), env.pair(env.data(*batch, k, n))
    return (lambda: ta @ tb), (lambda: env.xp.matmul(ra, rb))


def _linear(p: tuple[int, ...], env: Env) -> Pair:
    from tensorcore.nn import functional as F

    batch, n_in, n_out = p
    (tx, rx), (tw, rw), (tb, rb) = env.pair(env.data(batch, n_in)), env.pair(env.data(n_out, n_in)), env.pair(env.data(n_out))
    return (lambda: F.linear(tx, tw, tb)), (lambda: rx @ rw.T + rb)


def _conv2d(p: tuple[int, ...], env: Env) -> Pair:
    from tensorcore.nn import functional as F

    n, c, h, w, k, r = p
    pad, xp = r // 2, env.xp
    (tx, rx), (tw, rw), (tb, rb) = env.pair(env.data(n, c, h, w)), env.pair(env.data(k, c, r, r)), env.pair(env.data(k))

    def reference() -> Any:  # im2col through a window view, then one BLAS call
        padded = xp.pad(rx, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        windows = xp.lib.stride_tricks.sliding_window_view(padded, (r, r), axis=(2, 3))  # n, c, h, w, r, r
        out = xp.tensordot(windows, rw, axes=([1, 4, 5], [1, 2, 3]))  # n, h, w, k
        return xp.moveaxis(out + rb, 3, 1)

    return (lambda: F.conv2d(tx, tw, tb, padding=pad)), reference


def _max_pool2d(p: tuple[int, ...], env: Env) -> Pair:
    from tensorcore.nn import functional as F

    n, c, h, w = p
    tx, rx = env.pair(env.data(n, c, h, w))
    xp = env.xp

    def theirs() -> Any:  # the four corners of every window as strided views: ~10x NumPy's reshape-max
        return xp.maximum(xp.maximum(rx[..., ::2, ::2], rx[..., 1::2, ::2]), xp.maximum(rx[..., ::2, 1::2], rx[..., 1::2, 1::2]))

    return (lambda: F.max_pool2d(tx, 2)), theirs


def _elementwise(name: str, arity: int) -> Callable[[tuple[int, ...], Env], Pair]:
    """The function ``name`` of both libraries (add, exp, sum, ...) on ``arity`` arrays of the size."""
    def build(p: tuple[int, ...], env: Env) -> Pair:
        import tensorcore as tc

        pairs = [env.pair(env.data(*p)) for _ in range(arity)]
        ts, rs = [t for t, _ in pairs], [r for _, r in pairs]
        ours, theirs = getattr(tc, name), getattr(env.xp, name)
        return (lambda: ours(*ts)), (lambda: theirs(*rs))
    return build


def _softmax(xp: Any, x: Any) -> Any:
    e = xp.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(xp: Any, x: Any) -> Any:
    z = x - x.max(axis=-1, keepdims=True)
    return z - xp.log(xp.exp(z).sum(axis=-1, keepdims=True))


def _rows(name: str) -> Callable[[tuple[int, ...], Env], Pair]:
    """softmax or log_softmax over the last axis."""
    def build(p: tuple[int, ...], env: Env) -> Pair:
        from tensorcore.nn import functional as F

        tx, rx = env.pair(env.data(*p))
        ours, theirs, xp = getattr(F, name), {"softmax": _softmax, "log_softmax": _log_softmax}[name], env.xp
        return (lambda: ours(tx, axis=-1)), (lambda: theirs(xp, rx))
    return build


def _cross_entropy(p: tuple[int, ...], env: Env) -> Pair:
    from tensorcore.nn import functional as F

    batch, classes = p
    (tx, rx), (ty, ry) = env.pair(env.data(batch, classes)), env.pair(env.rng.integers(0, classes, batch))
    rows, xp = env.xp.arange(batch), env.xp
    return (lambda: F.cross_entropy(tx, ty)), (lambda: -_log_softmax(xp, rx)[rows, ry].mean())


def _layer_norm(p: tuple[int, ...], env: Env, eps: float = 1e-5) -> Pair:
    from tensorcore.nn import functional as F

    rows, cols = p
    (tx, rx), (tw, rw), (tb, rb) = env.pair(env.data(rows, cols)), env.pair(env.data(cols)), env.pair(env.data(cols))
    xp = env.xp

    def theirs() -> Any:
        xc = rx - rx.mean(axis=-1, keepdims=True)
        return xc / xp.sqrt((xc * xc).mean(axis=-1, keepdims=True) + eps) * rw + rb

    return (lambda: F.layer_norm(tx, (cols,), tw, tb, eps=eps)), theirs


def _transpose_copy(p: tuple[int, ...], env: Env) -> Pair:
    import tensorcore as tc

    tx, rx = env.pair(env.data(*p))
    # reshape, not astype(copy=True): a copy may keep the transposed strides (a plain memcpy on
    # cpu), while a flat reshape must write the transpose out in row-major order on every device
    return (lambda: tc.reshape(tc.permute_dims(tx, (1, 0)), (-1,))), (lambda: rx.T.reshape(-1))


def _take(p: tuple[int, ...], env: Env) -> Pair:
    import tensorcore as tc

    rows, cols, k = p
    (tx, rx), (ti, ri) = env.pair(env.data(rows, cols)), env.pair(env.rng.integers(0, rows, k))
    return (lambda: tc.take(tx, ti, axis=0)), (lambda: env.xp.take(rx, ri, axis=0))


def _sgd_step(p: tuple[int, ...], env: Env, lr: float = 1e-3, momentum: float = 0.9) -> Pair:
    """One step of ``tc.optim.SGD`` (momentum: one fused kernel) against the same update in place."""
    import tensorcore as tc

    param, grad = env.data(*p), env.data(*p)
    tp, tg = tc.Variable(param, device=env.device), tc.asarray(grad, device=env.device)
    opt = tc.optim.SGD([tp], lr=lr, momentum=momentum)
    rp, rg, rv = env.xp.asarray(param), env.xp.asarray(grad), env.xp.zeros_like(env.xp.asarray(param))
    scratch = env.xp.empty_like(rp)

    def ours() -> Any:
        opt.step([tg])
        return tp

    def theirs() -> Any:
        xp = env.xp
        xp.multiply(rv, momentum, out=rv)
        xp.add(rv, rg, out=rv)
        xp.multiply(rv, lr, out=scratch)
        xp.subtract(rp, scratch, out=rp)
        return rp

    return ours, theirs


# --- costs -----------------------------------------------------------------------------------

def matmul_cost(p: tuple[int, ...], s: int) -> Cost:
    """2mkn FLOP per matrix; A, B read and C written once."""
    *batch, m, k, n = p
    b = prod(batch)
    return Cost(2.0 * b * m * k * n, float(s * b * (m * k + k * n + m * n)))


def linear_cost(p: tuple[int, ...], s: int) -> Cost:
    """x @ w.T (2·batch·in·out) plus the bias (batch·out)."""
    batch, n_in, n_out = p
    return Cost(2.0 * batch * n_in * n_out + batch * n_out, float(s * (batch * n_in + n_out * n_in + n_out + batch * n_out)))


def conv2d_cost(p: tuple[int, ...], s: int) -> Cost:
    """Stride 1, 'same' padding: 2·n·k·h·w·c·r² FLOP plus the bias."""
    n, c, h, w, k, r = p
    out = n * k * h * w
    return Cost(2.0 * out * c * r * r + out, float(s * (n * c * h * w + k * c * r * r + k + out)))


def max_pool2d_cost(p: tuple[int, ...], s: int) -> Cost:
    """2×2 windows, stride 2: 3 comparisons per output."""
    n, c, h, w = p
    out = n * c * (h // 2) * (w // 2)
    return Cost(3.0 * out, float(s * (n * c * h * w + out)))


def per_element(flops: float, arrays: float) -> Callable[[tuple[int, ...], int], Cost]:
    """A cost of ``flops`` per element and ``arrays`` array-sized reads and writes."""
    def cost(p: tuple[int, ...], s: int) -> Cost:
        n = prod(p)
        return Cost(flops * n, arrays * s * n)
    cost.__doc__ = f"{flops:g} FLOP per element, {arrays:g} arrays of traffic."
    return cost


def cross_entropy_cost(p: tuple[int, ...], s: int) -> Cost:
    """max, subtract, exp, sum per logit; logits and int64 labels read once."""
    batch, classes = p
    return Cost(4.0 * batch * classes, float(s * batch * classes + 8 * batch))


def layer_norm_cost(p: tuple[int, ...], s: int) -> Cost:
    """mean, center, square, sum, scale, weight, bias: 7 FLOP per element."""
    rows, cols = p
    return Cost(7.0 * rows * cols, float(s * (2 * rows * cols + 2 * cols)))


def take_cost(p: tuple[int, ...], s: int) -> Cost:
    """No arithmetic: k rows read and written, plus the int64 indices."""
    _, cols, k = p
    return Cost(0.0, float(2 * s * k * cols + 8 * k))


VECTOR_SIZES = {"small": (1 << 16,), "medium": (1 << 22,), "large": (1 << 26,)}
CONV_SIZES = {"small": (8, 16, 32, 32, 32, 3), "medium": (32, 32, 32, 32, 64, 3), "large": (64, 64, 56, 56, 128, 3)}
_ROWS = {"small": (256, 1024), "medium": (1024, 4096), "large": (8192, 4096)}

OPS: dict[str, OpSpec] = {spec.name: spec for spec in [
    OpSpec("matmul", "m, k, n", {"small": (256, 256, 256), "medium": (1024, 1024, 1024), "large": (2048, 2048, 2048)},
           matmul_cost, _matmul, "fiu"),
    OpSpec("batched_matmul", "batch, m, k, n",
           {"small": (16, 64, 64, 64), "medium": (32, 256, 256, 256), "large": (64, 512, 512, 512)}, matmul_cost, _matmul, "fiu"),
    OpSpec("linear", "batch, in, out", {"small": (128, 256, 256), "medium": (512, 1024, 1024), "large": (2048, 4096, 4096)},
           linear_cost, _linear),
    OpSpec("conv2d", "n, c, h, w, k, r (r×r kernel, stride 1, same padding)", CONV_SIZES, conv2d_cost, _conv2d),
    OpSpec("max_pool2d", "n, c, h, w (2×2, stride 2)",
           {"small": (8, 16, 32, 32), "medium": (32, 64, 64, 64), "large": (64, 128, 112, 112)}, max_pool2d_cost, _max_pool2d, "fiu"),
    OpSpec("add", "n", VECTOR_SIZES, per_element(1, 3), _elementwise("add", 2), "fiu"),
    OpSpec("multiply", "n", VECTOR_SIZES, per_element(1, 3), _elementwise("multiply", 2), "fiu"),
    OpSpec("exp", "n", VECTOR_SIZES, per_element(1, 2), _elementwise("exp", 1)),
    OpSpec("sum", "n", VECTOR_SIZES, per_element(1, 1), _elementwise("sum", 1), "fiu"),
    OpSpec("max", "n", VECTOR_SIZES, per_element(1, 1), _elementwise("max", 1), "fiu"),
    OpSpec("softmax", "rows, cols (over cols)", _ROWS, per_element(5, 2), _rows("softmax")),
    OpSpec("log_softmax", "rows, cols (over cols)", _ROWS, per_element(5, 2), _rows("log_softmax")),
    OpSpec("cross_entropy", "batch, classes (mean)", {"small": (256, 1000), "medium": (4096, 1000), "large": (8192, 4096)},
           cross_entropy_cost, _cross_entropy),
    OpSpec("layer_norm", "rows, cols (over cols, with weight and bias)",
           {"small": (256, 1024), "medium": (4096, 1024), "large": (16384, 4096)}, layer_norm_cost, _layer_norm),
    OpSpec("transpose_copy", "rows, cols (x.T written out row-major)",
           {"small": (512, 512), "medium": (2048, 2048), "large": (8192, 8192)}, per_element(0, 2), _transpose_copy, "fiu"),
    OpSpec("take", "rows, cols, k (k rows gathered)",
           {"small": (4096, 256, 1024), "medium": (65536, 256, 16384), "large": (262144, 256, 65536)}, take_cost, _take, "fiu"),
    OpSpec("sgd_step", "n (tc.optim.SGD, momentum 0.9)", VECTOR_SIZES, per_element(4, 5), _sgd_step),
]}

ALIASES = {"mul": "multiply", "bmm": "batched_matmul", "transpose": "transpose_copy", "copy": "transpose_copy",
           "sgd": "sgd_step", "adam": "adam_step", "scatter-add": "scatter_add", "conv2d_grad": "conv2d_backward"}
SIZES = ("small", "medium", "large")

