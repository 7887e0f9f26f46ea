"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tensorcore.autodiff.variable import Variable
from tensorcore.dispatch import apply_inplace
from tensorcore.ops.creation import zeros_like
from tensorcore.ops.optim_updates import SGD_STEP
from tensorcore.optim.optimizer import Optimizer


class SGD(Optimizer):
    """``v = momentum * v + g``; ``p -= lr * (g + momentum * v if nesterov else v)``, with
    ``g += weight_decay * p`` first (PyTorch's formulation). One fused kernel per parameter."""

    def __init__(self, params: Iterable[Variable], lr: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        if nesterov and momentum <= 0:
            raise ValueError("SGD: nesterov=True needs a positive momentum")
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay
        self.velocity = [zeros_like(p) if momentum else None for p in self.params]

    def _update(self, index: int, param: Variable, grad: Any) -> None:
        apply_inplace(SGD_STEP, param, (grad, self.velocity[index]),
                      {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov, "weight_decay": self.weight_decay})
