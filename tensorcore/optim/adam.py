"""Adam and AdamW (decoupled weight decay), with bias correction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tensorcore.autodiff.variable import Variable
from tensorcore.dispatch import apply_inplace
from tensorcore.ops.creation import zeros_like
from tensorcore.ops.optim_updates import ADAM_STEP
from tensorcore.optim.optimizer import Optimizer


class Adam(Optimizer):
    """Adam (Kingma & Ba); ``weight_decay`` adds ``weight_decay * p`` to the gradient (L2)."""

    decoupled = False

    def __init__(self, params: Iterable[Variable], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        self.m = [zeros_like(p) for p in self.params]
        self.v = [zeros_like(p) for p in self.params]

    def _update(self, index: int, param: Variable, grad: Any) -> None:
        apply_inplace(ADAM_STEP, param, (grad, self.m[index], self.v[index]), {
            "lr": self.lr, "beta1": self.betas[0], "beta2": self.betas[1], "eps": self.eps,
            "weight_decay": self.weight_decay, "decoupled": self.decoupled, "step": self.iterations,
        })


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``p *= 1 - lr * weight_decay``."""

    decoupled = True

    def __init__(self, params: Iterable[Variable], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)
