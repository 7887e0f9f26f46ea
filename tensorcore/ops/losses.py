"""Loss functions: ``cross_entropy`` (fused log-softmax + NLL) and ``mse_loss``.

``cross_entropy`` is one op with two outputs: the loss and the softmax probabilities, which
its fused backward ``cross_entropy_backward`` reuses (``(probs - onehot) * g / N``). The
probabilities are internal: the public function returns only the loss, and the gradient of
``cross_entropy_backward`` routes everything through ``logits`` (recomputing the softmax
with tensorcore ops), so no gradient ever reaches the probabilities output.

PyTorch's options (class ``weight``, ``ignore_index``, ``label_smoothing``, class-probability
targets) are a few ops around the fused op's per-row losses; without them the fused op is all.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore.dispatch import apply
from tensorcore.errors import OpError, index_position
from tensorcore.ops._nn import reduction_mode, require_tensor, vjp_through
from tensorcore.ops.activations import log_softmax, softmax
from tensorcore.ops.arithmetic import add, divide, multiply, negative, subtract
from tensorcore.ops.creation import arange
from tensorcore.ops.dense import embedding
from tensorcore.ops.logic import astype, equal, not_equal, where
from tensorcore.ops.manipulation import reshape
from tensorcore.ops.reductions import mean
from tensorcore.ops.reductions import sum as _sum
from tensorcore.ops.registry import Op, Spec, define
from tensorcore.tensor import Tensor


def _check_cross_entropy(logits: Any, labels: Any) -> None:
    """Shapes and dtypes of cross_entropy's inputs (Specs or tensors); raise naming what is wrong."""
    if logits.dtype.kind != "f":
        raise OpError(f"cross_entropy: logits must be floating point, got {logits.dtype}")
    if len(logits.shape) != 2:
        raise OpError(f"cross_entropy: logits must be 2-D (N, C), got shape {tuple(logits.shape)}")
    if labels.dtype.kind not in "iu":
        raise OpError(
            f"cross_entropy: labels must be integer class indices, got dtype {labels.dtype}; "
            "cast them with astype(tc.int64)"
        )
    if tuple(labels.shape) != tuple(logits.shape[:1]):
        raise OpError(
            f"cross_entropy: labels must have shape ({logits.shape[0]},) to match logits {tuple(logits.shape)}, "
            f"got {tuple(labels.shape)}"
        )


def _cross_entropy_infer(logits: Spec, labels: Spec, reduction: str) -> tuple[Spec, Spec]:
    _check_cross_entropy(logits, labels)
    shape = logits.shape[:1] if reduction == "none" else ()
    return Spec(shape, logits.dtype), logits


def _cross_entropy_ref(logits: np.ndarray, labels: np.ndarray, reduction: str) -> tuple[np.ndarray, np.ndarray]:
    n, c = logits.shape
    # One reduction, not min and max: seen unsigned, a negative label is at least 2**(bits-1),
    # which no valid signed label reaches, so it fails the bound below whatever c is.
    bound = min(c, 1 << (8 * labels.itemsize - 1)) if labels.dtype.kind == "i" else c
    if n and labels.view(f"u{labels.itemsize}").max() >= bound:
        at = int(np.flatnonzero((labels < 0) | (labels >= c))[0])  # named as a device names it
        raise OpError(f"cross_entropy: label {int(labels[at])} is out of range for {c} classes{index_position(at, (n,))}; "
                      f"expected 0 <= label < {c}")
    z = np.subtract(logits, logits.max(axis=1, keepdims=True))
    probs = np.exp(z)
    total = probs.sum(axis=1, keepdims=True)
    probs /= total
    losses = np.log(total.reshape(n))
    losses -= z[np.arange(n), labels]  # -log softmax at the label: log(sum exp z) - z[label]
    if reduction == "none":
        return losses, probs
    loss = losses.sum() if reduction == "sum" else losses.sum() / max(n, 1)
    return np.asarray(loss, dtype=logits.dtype), probs


