"""Loss layers with PyTorch's constructors: CrossEntropyLoss and MSELoss.

Called as ``loss_fn(input, target)``, like PyTorch's. They hold only settings (and
CrossEntropyLoss's class weights, a buffer that moves with ``to_device``).
"""

from __future__ import annotations

from typing import Any

from tensorcore.autodiff.variable import Variable
from tensorcore.errors import OpError
from tensorcore.nn import functional as F
from tensorcore.nn.module import Module
from tensorcore.ops._nn import reduction_mode
from tensorcore.tensor import Tensor


class CrossEntropyLoss(Module):
    """Softmax cross-entropy of logits ``(N, C)`` with class indices ``(N,)`` or class
    probabilities ``(N, C)``; see :func:`tensorcore.nn.functional.cross_entropy`.

    ``weight`` ``(C,)`` weighs each class; ``ignore_index`` drops rows with that label (default
    None, not PyTorch's -100: a label of -100 raises instead of being silently skipped, and the
    loss stays one fused op); ``reduction``: ``"mean"``, ``"sum"`` or ``"none"``;
    ``label_smoothing`` in [0, 1].
    """

    def __init__(self, weight: Tensor | None = None, *, ignore_index: int | None = None, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        reduction_mode("CrossEntropyLoss", reduction)
        if weight is not None:
            if not isinstance(weight, Tensor):
                raise OpError(f"CrossEntropyLoss: weight must be a tensor of one weight per class, got {type(weight).__name__}")
            weight = weight if isinstance(weight, Variable) else Variable(weight, trainable=False, name="weight")
            self.register_buffer("weight", weight)
        else:
            self.weight = None
        if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
            raise OpError(f"CrossEntropyLoss: ignore_index must be an int or None, got {ignore_index!r}")
        if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) or not 0 <= label_smoothing <= 1:
            raise OpError(f"CrossEntropyLoss: label_smoothing must be a number in [0, 1], got {label_smoothing!r}")
        self.ignore_index, self.reduction, self.label_smoothing = ignore_index, reduction, float(label_smoothing)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        """The loss of logits ``input`` against ``target``."""
        return F.cross_entropy(input, target, self.reduction, weight=self.weight, ignore_index=self.ignore_index,
                               label_smoothing=self.label_smoothing)

    def extra_repr(self) -> str:
        parts = [f"reduction={self.reduction!r}"]
        if self.weight is not None:
            parts.append(f"weight=({self.weight.shape[0]},)")
        if self.ignore_index is not None:
            parts.append(f"ignore_index={self.ignore_index}")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(parts)


class MSELoss(Module):
    """Mean squared error ``(input - target) ** 2``, reduced by ``"mean"``, ``"sum"`` or ``"none"``."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction_mode("MSELoss", reduction)

    def forward(self, input: Tensor, target: Tensor) -> Any:  # noqa: A002
        """The loss of ``input`` against ``target`` (same shapes)."""
        return F.mse_loss(input, target, self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


__all__ = ["CrossEntropyLoss", "MSELoss"]
