"""More ops of ``tensorcore bench kernels``: the training paths beside the forward ops of
``kernel_cases.py`` (conv2d's backward, batch_norm, scatter_add, the fused Adam update).

Each builder returns (tensorcore, reference) on the same random data, as in ``kernel_cases.py``;
costs follow its rules (FLOP; every input read once and every output written once).
"""

from __future__ import annotations

from typing import Any

from tensorcore.benchmarks.kernel_cases import (
    CONV_SIZES,
    VECTOR_SIZES,
    Cost,
    Env,
    OpSpec,
    Pair,
    conv2d_cost,
    per_element,
)


def _conv2d_backward(p: tuple[int, ...], env: Env) -> Pair:
    """conv2d's gradients w.r.t. the input and the weight, as autodiff runs them: a persistent
    tape replays the forward's record, so only the two backward ops run (no bias: its
    gradient is a plain sum). The reference is the cpu kernels' method in the array module:
    g times the im2col columns for the weight; for the input, the weight times g, scattered
    back window by window (col2im)."""
    import tensorcore as tc
    from tensorcore.nn import functional as F

    n, c, h, w, k, r = p
    pad, xp = r // 2, env.xp
    (tx, rx), (tw, rw), (tg, rg) = env.pair(env.data(n, c, h, w)), env.pair(env.data(k, c, r, r)), env.pair(env.data(n, k, h, w))
    tx, tw = tc.Variable(tx), tc.Variable(tw)
    with tc.GradientTape(persistent=True) as tape:
        y = F.conv2d(tx, tw, padding=pad)

    def ours() -> Any:
        return tuple(tape.gradient(y, [tx, tw], output_gradients=tg))

    def theirs() -> Any:  # as ops/conv.py's cpu kernels, for groups=1 and stride 1
        padded = xp.pad(rx, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        windows = xp.lib.stride_tricks.sliding_window_view(padded, (r, r), axis=(2, 3))  # n, c, h, w, r, r
        cols = xp.ascontiguousarray(windows.transpose(0, 1, 4, 5, 2, 3)).reshape(n, c * r * r, h * w)  # im2col
        g3 = rg.reshape(n, k, h * w)
        gw = xp.matmul(g3, cols.transpose(0, 2, 1)).sum(axis=0).reshape(k, c, r, r)
        gcols = xp.matmul(rw.reshape(k, c * r * r).T, g3).reshape(n, c, r, r, h, w)
        gx = xp.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=gcols.dtype)
        for i in range(r):  # col2im: each kernel tap's columns added back where they were read
            for j in range(r):
                gx[:, :, i:i + h, j:j + w] += gcols[:, :, i, j]
        return gx[:, :, pad:pad + h, pad:pad + w], gw

    return ours, theirs


def _batch_norm(p: tuple[int, ...], env: Env, eps: float = 1e-5) -> Pair:
    """Training-mode batch norm of an (N, C, H, W) batch over N, H, W, with weight and bias
    (no running statistics to update)."""
    from tensorcore.nn import functional as F

    n, c, h, w = p
    (tx, rx), (tw, rw), (tb, rb) = env.pair(env.data(n, c, h, w)), env.pair(env.data(c)), env.pair(env.data(c))
    xp = env.xp

    def theirs() -> Any:
        xc = rx - rx.mean(axis=(0, 2, 3), keepdims=True)
        invstd = 1 / xp.sqrt((xc * xc).mean(axis=(0, 2, 3), keepdims=True) + eps)
        return xc * invstd * rw[:, None, None] + rb[:, None, None]

    return (lambda: F.batch_norm(tx, None, None, tw, tb, training=True, eps=eps)), theirs


def _add_at(xp: Any) -> Any:
    """``add.at`` of the array module: NumPy's ufunc method, or CuPy's ``cupyx.scatter_add``."""
    import numpy as np

    if xp is np:
        return np.add.at
    import cupyx

    return cupyx.scatter_add


def _scatter_add(p: tuple[int, ...], env: Env) -> Pair:
    """k rows of g added into zeros of (rows, cols) at random row indices (repeats accumulate):
    the op that take's and indexing's gradients run."""
    from tensorcore.ops.indexing import scatter_add

    rows, cols, k = p
    (tg, rg), (ti, ri) = env.pair(env.data(k, cols)), env.pair(env.rng.integers(0, rows, k))
    xp, add_at = env.xp, _add_at(env.xp)

    def theirs() -> Any:
        out = xp.zeros((rows, cols), dtype=rg.dtype)
        add_at(out, ri, rg)
        return out

    return (lambda: scatter_add(tg, (rows, cols), ti)), theirs