def _cross_entropy_backward_ref(g: np.ndarray, logits: np.ndarray, probs: np.ndarray, labels: np.ndarray, reduction: str) -> np.ndarray:
    n = probs.shape[0]
    out = probs.copy()
    out[np.arange(n), labels] -= 1.0
    if reduction == "none":
        out *= g.reshape(n, 1)
    elif reduction == "mean":
        out *= g / max(n, 1)
    else:
        out *= g
    return out


def _cross_entropy_backward_composite(g: Tensor, logits: Tensor, probs: Tensor, labels: Tensor, reduction: str) -> Tensor:
    """The backward with tensorcore ops, from ``logits`` (``probs`` unused): for higher orders."""
    n, c = logits.shape
    onehot = astype(equal(reshape(labels, (n, 1)), arange(c, device=logits.device)), logits.dtype)
    diff = subtract(softmax(logits, axis=1), onehot)
    if reduction == "none":
        return multiply(diff, reshape(g, (n, 1)))
    return multiply(diff, divide(g, max(n, 1)) if reduction == "mean" else g)


_CROSS_ENTROPY_BACKWARD = define(Op(
    "cross_entropy_backward", _cross_entropy_backward_ref,
    infer=lambda g, logits, probs, labels, reduction: probs,
    grad=vjp_through(_cross_entropy_backward_composite, skip=(2, 3)),
    composite=_cross_entropy_backward_composite,
    doc="cross_entropy's gradient ``(probs - onehot(labels)) * g`` (divided by N for 'mean').",
))


def _cross_entropy_grad(ctx: Any, g: Tensor, _g_probs: Tensor) -> tuple:
    logits, labels = ctx.inputs
    # _g_probs is always zero: the probabilities never reach user code (see the module doc).
    return apply(_CROSS_ENTROPY_BACKWARD, (g, logits, ctx.outputs[1], labels), ctx.attrs), None


_CROSS_ENTROPY = define(Op(
    "cross_entropy", _cross_entropy_ref, infer=_cross_entropy_infer, grad=_cross_entropy_grad, n_outputs=2,
    doc="Softmax cross-entropy of logits (N, C) with integer labels (N,); outputs (loss, probs).",
))


