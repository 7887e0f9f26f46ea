"""The Tensor's operators and op-calling methods, installed onto :class:`Tensor`.

Kept apart from ``tensor.py`` so that the Tensor class can be imported by every layer
while its methods use the ops defined above it. Binary operators call ``dispatch.apply``
directly with the op object: one Python frame less on eager mode's hottest path.
"""

from __future__ import annotations

from typing import Any

from tensorcore.dispatch import apply
from tensorcore.errors import OpError
from tensorcore.ops import elementwise as ew
from tensorcore.ops import indexing, linalg, manipulation, reductions
from tensorcore.tensor import Tensor

_BINARY = {
    "add": ew.add, "sub": ew.subtract, "mul": ew.multiply, "truediv": ew.divide,
    "floordiv": ew.floor_divide, "mod": ew.remainder, "pow": ew.pow, "matmul": linalg.matmul,
    "and": ew.bitwise_and, "or": ew.bitwise_or, "xor": ew.bitwise_xor,
    "lshift": ew.bitwise_left_shift, "rshift": ew.bitwise_right_shift,
}
_COMPARISON = {
    "eq": ew.equal, "ne": ew.not_equal, "lt": ew.less, "le": ew.less_equal,
    "gt": ew.greater, "ge": ew.greater_equal,
}
_UNARY = {"neg": ew.negative, "pos": ew.positive, "abs": ew.abs, "invert": ew.bitwise_invert}


def _op_of(fn: Any) -> Any:
    return getattr(fn, "op", None)


def _forward(name: str, fn: Any) -> Any:
    op = _op_of(fn)
    if op is not None:
        def method(self: Tensor, other: Any) -> Any:
            return apply(op, (self, other))
    else:
        def method(self: Tensor, other: Any) -> Any:
            return fn(self, other)
    method.__name__ = name
    return method


def _reflected(name: str, fn: Any) -> Any:
    op = _op_of(fn)
    if op is not None:
        def method(self: Tensor, other: Any) -> Any:
            return apply(op, (other, self))
    else:
        def method(self: Tensor, other: Any) -> Any:
            return fn(other, self)
    method.__name__ = name
    return method


class InPlaceError(OpError, TypeError):
    """``x1 op= x2`` would change ``x1``'s dtype or shape (the spec forbids both)."""


def _in_place(name: str, forward: Any) -> Any:
    """``x1 op= x2``: ``x1 op x2``, rebound to the name as before (tensors are values), refused
    where type promotion or broadcasting would change ``x1``'s dtype or shape. The Array API:
    "an in-place operation must not change the data type or shape of the in-place array as a
    result of type promotion or broadcasting" (``int8_tensor += int16_tensor`` is refused, not
    an ``int16`` result)."""
    def method(self: Tensor, other: Any) -> Any:
        result = forward(self, other)
        if result.dtype != self.dtype or result.shape != self.shape:
            raise InPlaceError(f"{name}: the result would be {result.dtype}{list(result.shape)}, but an in-place "
                               f"operation keeps the left operand's {self.dtype}{list(self.shape)}; write "
                               f"x = x {_SYMBOLS.get(name, name)} y for a new tensor")
        return result
    method.__name__ = name
    return method


_SYMBOLS = {
    "__iadd__": "+", "__isub__": "-", "__imul__": "*", "__itruediv__": "/", "__ifloordiv__": "//",
    "__imod__": "%", "__ipow__": "**", "__imatmul__": "@", "__iand__": "&", "__ior__": "|", "__ixor__": "^",
    "__ilshift__": "<<", "__irshift__": ">>",
}


def _unary(name: str, fn: Any) -> Any:
    def method(self: Tensor) -> Any:
        return fn(self)

    method.__name__ = name
    return method


def _T(self: Tensor) -> Tensor:  # noqa: N802 - Array API name
    """The transpose of a 2-D tensor."""
    if self.ndim != 2:
        raise ValueError(f"x.T needs a 2-D tensor, got {self.ndim}-D; use x.mT or permute_dims")
    return manipulation.permute_dims(self, (1, 0))


def _mT(self: Tensor) -> Tensor:  # noqa: N802
    """The transpose of the last two dimensions (a stack of matrices)."""
    return manipulation.matrix_transpose(self)


def _astype(self: Tensor, dtype: Any, /, *, copy: bool = True) -> Tensor:
    """This tensor cast to ``dtype``."""
    return ew.astype(self, dtype, copy=copy)


def _reshape(self: Tensor, *shape: Any) -> Tensor:
    """This tensor with a new shape: ``x.reshape(2, 3)`` or ``x.reshape((2, 3))``."""
    return manipulation.reshape(self, shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape)


def _sum(self: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """The sum over ``axis`` (all axes by default)."""
    return reductions.sum(self, axis=axis, keepdims=keepdims)


def _mean(self: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """The mean over ``axis`` (all axes by default)."""
    return reductions.mean(self, axis=axis, keepdims=keepdims)


def install() -> None:
    """Attach the operators and methods to :class:`Tensor` (done once, at import)."""
    for dunder, fn in _BINARY.items():
        forward = _forward(f"__{dunder}__", fn)
        setattr(Tensor, f"__{dunder}__", forward)
        setattr(Tensor, f"__r{dunder}__", _reflected(f"__r{dunder}__", fn))
        setattr(Tensor, f"__i{dunder}__", _in_place(f"__i{dunder}__", forward))
    for dunder, fn in _COMPARISON.items():
        setattr(Tensor, f"__{dunder}__", _forward(f"__{dunder}__", fn))
    for dunder, fn in _UNARY.items():
        setattr(Tensor, f"__{dunder}__", _unary(f"__{dunder}__", fn))
    Tensor.__getitem__ = indexing.getitem
    Tensor.__setitem__ = indexing.setitem
    Tensor.T = property(_T)
    Tensor.mT = property(_mT)
    Tensor.astype = _astype
    Tensor.reshape = _reshape
    Tensor.sum = _sum
    Tensor.mean = _mean


install()