def _adam_step(p: tuple[int, ...], env: Env, lr: float = 1e-2, betas: tuple[float, float] = (0.9, 0.999),
               eps: float = 1e-8) -> Pair:
    """One step of ``tc.optim.Adam`` (two fused kernels: the bias correction, then the update)
    against the same update written in place. lr is 1e-2, not Adam's 1e-3: a first Adam step
    moves each parameter by about lr, which the check's tolerance must be able to see."""
    import math

    import tensorcore as tc

    param, grad = env.data(*p), env.data(*p)
    tp, tg = tc.Variable(param, device=env.device), tc.asarray(grad, device=env.device)
    opt = tc.optim.Adam([tp], lr=lr, betas=betas, eps=eps)
    xp, (b1, b2) = env.xp, betas
    rp, rg = xp.asarray(param), xp.asarray(grad)
    m, v, scratch, steps = xp.zeros_like(rp), xp.zeros_like(rp), xp.empty_like(rp), [0]

    def ours() -> Any:
        opt.step([tg])
        return tp

    def theirs() -> Any:
        steps[0] += 1
        root = math.sqrt(1 - b2 ** steps[0])  # bias corrections folded into two scalars
        xp.multiply(m, b1, out=m)
        xp.multiply(rg, 1 - b1, out=scratch)
        xp.add(m, scratch, out=m)
        xp.multiply(v, b2, out=v)
        xp.multiply(rg, rg, out=scratch)
        xp.multiply(scratch, 1 - b2, out=scratch)
        xp.add(v, scratch, out=v)
        xp.sqrt(v, out=scratch)
        xp.add(scratch, eps * root, out=scratch)
        xp.divide(m, scratch, out=scratch)
        xp.multiply(scratch, lr * root / (1 - b1 ** steps[0]), out=scratch)
        xp.subtract(rp, scratch, out=rp)
        return rp

    return ours, theirs


def conv2d_backward_cost(p: tuple[int, ...], s: int) -> Cost:
    """Twice the forward's multiply-adds (4·n·k·h·w·c·r²); x, w and g read, gx and gw written."""
    n, c, h, w, k, r = p
    forward = conv2d_cost(p, s).flops - n * k * h * w  # the forward's arithmetic without the bias
    return Cost(2.0 * forward, float(s * (2 * n * c * h * w + 2 * k * c * r * r + n * k * h * w)))


def batch_norm_cost(p: tuple[int, ...], s: int) -> Cost:
    """mean, center, square, sum, scale, weight, bias: 7 FLOP per element; x read, y written,
    weight and bias read."""
    n, c, h, w = p
    return Cost(7.0 * n * c * h * w, float(s * (2 * n * c * h * w + 2 * c)))


def scatter_add_cost(p: tuple[int, ...], s: int) -> Cost:
    """One add per element of g; g and the int64 indices read, the (rows, cols) output written."""
    rows, cols, k = p
    return Cost(float(k * cols), float(s * (k * cols + rows * cols) + 8 * k))


NN_OPS: dict[str, OpSpec] = {spec.name: spec for spec in [
    OpSpec("conv2d_backward", "n, c, h, w, k, r (gradients of input and weight; r×r, stride 1, same padding)",
           CONV_SIZES, conv2d_backward_cost, _conv2d_backward),
    OpSpec("batch_norm", "n, c, h, w (training, over n, h, w, with weight and bias)",
           {"small": (8, 16, 32, 32), "medium": (32, 64, 32, 32), "large": (64, 128, 56, 56)}, batch_norm_cost, _batch_norm),
    OpSpec("scatter_add", "rows, cols, k (k rows added at random rows of zeros)",
           {"small": (4096, 256, 1024), "medium": (65536, 256, 16384), "large": (262144, 256, 65536)},
           scatter_add_cost, _scatter_add, "fiu"),
    # not float16: its eps (1e-8) and small second moments underflow to 0 there, so the update
    # written in float16 divides by zero, while tc.optim.Adam computes it with float64 scalars
    OpSpec("adam_step", "n (tc.optim.Adam)", VECTOR_SIZES, per_element(12, 7), _adam_step, excluded=("float16",)),
]}