def cross_entropy(logits: Tensor, labels: Tensor, reduction: str = "mean", *, weight: Tensor | None = None,
                  ignore_index: int | None = None, label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of ``logits`` ``(N, C)`` with integer class ``labels`` ``(N,)``, or with class
    probabilities ``labels`` ``(N, C)`` (a float tensor), as PyTorch's ``cross_entropy``.

    ``reduction``: ``"mean"`` over the batch (default), ``"sum"``, or ``"none"`` (shape ``(N,)``).
    ``weight`` ``(C,)``: a weight per class; the mean then divides by the summed weights of the
    labels. ``ignore_index``: rows with that label count for nothing (nor in the mean); unlike
    PyTorch's -100 the default is None, so the common case stays one fused op (a label out of
    range raises). ``label_smoothing`` in [0, 1]: the target mixes ``1 - label_smoothing`` of the
    label with a uniform share over the classes.

    Without these options it is one fused op forward and backward (log-sum-exp minus the label's
    logit, computed stably); with them, a few more ops around it.
    """
    if not isinstance(logits, Tensor) or not isinstance(labels, Tensor):
        raise OpError(
            f"cross_entropy: logits and labels must be tensors, got {type(logits).__name__} and {type(labels).__name__}"
        )
    if reduction != "mean" and reduction not in ("sum", "none"):
        reduction_mode("cross_entropy", reduction)
    _check_options(logits, weight, ignore_index, label_smoothing)
    if labels.dtype.kind == "f" and len(labels.shape) == 2:
        if ignore_index is not None:
            raise OpError("cross_entropy: ignore_index applies to class-index labels, not to class probabilities")
        return _soft_cross_entropy(logits, labels, reduction, weight, label_smoothing)
    _check_cross_entropy(logits, labels)
    if weight is None and ignore_index is None and not label_smoothing:
        return apply(_CROSS_ENTROPY, (logits, labels), {"reduction": reduction})[0]
    return _weighted_cross_entropy(logits, labels, reduction, weight, ignore_index, label_smoothing)


def _check_options(logits: Tensor, weight: Any, ignore_index: Any, label_smoothing: Any) -> None:
    c = logits.shape[-1] if logits.ndim else 0
    if weight is not None:
        require_tensor("cross_entropy", "weight", weight, floating=True)
        if tuple(weight.shape) != (c,):
            raise OpError(f"cross_entropy: weight must have shape ({c},) (one weight per class), got {weight.shape}")
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise OpError(f"cross_entropy: ignore_index must be an int or None, got {ignore_index!r}")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) or not 0.0 <= label_smoothing <= 1.0:
        raise OpError(f"cross_entropy: label_smoothing must be a number in [0, 1], got {label_smoothing!r}")


def _reduce_loss(per: Tensor, reduction: str, count: Tensor | int) -> Tensor:
    if reduction == "none":
        return per
    total = _sum(per)
    return total if reduction == "sum" else divide(total, count)


def _weighted_cross_entropy(logits: Tensor, labels: Tensor, reduction: str, weight: Tensor | None,
                            ignore_index: int | None, smoothing: float) -> Tensor:
    """The fused per-row loss (``reduction='none'``) with weights, ignored rows and smoothing
    around it, PyTorch's formula: the smoothed term is ``-sum_c w_c log p_c / C`` per row."""
    n, c = logits.shape
    keep = None
    if ignore_index is not None:  # ignored rows read class 0 (any valid index) and count 0
        valid = not_equal(labels, ignore_index)
        labels = where(valid, labels, 0)
        keep = astype(valid, logits.dtype)
    per = apply(_CROSS_ENTROPY, (logits, labels), {"reduction": "none"})[0]
    w_row = None
    if weight is not None:  # weight[labels], gathered by the embedding op (native everywhere)
        w_row = reshape(embedding(labels, reshape(weight, (c, 1))), (n,))
        per = multiply(per, w_row)
    if smoothing:
        logp = log_softmax(logits, axis=1)
        smooth = negative(_sum(multiply(logp, weight) if weight is not None else logp, axis=1))
        per = add(multiply(per, 1.0 - smoothing), multiply(smooth, smoothing / c))
    if keep is not None:
        per = multiply(per, keep)
    if reduction != "mean":
        return _reduce_loss(per, reduction, 1)
    count = w_row if keep is None else keep if w_row is None else multiply(w_row, keep)
    return _reduce_loss(per, reduction, max(n, 1) if count is None else _sum(count))


def _soft_cross_entropy(logits: Tensor, probs: Tensor, reduction: str, weight: Tensor | None, smoothing: float) -> Tensor:
    """``-sum_c w_c t_c log p_c`` per row for class-probability targets ``t`` (mean: over rows)."""
    if logits.dtype.kind != "f" or len(logits.shape) != 2:
        raise OpError(f"cross_entropy: logits must be floating point and 2-D (N, C), got {logits.dtype} {logits.shape}")
    if probs.shape != logits.shape:
        raise OpError(f"cross_entropy: class-probability labels must have the logits' shape {logits.shape}, got {probs.shape}")
    n, c = logits.shape
    target = add(multiply(probs, 1.0 - smoothing), smoothing / c) if smoothing else probs
    terms = multiply(log_softmax(logits, axis=1), target)
    if weight is not None:
        terms = multiply(terms, weight)
    return _reduce_loss(negative(_sum(terms, axis=1)), reduction, max(n, 1))


def mse_loss(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean squared error ``(pred - target) ** 2``, reduced by ``"mean"``, ``"sum"`` or ``"none"``."""
    reduction_mode("mse_loss", reduction)
    require_tensor("mse_loss", "pred", pred, floating=True)
    require_tensor("mse_loss", "target", target, floating=True)
    if pred.shape != target.shape:
        raise OpError(f"mse_loss: pred has shape {pred.shape} but target has shape {target.shape}; expected equal shapes")
    diff = subtract(pred, target)
    sq = multiply(diff, diff)
    if reduction == "mean":
        return mean(sq)
    return _sum(sq) if reduction == "sum" else sq


__all__ = ["cross_entropy", "mse_loss"]
