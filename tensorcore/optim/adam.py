"""Adam and AdamW (decoupled weight decay), with bias correction.

The bias correction lives in a small per-parameter tensor, the *schedule*
(``[beta1**t, beta2**t, step size, eps_hat]``), advanced by its own in-place op before each
update, which reads the learning rate from the device (see ``optimizer.py``). A Python step
count would be frozen into a traced graph; the schedule tensor is advanced on every run of it,
so ``opt.step`` works inside ``tc.function``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from tensorcore.autodiff.variable import Variable
from tensorcore.device import Device
from tensorcore.dispatch import apply_inplace
from tensorcore.ops.creation import asarray, zeros_like
from tensorcore.ops.logic import astype
from tensorcore.ops.optim_updates import ADAM_SCHEDULE, ADAM_STEP
from tensorcore.optim._lr import state_dtype
from tensorcore.optim.optimizer import Optimizer
from tensorcore.tensor import Tensor


class Adam(Optimizer):
    """Adam (Kingma & Ba); ``weight_decay`` adds ``weight_decay * p`` to the gradient (L2).
    ``lr`` is a number or a callable ``lr(step)`` (see :class:`Optimizer`)."""

    decoupled = False
    _fixed_shape_state = ("schedule",)

    def __init__(self, params: Iterable[Variable], lr: float | Callable[[Tensor], Any] = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        super().__init__(params, lr)

    def _init_state(self, param: Variable) -> dict[str, Any]:
        return {"m": zeros_like(param), "v": zeros_like(param), "schedule": _new_schedule(param.device)}

    def _adapt_state(self, param: Variable, state: dict[str, Any]) -> None:
        if state["schedule"].dtype != state_dtype(param.device):  # moved to a device without float64
            state["schedule"] = astype(state["schedule"], state_dtype(param.device))

    def _update(self, param: Variable, grad: Any, state: dict[str, Any]) -> None:
        schedule, lr = state["schedule"], self._now.lr
        # per parameter: one skipped with a None gradient keeps its own count
        apply_inplace(ADAM_SCHEDULE, schedule, (lr, self._now.step), {
            "beta1": self.betas[0], "beta2": self.betas[1], "eps": self.eps})
        apply_inplace(ADAM_STEP, param, (grad, state["m"], state["v"], schedule, lr), {
            "beta1": self.betas[0], "beta2": self.betas[1],
            "weight_decay": self.weight_decay, "decoupled": self.decoupled,
        })

    def _hyperparameters(self) -> dict[str, Any]:
        return {"betas": [float(b) for b in self.betas], "eps": float(self.eps), "weight_decay": float(self.weight_decay)}


def _new_schedule(device: Device) -> Any:
    """A fresh schedule on ``device``: no steps taken yet."""
    return asarray(np.array([1.0, 1.0, 0.0, 0.0], state_dtype(device)), device=device)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``p *= 1 - lr * weight_decay``."""

    decoupled = True

    def __init__(self, params: Iterable[Variable], lr: float | Callable[[Tensor], Any] = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)
