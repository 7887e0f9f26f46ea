"""OpenCL launchers of training-mode ``batch_norm`` and ``batch_norm_backward``.

The per-channel mean and (biased) variance come from the reduction engine (``reduce_core``),
as ``var`` computes them: the mean first, then the mean squared deviation from it, over one
(A, N, B) layout of ``x`` (copied once with the channel axis first when N and the spatial
axes are not adjacent in memory). ``kernels/opencl/norm.cl`` then normalises ``x`` in one pass.
``batch_norm_backward`` takes the saved statistics: one pass writes ``g`` and ``g * xhat``
channel-first, the engine sums their rows, and one pass computes the input's gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorcore.backends.opencl import CLArray, CLDevice
from tensorcore.backends.opencl_ops import reduce_core as core
from tensorcore.backends.opencl_ops._common import ctype, output
from tensorcore.backends.opencl_ops.movement_copy import contiguous

from tensorcore.errors import KernelUnsupported

MIN_CHUNK = 1024  # elements of a plane a work-item normalises at least, when planes are split


def _check(dev: CLDevice, x: Any, params: tuple) -> None:
    if not isinstance(x, CLArray) or x.dtype not in (np.float32, np.float64):
        raise KernelUnsupported(f"batch_norm: OpenCL kernels take float32/float64, got {getattr(x, 'dtype', x)}")
    if x.dtype == np.float64 and not dev.fp64:
        raise KernelUnsupported(f"opencl:{dev.index} has no float64")
    for p in params:
        if not isinstance(p, CLArray) or p.dtype != x.dtype:
            raise KernelUnsupported(f"batch_norm: every operand must be a {x.dtype} device array like x, "
                                    f"got {getattr(p, 'dtype', type(p).__name__)}")


def _plane_launch(x: CLArray) -> tuple:
    """Launch sizes and (size, chunk, planes) for kernels over ``x`` read as (N*C planes, S)."""
    planes = x.shape[0] * x.shape[1]
    size = x.size // max(planes, 1)
    parts = max(1, min(core.cdiv(size, MIN_CHUNK), core.cdiv(core.TARGET, planes)))
    chunk = core.cdiv(size, parts)
    return (*core.grid(parts, planes), size, chunk, planes)


def _kernel(dev: CLDevice, name: str, dtype: np.dtype, has_weight: bool = False, has_bias: bool = False) -> Any:
    return dev.kernel("norm.cl", name, (
        ("T", ctype(dtype)), ("HAS_WEIGHT", str(int(has_weight))), ("HAS_BIAS", str(int(has_bias)))))


def batch_norm(dev: CLDevice, x: CLArray, *params: CLArray, eps: float, has_weight: bool,
               has_bias: bool) -> tuple[CLArray, CLArray, CLArray]:
    """``(y, batch mean, batch variance)`` of ``x`` (N, C, ...) normalised per channel (axis 1)."""
    _check(dev, x, params)
    dtype, c = x.dtype, x.shape[1]
    axes = (0,) + tuple(range(2, len(x.shape)))
    mean, var, y = output(dev, (c,), dtype), output(dev, (c,), dtype), output(dev, x.shape, dtype)
    if y.buf is None:  # no element; every channel is rejected earlier for having < 2 values
        return y, mean, var
    lay = core.layout(x, axes)
    count = float(lay.n)
    core.run(dev, lay, mean, core.SUM, core.IDENTITY, dtype, div=count)
    core.run(dev, lay, var, core.SUM, core.SQDEV, dtype, div=count, center=mean)

    x = contiguous(x)
    weight = contiguous(params[0]) if has_weight else mean  # placeholders are never read
    bias = contiguous(params[-1]) if has_bias else mean
    gsize, lsize, size, chunk, planes = _plane_launch(x)
    dev.launch(_kernel(dev, "batch_norm_apply", dtype, has_weight, has_bias), gsize, lsize, y.buf, x.buf, x.offset,
               mean.buf, var.buf, weight.buf, weight.offset, bias.buf, bias.offset, dtype.type(eps), c, size, chunk,
               planes)
    return y, mean, var


def batch_norm_backward(dev: CLDevice, g: CLArray, x: CLArray, mean: CLArray, var: CLArray, *weight: CLArray,
                        eps: float, has_weight: bool) -> tuple[CLArray, CLArray, CLArray]:
    """``(gx, sum(g * xhat), sum(g))`` per channel, from the forward's saved batch statistics.

    One pass writes ``g`` and ``g * xhat`` channel-first, the reduction engine sums their rows,
    and a last pass computes ``gx`` (recomputing ``xhat`` from ``x`` rather than storing it)."""
    _check(dev, x, (g, mean, var) + weight)
    dtype, c = x.dtype, x.shape[1]
    gx, gw, gb = output(dev, x.shape, dtype), output(dev, (c,), dtype), output(dev, (c,), dtype)
    if gx.buf is None:
        return gx, gw, gb
    g, x, mean, var = contiguous(g), contiguous(x), contiguous(mean), contiguous(var)
    gsize, lsize, size, chunk, planes = _plane_launch(x)
    count = x.size // c  # values per channel (c > 0: x has elements)
    g_cf, gxhat_cf = output(dev, (c, count), dtype), output(dev, (c, count), dtype)
    t = dtype.type
    dev.launch(_kernel(dev, "batch_norm_grad_terms", dtype), gsize, lsize, g_cf.buf, gxhat_cf.buf, g.buf, g.offset,
               x.buf, x.offset, mean.buf, mean.offset, var.buf, var.offset, t(eps), c, size, chunk, planes)
    core.run(dev, core.layout(gxhat_cf, (1,)), gw, core.SUM, core.IDENTITY, dtype)
    core.run(dev, core.layout(g_cf, (1,)), gb, core.SUM, core.IDENTITY, dtype)
    w = contiguous(weight[0]) if has_weight else mean  # a placeholder, never read
    dev.launch(_kernel(dev, "batch_norm_grad_input", dtype, has_weight), gsize, lsize, gx.buf, g.buf, g.offset,
               x.buf, x.offset, mean.buf, mean.offset, var.buf, var.offset, w.buf, w.offset, gw.buf, gb.buf,
               t(eps), t(count), c, size, chunk, planes)
    return gx, gw, gb


KERNELS: dict = {"batch_norm": batch_norm, "batch_norm_backward": batch_norm_backward}
