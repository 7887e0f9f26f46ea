"""Adam and AdamW (decoupled weight decay), with bias correction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tensorcore import dispatch
from tensorcore.autodiff.variable import Variable
from tensorcore.dispatch import apply_inplace
from tensorcore.ops.creation import zeros_like
from tensorcore.ops.optim_updates import ADAM_STEP
from tensorcore.optim.optimizer import Optimizer


class Adam(Optimizer):
    """Adam (Kingma & Ba); ``weight_decay`` adds ``weight_decay * p`` to the gradient (L2)."""

    decoupled = False

    def __init__(self, params: Iterable[Variable], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        super().__init__(params, lr)

    def _init_state(self, param: Variable) -> dict[str, Any]:
        return {"m": zeros_like(param), "v": zeros_like(param), "step": 0}

    def _update(self, param: Variable, grad: Any, state: dict[str, Any]) -> None:
        if dispatch.tracers:  # the step count is Python state: a graph would freeze it
            dispatch.tracers[-1].refuse(
                f"{type(self).__name__}.step inside a traced function is not supported yet (its bias "
                "correction uses a Python step count, which a graph would freeze at trace time); call "
                "opt.step outside the traced function, or use SGD inside it")
        state["step"] += 1  # per parameter: one skipped with a None gradient keeps its own count
        apply_inplace(ADAM_STEP, param, (grad, state["m"], state["v"]), {
            "lr": self.lr, "beta1": self.betas[0], "beta2": self.betas[1], "eps": self.eps,
            "weight_decay": self.weight_decay, "decoupled": self.decoupled, "step": state["step"],
        })


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``p *= 1 - lr * weight_decay``."""

    decoupled = True

    def __init__(self, params: Iterable[Variable], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)
