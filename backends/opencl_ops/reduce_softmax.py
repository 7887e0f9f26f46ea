"""OpenCL launchers: softmax, log_softmax, their backward ops, cross_entropy and its backward.

Along the last axis, one fused kernel per row (``kernels/opencl/softmax.cl``): max, sum of
exponentials and the write in three passes over a row that stays in cache, where NumPy makes
five passes over the whole array. Along another axis, or for a few very long rows (which one
work-item each would leave cores idle), the max and the sums come from the reduction engine
(``reduce_core``, split into chunks) and an elementwise kernel finishes.
"""

from __future__ import annotations

import math
from typing import Any

from tensorcore.backends.opencl import CLArray, CLDevice
from tensorcore.backends.opencl_ops import reduce_core as core
from tensorcore.backends.opencl_ops._common import ctype, global_size, output
from tensorcore.backends.opencl_ops.movement import contiguous

from tensorcore.errors import KernelUnsupported

FUSED_MAX = 65536  # longest row one work-item takes alone when there are few rows


def _floats(dev: CLDevice, op: str, *arrays: CLArray) -> None:
    """Raise ``KernelUnsupported`` unless all are one float dtype the device has."""
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) != 1 or next(iter(dtypes)).kind != "f":
        raise KernelUnsupported(f"{op}: OpenCL kernels take one float dtype, got {', '.join(map(str, dtypes))}")
    core.supported(dev, *dtypes)


def _split(shape: tuple[int, ...], axis: int) -> tuple[int, int, int]:
    """(A, N, B): the sizes before, along and after ``axis``."""
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])


def _fused(a: int, n: int, b: int) -> bool:
    """Whether one work-item per row is the way: rows along the last axis, enough of them or short."""
    return b == 1 and (n <= FUSED_MAX or a >= core.TARGET)


