"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tensorcore.autodiff.variable import Variable
from tensorcore.dispatch import apply_inplace
from tensorcore.ops.creation import zeros_like
from tensorcore.ops.optim_updates import SGD_STEP
from tensorcore.optim.optimizer import Optimizer
from tensorcore.tensor import Tensor


class SGD(Optimizer):
    """``v = momentum * v + g``; ``p -= lr * (g + momentum * v if nesterov else v)``, with
    ``g += weight_decay * p`` first (PyTorch's formulation). One fused kernel per parameter.

    ``lr`` is a number or a callable ``lr(step)`` evaluated on the device at every step (see
    :class:`Optimizer`)."""

    def __init__(self, params: Iterable[Variable], lr: float | Callable[[Tensor], Any], momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0) -> None:
        if nesterov and momentum <= 0:
            raise ValueError("SGD: nesterov=True needs a positive momentum")
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay
        super().__init__(params, lr)

    def _init_state(self, param: Variable) -> dict[str, Any]:
        return {"velocity": zeros_like(param)} if self.momentum else {}

    def _update(self, param: Variable, grad: Any, state: dict[str, Any]) -> None:
        now = self._now
        apply_inplace(SGD_STEP, param, (grad, state.get("velocity"), now.lr, now.step),
                      {"momentum": self.momentum, "nesterov": self.nesterov, "weight_decay": self.weight_decay})

    def _hyperparameters(self) -> dict[str, Any]:
        return {"momentum": float(self.momentum), "nesterov": bool(self.nesterov), "weight_decay": float(self.weight_decay)}
