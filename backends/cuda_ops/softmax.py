"""CUDA launchers: softmax, log_softmax, their backward ops, cross_entropy and its backward
(``kernels/cuda/softmax.cu``).

Along the last axis of float32/float64 arrays (a strided view is gathered into a contiguous
copy first): one block per row, the row's max and sum by block all-reductions. Other axes raise
``KernelUnsupported`` for now (the OpenCL backend's general (A, N, B) form is the model for the
next step). Cross-entropy labels
(int32 or int64, any stride) are checked on the device: an out-of-range label raises
``OpError`` at the next read or synchronize, as on OpenCL.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorcore.backends.cuda_ops import reduce
from tensorcore.backends.cuda_ops._common import (
    FLOATS,
    defines,
    elem_strides,
    float_dtype,
    grid_1d,
    i64,
    is_array,
)
from tensorcore.backends.cuda_ops.movement_copy import contiguous

from tensorcore.errors import KernelUnsupported

SOURCE = "softmax.cu"
_LABELS = {np.dtype(np.int32): "i32", np.dtype(np.int64): "i64"}

#: (source, defines) the launchers build: compiled by tests/test_cuda_compile.py.
VARIANTS = [(SOURCE, defines(t)) for t in FLOATS]


def row_block(n: int) -> int:
    """Threads per row block: a whole number of warps, up to 256, no more than the row needs."""
    return min(256, max(32, -(-n // 32) * 32))


def _rows(op: str, axis: int, *arrays: Any) -> tuple[np.dtype, int, int]:
    """(dtype, rows, row length) for arrays of one shape, reduced along the last axis (the
    caller passes them through ``_dense``: the kernels read contiguous rows)."""
    dtype = float_dtype(op, *arrays)
    shape = tuple(arrays[0].shape)
    if any(tuple(a.shape) != shape for a in arrays):
        raise KernelUnsupported(f"{op}: operands of different shapes")
    if not shape or axis not in (len(shape) - 1, -1):
        raise KernelUnsupported(f"{op}: CUDA kernels work along the last axis only (for now)")
    n = shape[-1]
    return dtype, (int(np.prod(shape, dtype=np.int64)) // n if n else 0), n


def _dense(dev: Any, *arrays: Any) -> tuple[Any, ...]:
    """Each array, or a contiguous copy of a strided view (one gather)."""
    return tuple(contiguous(dev, a) for a in arrays)


def _forward(dev: Any, name: str, x: Any, axis: int) -> Any:
    dtype, rows, n = _rows(name, axis, x)
    (x,) = _dense(dev, x)
    out = dev.empty(tuple(x.shape), dtype)
    if rows and n:
        dev.launch(SOURCE, f"{name}_rows", defines(dtype), (rows,), (row_block(n),), (out, x, i64(n)))
    return out


def softmax(dev: Any, x: Any, *, axis: int) -> Any:
    """``exp(x - max) / sum(exp(x - max))`` along the last axis."""
    return _forward(dev, "softmax", x, axis)


def log_softmax(dev: Any, x: Any, *, axis: int) -> Any:
    """``(x - max) - log(sum(exp(x - max)))`` along the last axis."""
    return _forward(dev, "log_softmax", x, axis)


def _backward(dev: Any, name: str, g: Any, y: Any, axis: int) -> Any:
    dtype, rows, n = _rows(name, axis, g, y)
    g, y = _dense(dev, g, y)
    out = dev.empty(tuple(y.shape), dtype)
    if rows and n:
        dev.launch(SOURCE, f"{name}_rows", defines(dtype), (rows,), (row_block(n),), (out, g, y, i64(n)))
    return out


def softmax_backward(dev: Any, g: Any, y: Any, *, axis: int) -> Any:
    """softmax's gradient ``g*y - y*sum(g*y)`` from its output ``y``."""
    return _backward(dev, "softmax_backward", g, y, axis)


def log_softmax_backward(dev: Any, g: Any, y: Any, *, axis: int) -> Any:
    """log_softmax's gradient ``g - exp(y)*sum(g)`` from its output ``y``."""
    return _backward(dev, "log_softmax_backward", g, y, axis)


def _labels(labels: Any, n: int) -> tuple[str, int]:
    if not is_array(labels) or np.dtype(labels.dtype) not in _LABELS or tuple(labels.shape) != (n,):
        raise KernelUnsupported("cross_entropy: labels must be int32 or int64 of shape (N,)")
    return _LABELS[np.dtype(labels.dtype)], elem_strides(labels)[0]


def cross_entropy(dev: Any, logits: Any, labels: Any, *, reduction: str) -> tuple[Any, Any]:
    """Fused softmax cross-entropy: (loss per ``reduction``, probabilities)."""
    if not is_array(logits) or len(logits.shape) != 2:
        raise KernelUnsupported("cross_entropy: 2-D logits")  # the rule explains
    dtype, n, c = _rows("cross_entropy", 1, logits)
    (logits,) = _dense(dev, logits)
    n = logits.shape[0]
    suffix, lstride = _labels(labels, n)
    probs = dev.empty((n, c), dtype)
    losses = dev.empty((n,), dtype)
    if n and c:
        err, code = dev.error_flag(f"cross_entropy: label {{value}} is out of range for {c} classes{{position}}; "
                                   f"expected 0 <= label < {c}", (n,))
        dev.launch(SOURCE, f"cross_entropy_rows_{suffix}", defines(dtype), (n,), (row_block(c),),
                   (probs, losses, logits, labels, i64(lstride), i64(c), err, code))
    elif n:
        raise KernelUnsupported("cross_entropy with no classes")  # the reference explains
    if reduction == "none":
        return losses, probs
    loss = dev.empty((), dtype)
    reduce.run(dev, losses, 1, n, 1, reduce.SUM, loss, float(max(n, 1)) if reduction == "mean" else None)
    return loss, probs


def cross_entropy_backward(dev: Any, g: Any, logits: Any, probs: Any, labels: Any, *, reduction: str) -> Any:
    """``(probs - onehot(labels)) * g``, with ``g`` divided by N for ``"mean"``."""
    if not is_array(probs) or len(probs.shape) != 2:
        raise KernelUnsupported("cross_entropy_backward: 2-D probabilities")
    dtype, _, c = _rows("cross_entropy_backward", 1, probs)
    float_dtype("cross_entropy_backward", g, probs)
    (probs,) = _dense(dev, probs)
    n = probs.shape[0]
    suffix, lstride = _labels(labels, n)
    if reduction == "none":
        if tuple(g.shape) != (n,):
            raise KernelUnsupported(f"cross_entropy_backward: gradient of shape {tuple(g.shape)} for {n} losses")
        gstride = elem_strides(g)[0]
    elif g.size != 1:
        raise KernelUnsupported(f"cross_entropy_backward: gradient of shape {tuple(g.shape)} for a scalar loss")
    else:
        gstride = 0
    out = dev.empty((n, c), dtype)
    total = n * c
    if total:
        div = dtype.type(max(n, 1) if reduction == "mean" else 1)
        dev.launch(SOURCE, f"cross_entropy_backward_{suffix}", defines(dtype), grid_1d(dev, total), (256,),
                   (out, probs, labels, i64(lstride), g, i64(gstride), div, i64(c), i64(total)))
    return out


KERNELS: dict = {
    "softmax": softmax, "log_softmax": log_softmax, "softmax_backward": softmax_backward,
    "log_softmax_backward": log_softmax_backward, "cross_entropy": cross_entropy,
    "cross_entropy_backward": cross_entropy_backward,
}
