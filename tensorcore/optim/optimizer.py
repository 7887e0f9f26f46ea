"""The optimizer base: parameters fixed at construction, ``step(grads)`` in their order."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tensorcore import dispatch
from tensorcore.autodiff.variable import Variable
from tensorcore.errors import OpError
from tensorcore.tensor import Tensor


class Optimizer:
    """Updates a fixed list of trainable Variables in place from gradients given in the same
    order (what ``tape.gradient(loss, params)`` returns).

    Per-parameter state (momentum, moments, step count) lives in ``self.state[i]`` on the
    parameter's device, and follows the parameter if the model moves (``Module.to_device``).

    Over mirrored variables (``tensorcore.distribute``), each replica has its own state, and
    ``step`` (inside ``strategy.run``) first all-reduces the gradients across the replicas.
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
        # The strategy that mirrors the parameters (duck-typed: optim sits below distribute).
        self._strategy = _strategy_of(self.params)
        if self._strategy is None:
            self._replica_states = [[self._init_state(p) for p in self.params]]
        else:
            self._replica_states = self._strategy.for_each_replica(lambda: [self._init_state(p) for p in self.params])
            self._strategy._track_optimizer(self)

    @property
    def state(self) -> list[dict[str, Any]]:
        """Per-parameter state of the replica running in this thread (the only one without a strategy)."""
        if self._strategy is None:
            return self._replica_states[0]
        return self._replica_states[self._strategy.local_index()]

    def step(self, grads: Sequence[Any]) -> None:
        """Apply one update; ``grads[i]`` is the gradient of ``params[i]`` (None: leave it).

        Every gradient is checked before any parameter changes, so a bad call changes nothing.
        """
        name = type(self).__name__
        if len(grads) != len(self.params):
            raise ValueError(f"{name}.step got {len(grads)} gradients for {len(self.params)} parameters")
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if g is not None and (g.shape != p.shape or g.dtype != p.dtype):
                raise OpError(
                    f"{name}.step: gradient {i} is {g.dtype}{list(g.shape)} but parameter "
                    f"{p.name!r} is {p.dtype}{list(p.shape)}"
                )
        if self._strategy is None:
            self.iterations += 1
            self._apply(grads)
            return
        grads = self._strategy.reduce_gradients(grads, self.params)
        if self._strategy.local_index() == 0:
            self.iterations += 1
        with self._strategy.applying_update():  # a replica failing in here is repaired by run
            self._apply(grads)

    def _apply(self, grads: Sequence[Any]) -> None:
        states = self.state
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if g is None:
                continue
            state, dev = states[i], p.device
            if any(isinstance(v, Tensor) and v.device is not dev for v in state.values()):
                self._follow(p, state)  # the parameter moved since the last step
            self._update(p, g if g.device is dev else g.to_device(dev), state)

    def _follow(self, param: Variable, state: dict[str, Any]) -> None:
        """Move ``param``'s state to its device, untraced: traced, the move would run on every
        call of the graph and copy the stale state from the old device each time."""
        with dispatch.untraced():
            for key, value in state.items():
                if isinstance(value, Tensor) and value.device is not param.device:
                    state[key] = value.to_device(param.device)
            self._adapt_state(param, state)

    def _init_state(self, param: Variable) -> dict[str, Any]:
        """The state a parameter starts with (subclasses override)."""
        return {}

    def _adapt_state(self, param: Variable, state: dict[str, Any]) -> None:
        """Adjust state that has just followed its parameter to a new device (subclasses
        override; runs untraced, see ``_follow``)."""

    def _update(self, param: Variable, grad: Any, state: dict[str, Any]) -> None:
        raise NotImplementedError


def _strategy_of(params: list[Variable]) -> Any:
    """The distribute strategy mirroring every parameter, or None; mixing is an error."""
    strategies = {id(s): s for s in (getattr(p, "strategy", None) for p in params)}
    if len(strategies) > 1:
        raise ValueError("an optimizer's parameters must all be mirrored by one strategy, or none of them: "
                         "create the model and the optimizer in the same strategy.scope()")
    return next(iter(strategies.values()))
