"""tc.Variable: a tensor whose value can be updated in place, watched by tapes when trainable."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tensorcore import dispatch
from tensorcore.errors import OpError
from tensorcore.tensor import Tensor

# Set by tensorcore.distribute: the Variable subclass to create instead in this thread (a
# mirrored variable inside a strategy's scope), or None. A hook, as TensorFlow's variable
# creator scopes are, so that layers written for one device need no change.
variable_class_hook: Callable[[], type | None] | None = None
# Set by tensorcore.distribute: the replica this thread runs as, as (an id of the replica, and
# whether inside strategy.run), or None. Inside run a variable may be written only by the
# replica that made it: one made outside (shared by every replica, never all-reduced) may not.
replica_hook: Callable[[], tuple[Any, bool] | None] | None = None


def _current_replica() -> tuple[Any, bool] | None:
    return None if replica_hook is None else replica_hook()


def refuse_in_run(what: str, instead: str) -> None:
    """Raise if this thread runs a replica's step: ``what`` changes state every replica shares."""
    current = _current_replica()
    if current is not None and current[1]:
        raise RuntimeError(f"{what} inside strategy.run: every replica would do it, each at its own moment; {instead}")


def refuse_shared_writes(what: str, variables: Iterable[Variable]) -> None:
    """Raise if this thread runs a replica's step and ``what`` writes one of ``variables`` that
    this replica did not make (plain variables only: a mirrored one writes its replica's copy)."""
    current = _current_replica()
    if current is None or not current[1]:
        return
    for v in variables:
        if type(v) is Variable and getattr(v, "_owner", None) != current[0]:
            raise RuntimeError(
                f"{what} of variable {v.name!r} inside strategy.run: it is not mirrored (it was created outside "
                "strategy.scope()) and not this replica's own, so every replica would write it with its own values, "
                "none of them all-reduced; create the model, its optimizer and any variable the step writes inside "
                "`with strategy.scope():`")


class Variable(Tensor):
    """A mutable tensor (TensorFlow's ``tf.Variable``): acts as a tensor in every op.

    ``assign``, ``assign_add`` and ``assign_sub`` update the buffer in place on the
    variable's device. Trainable variables are watched by every ``GradientTape``.
    """

    __slots__ = ("trainable", "name", "_owner")

    def __new__(cls, *args: Any, **kwargs: Any) -> Variable:
        if cls is Variable and variable_class_hook is not None:
            cls = variable_class_hook() or cls
        return object.__new__(cls)

    def __init__(self, initial_value: Any, trainable: bool = True, name: str | None = None, dtype: Any = None, device: Any = None) -> None:
        from tensorcore.ops.creation import asarray

        value = asarray(initial_value, dtype=dtype, device=device, copy=True)
        if trainable and value.dtype.kind != "f":
            raise OpError(f"a trainable Variable must be floating point, got {value.dtype}; pass trainable=False")
        self._data, self._device = value._data, value._device
        current = _current_replica()
        self._owner = None if current is None else current[0]  # the replica that made it, if any
        self.trainable, self.name, self._version = trainable, name or "Variable", 0
        tracer = dispatch.current_tracer()
        if tracer is not None:  # it would be one Variable shared by every run of the graph
            tracer.refuse(
                "a tc.Variable is created while tracing; create Variables (and models, optimizers' "
                "parameters) once, outside the traced function, as TensorFlow requires")

    def __repr__(self) -> str:
        return f"Variable({self.name!r}, {super().__repr__()})"

    def _check(self, what: str, value: Any) -> Any:
        from tensorcore.ops.creation import asarray

        if not isinstance(value, Tensor):
            value = asarray(value, dtype=self.dtype, device=self._device)
        if value.shape != self.shape:
            raise OpError(f"{what}: value has shape {value.shape}, but variable {self.name!r} has shape {self.shape}")
        if value.dtype != self.dtype:
            raise OpError(f"{what}: value has dtype {value.dtype}, but variable {self.name!r} has dtype {self.dtype}; cast it with astype()")
        return value

    def _update(self, op_name: str, value: Any) -> Variable:
        from tensorcore.ops import optim_updates

        refuse_shared_writes(op_name, (self,))
        op = getattr(optim_updates, op_name.upper())
        dispatch.apply_inplace(op, self, (self._check(op_name, value),))  # bumps the version
        return self

    def assign(self, value: Any) -> Variable:
        """Write ``value`` (same shape and dtype) into this variable, in place."""
        return self._update("assign", value)

    def assign_add(self, delta: Any) -> Variable:
        """Add ``delta`` to this variable in place."""
        return self._update("assign_add", delta)

    def assign_sub(self, delta: Any) -> Variable:
        """Subtract ``delta`` from this variable in place."""
        return self._update("assign_sub", delta)

    def move_to_device(self, device: Any) -> Variable:
        """Move this variable's buffer to ``device``, keeping the same Variable object."""
        from tensorcore.device import resolve

        moved = dispatch.transfer(self, resolve(device))
        if moved is not self:
            self._data, self._device = moved._data, moved._device
            self._version += 1
        return self


    def __deepcopy__(self, memo: dict) -> Variable:
        """A new, independent Variable with a copy of this one's value, name and trainability."""
        copied = super().__deepcopy__(memo)
        copied.trainable, copied.name = self.trainable, self.name
        return copied