def _general(a: int, n: int, b: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(global, local, trailing args) of an elementwise pass over (A, N, B) that reads per-(a, b)
    values: split as the reductions split, so each work-item streams through contiguous memory."""
    if b == 1:
        (chunk, chunks), span = core.row_plan(n, a), 1
    else:
        chunk, chunks, span = core.col_plan(n, a, b)
    gs, ls = core.grid(core.cdiv(b, span), chunks, a)
    return gs, ls, (n, b, span, chunk, chunks, a)


def _softmax(dev: CLDevice, x: CLArray, axis: int, log: bool) -> CLArray:
    _floats(dev, "softmax", x)
    x = contiguous(x)
    out = output(dev, x.shape, x.dtype)
    if out.buf is None:
        return out
    a, n, b = _split(x.shape, axis)
    defines = (("T", ctype(x.dtype)), ("LOG", "1" if log else "0"))
    if _fused(a, n, b):
        dev.launch(dev.kernel("softmax.cl", "softmax_rows", defines), *core.grid(a),
                   out.buf, x.buf, x.offset, n, a)
        return out
    lay = core.Layout(x, a, n, b, n * b, b, 1)
    m = core.run(dev, lay, dev.empty((a * b,), x.dtype), core.MAX, core.IDENTITY, x.dtype)
    s = core.run(dev, lay, dev.empty((a * b,), x.dtype), core.SUM, core.EXPDEV, x.dtype, center=m)
    if log:
        dev.launch(dev.kernel("softmax.cl", "log_inplace", defines), global_size(a * b), (256,),
                   s.buf, a * b)
    gs, ls, tail = _general(a, n, b)
    dev.launch(dev.kernel("softmax.cl", "softmax_apply", defines), gs, ls,
               out.buf, x.buf, x.offset, m.buf, s.buf, *tail)
    return out


def softmax(dev: CLDevice, x: CLArray, *, axis: int) -> CLArray:
    """``exp(x - max) / sum(exp(x - max))`` along ``axis`` (float32/float64)."""
    return _softmax(dev, x, axis, False)


def log_softmax(dev: CLDevice, x: CLArray, *, axis: int) -> CLArray:
    """``(x - max) - log(sum(exp(x - max)))`` along ``axis`` (float32/float64)."""
    return _softmax(dev, x, axis, True)


def _backward(dev: CLDevice, g: CLArray, y: CLArray, axis: int, log: bool) -> CLArray:
    if g.shape != y.shape:
        raise ValueError("the gradient and the saved output differ in shape")  # the rule explains
    _floats(dev, "softmax_backward", g, y)
    g, y = contiguous(g), contiguous(y)
    out = output(dev, y.shape, y.dtype)
    if out.buf is None:
        return out
    a, n, b = _split(y.shape, axis)
    defines = (("T", ctype(y.dtype)), ("LOG", "1" if log else "0"))
    if _fused(a, n, b):
        dev.launch(dev.kernel("softmax.cl", "softmax_backward_rows", defines), *core.grid(a),
                   out.buf, g.buf, g.offset, y.buf, y.offset, n, a)
        return out
    if log:
        summed = g  # log_softmax_backward needs sum(g)
    else:  # softmax_backward needs sum(g * y)
        summed = output(dev, y.shape, y.dtype)
        dev.launch(dev.kernel("softmax.cl", "multiply", defines), global_size(y.size), (256,),
                   summed.buf, g.buf, g.offset, y.buf, y.offset, y.size)
    lay = core.Layout(summed, a, n, b, n * b, b, 1)
    s = core.run(dev, lay, dev.empty((a * b,), y.dtype), core.SUM, core.IDENTITY, y.dtype)
    gs, ls, tail = _general(a, n, b)
    dev.launch(dev.kernel("softmax.cl", "softmax_backward_apply", defines), gs, ls,
               out.buf, g.buf, g.offset, y.buf, y.offset, s.buf, *tail)
    return out


def softmax_backward(dev: CLDevice, g: CLArray, y: CLArray, *, axis: int) -> CLArray:
    """softmax's gradient ``g*y - y*sum(g*y)`` from its output ``y``."""
    return _backward(dev, g, y, axis, False)


def log_softmax_backward(dev: CLDevice, g: CLArray, y: CLArray, *, axis: int) -> CLArray:
    """log_softmax's gradient ``g - exp(y)*sum(g)`` from its output ``y``."""
    return _backward(dev, g, y, axis, True)


def _labels(labels: CLArray, n: int) -> tuple[str, int, int]:
    """(C type, offset, stride) of a 1-D label array; the kernels read it where it lies."""
    if labels.dtype.kind not in "iu" or len(labels.shape) != 1 or labels.shape[0] != n:
        raise ValueError("labels must be integers of shape (N,)")  # the rule explains
    return ctype(labels.dtype), labels.offset, labels.strides[0]


def cross_entropy(dev: CLDevice, logits: CLArray, labels: CLArray, *, reduction: str) -> tuple[CLArray, CLArray]:
    """Fused softmax cross-entropy: (loss per ``reduction``, probabilities).

    Labels are checked on the device: an out-of-range label raises ``DeviceError`` (naming it
    and its row) at this thread's next read or synchronize, and the thread's in-place updates
    until then are skipped (checking on the host would wait for the queue in the middle of
    every step).
    """
    if len(logits.shape) != 2:
        raise ValueError("logits must be 2-D")  # the rule explains
    _floats(dev, "cross_entropy", logits)
    n, c = logits.shape
    lt, loff, lstride = _labels(labels, n)
    err, code = dev.error_flag(f"cross_entropy: label {{value}} is out of range for {c} classes{{position}}; "
                               f"expected 0 <= label < {c}", (n,))
    x = contiguous(logits)
    probs = output(dev, x.shape, x.dtype)
    losses = output(dev, (n,), x.dtype)
    if n:
        kernel = dev.kernel("softmax.cl", "cross_entropy_rows", (("T", ctype(x.dtype)), ("LT", lt), ("TG", "float")))
        dev.launch(kernel, *core.grid(n), probs.buf, losses.buf, x.buf, x.offset, labels.buf, loff, lstride,
                   c, n, err, code)
    if reduction == "none":
        return losses, probs
    loss = output(dev, (), x.dtype)
    lay = core.Layout(losses, 1, n, 1, 0, 1, 0)
    core.run(dev, lay, loss, core.SUM, core.IDENTITY, x.dtype, div=float(max(n, 1)) if reduction == "mean" else None)
    return loss, probs


def cross_entropy_backward(dev: CLDevice, g: Any, logits: CLArray, probs: CLArray, labels: CLArray, *,
                           reduction: str) -> CLArray:
    """``(probs - onehot(labels)) * g``, with ``g`` divided by N for ``"mean"``."""
    if not isinstance(g, CLArray) or g.dtype.kind != "f" or len(probs.shape) != 2:
        raise KernelUnsupported("cross_entropy_backward takes a float gradient tensor and 2-D probabilities")
    _floats(dev, "cross_entropy_backward", probs)
    core.supported(dev, g.dtype)
    n, c = probs.shape
    lt, loff, lstride = _labels(labels, n)
    if reduction == "none":
        if g.shape != (n,):
            raise KernelUnsupported(f"cross_entropy_backward: gradient of shape {g.shape} for {n} losses")
        gstride = g.strides[0]
    else:
        if g.size != 1:
            raise KernelUnsupported(f"cross_entropy_backward: gradient of shape {g.shape} for a scalar loss")
        gstride = 0
    probs = contiguous(probs)
    out = output(dev, probs.shape, probs.dtype)
    if out.buf is None:
        return out
    div = float(max(n, 1) if reduction == "mean" else 1)
    defines = (("T", ctype(probs.dtype)), ("LT", lt), ("TG", ctype(g.dtype)))
    dev.launch(dev.kernel("softmax.cl", "cross_entropy_backward", defines), *core.grid(n),
               out.buf, probs.buf, probs.offset, labels.buf, loff, lstride, g.buf, g.offset, gstride,
               div, c, n)
    return out


KERNELS: dict = {
    "softmax": softmax, "log_softmax": log_softmax, "softmax_backward": softmax_backward,
    "log_softmax_backward": log_softmax_backward, "cross_entropy": cross_entropy,
    "cross_entropy_backward": cross_entropy_backward,
}
