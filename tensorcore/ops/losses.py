"""Loss functions: ``cross_entropy`` (fused log-softmax + NLL) and ``mse_loss``.

``cross_entropy`` is one op with two outputs: the loss and the softmax probabilities, which
its fused backward ``cross_entropy_backward`` reuses (``(probs - onehot) * g / N``). The
probabilities are internal: the public function returns only the loss, and the gradient of
``cross_entropy_backward`` routes everything through ``logits`` (recomputing the softmax
with tensorcore ops), so no gradient ever reaches the probabilities output.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore.dispatch import apply
from tensorcore.errors import OpError
from tensorcore.ops._nn import reduction_mode, require_tensor, vjp_through
from tensorcore.ops.activations import softmax
from tensorcore.ops.arithmetic import divide, multiply, subtract
from tensorcore.ops.creation import arange
from tensorcore.ops.logic import astype, equal
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
    if n and (labels.min() < 0 or labels.max() >= c):
        bad = int(labels.min()) if labels.min() < 0 else int(labels.max())
        raise OpError(f"cross_entropy: label {bad} is out of range for {c} classes; expected 0 <= label < {c}")
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


def cross_entropy(logits: Tensor, labels: Tensor, reduction: str = "mean") -> Tensor:
    """Cross-entropy of ``logits`` ``(N, C)`` with integer class ``labels`` ``(N,)``.

    ``reduction``: ``"mean"`` over the batch (default), ``"sum"``, or ``"none"`` (shape ``(N,)``).
    Computed stably as log-sum-exp minus the label's logit; one fused op forward and backward.
    """
    if not isinstance(logits, Tensor) or not isinstance(labels, Tensor):
        raise OpError(
            f"cross_entropy: logits and labels must be tensors, got {type(logits).__name__} and {type(labels).__name__}"
        )
    if reduction != "mean" and reduction not in ("sum", "none"):
        reduction_mode("cross_entropy", reduction)
    _check_cross_entropy(logits, labels)
    return apply(_CROSS_ENTROPY, (logits, labels), {"reduction": reduction})[0]


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
