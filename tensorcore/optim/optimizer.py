"""The optimizer base: parameters fixed at construction, ``step(grads)`` in their order."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tensorcore.autodiff.variable import Variable
from tensorcore.errors import OpError


class Optimizer:
    """Updates a fixed list of trainable Variables in place from gradients given in the same
    order (what ``tape.gradient(loss, params)`` returns). State lives on each parameter's device.
    """

    def __init__(self, params: Iterable[Variable], lr: float) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got no parameters to optimize")
        for i, p in enumerate(self.params):
            if not isinstance(p, Variable):
                raise TypeError(f"{type(self).__name__}: parameter {i} is a {type(p).__name__}, not a tc.Variable")
        if lr <= 0:
            raise ValueError(f"{type(self).__name__}: learning rate must be positive, got {lr}")
        self.lr = lr
        self.iterations = 0

    def step(self, grads: Sequence[Any]) -> None:
        """Apply one update; ``grads[i]`` is the gradient of ``params[i]`` (None: leave it)."""
        if len(grads) != len(self.params):
            raise ValueError(f"{type(self).__name__}.step got {len(grads)} gradients for {len(self.params)} parameters")
        self.iterations += 1
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if g is None:
                continue
            if g.shape != p.shape or g.dtype != p.dtype:
                raise OpError(
                    f"{type(self).__name__}.step: gradient {i} is {g.dtype}{list(g.shape)} but parameter "
                    f"{p.name!r} is {p.dtype}{list(p.shape)}"
                )
            if g.device is not p.device:
                g = g.to_device(p.device)
            self._update(i, p, g)
            p.bump_version()

    def _update(self, index: int, param: Variable, grad: Any) -> None:
        raise NotImplementedError
