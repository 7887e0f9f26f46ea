"""tc.Variable: a tensor whose value can be updated in place, watched by tapes when trainable."""

from __future__ import annotations

from typing import Any

from tensorcore import dispatch
from tensorcore.errors import OpError
from tensorcore.tensor import Tensor


class Variable(Tensor):
    """A mutable tensor (TensorFlow's ``tf.Variable``): acts as a tensor in every op.

    ``assign``, ``assign_add`` and ``assign_sub`` update the buffer in place on the
    variable's device. Trainable variables are watched by every ``GradientTape``.
    """

    __slots__ = ("trainable", "name", "_version")

    def __init__(self, initial_value: Any, trainable: bool = True, name: str | None = None, dtype: Any = None, device: Any = None) -> None:
        from tensorcore.ops.creation import asarray

        value = asarray(initial_value, dtype=dtype, device=device, copy=True)
        if trainable and value.dtype.kind != "f":
            raise OpError(f"a trainable Variable must be floating point, got {value.dtype}; pass trainable=False")
        self._data, self._device = value._data, value._device
        self.trainable, self.name, self._version = trainable, name or "Variable", 0

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

    def assign(self, value: Any) -> Variable:
        """Write ``value`` (same shape and dtype) into this variable, in place."""
        from tensorcore.ops.optim_updates import ASSIGN

        dispatch.apply_inplace(ASSIGN, self, (self._check("assign", value),))
        self._version += 1
        return self

    def assign_add(self, delta: Any) -> Variable:
        """Add ``delta`` to this variable in place."""
        from tensorcore.ops.optim_updates import ASSIGN_ADD

        dispatch.apply_inplace(ASSIGN_ADD, self, (self._check("assign_add", delta),))
        self._version += 1
        return self

    def assign_sub(self, delta: Any) -> Variable:
        """Subtract ``delta`` from this variable in place."""
        from tensorcore.ops.optim_updates import ASSIGN_SUB

        dispatch.apply_inplace(ASSIGN_SUB, self, (self._check("assign_sub", delta),))
        self._version += 1
        return self

    def move_to_device(self, device: Any) -> Variable:
        """Move this variable's buffer to ``device``, keeping the same Variable object."""
        from tensorcore.device import resolve

        moved = dispatch.transfer(self, resolve(device))
        if moved is not self:
            self._data, self._device = moved._data, moved._device
            self._version += 1
        return self

    def bump_version(self) -> None:
        """Mark the buffer as changed (for in-place kernels such as fused optimizer steps)."""
        self._version += 1
