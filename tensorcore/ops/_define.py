"""Helpers that define an op and its public function in one statement."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tensorcore.dispatch import apply
from tensorcore.errors import OpError
from tensorcore.ops.registry import Op, Spec, define


def op_function(op: Op, arity: int, name: str | None = None) -> Callable[..., Any]:
    """Give ``op`` a public function taking its ``arity`` (1 or 2) inputs positionally, named
    as the Array API names them (``x``; ``x1``, ``x2``)."""
    fn: Callable[..., Any]
    if arity == 1:
        def fn(x: Any, /) -> Any:
            return apply(op, (x,))
    else:
        def fn(x1: Any, x2: Any, /) -> Any:
            return apply(op, (x1, x2))

    fn.__name__ = fn.__qualname__ = name or op.name
    fn.__doc__ = op.doc
    fn.op = op  # type: ignore[attr-defined]
    return fn


def same_shape(x: Any, **_: Any) -> Spec:
    """Shape rule of a unary elementwise op: the output looks like the input."""
    return x


def reference_dtype(reference: Callable, *inputs: Any, **attrs: Any) -> np.dtype:
    """The dtype ``reference`` returns for inputs of these dtypes: NumPy's own type resolution,
    found by running it on one-element arrays (Python scalars pass as they are, weakly typed).
    Exact where ``np.result_type`` is not (integer division, bool arithmetic, ...)."""
    dummies = [np.ones((1,), x.dtype) if isinstance(x, Spec) else x for x in inputs]
    with np.errstate(all="ignore"):
        try:
            return np.asarray(reference(*dummies, **attrs)).dtype
        except Exception:  # e.g. NumPy refuses the combination: the kernel will raise too
            return np.result_type(*[x.dtype if isinstance(x, Spec) else x for x in inputs])


def elementwise_rule(name: str, reference: Callable, out_dtype: Any = None) -> Callable[..., Spec]:
    """Shape and dtype rule of an elementwise op: broadcast shapes; ``out_dtype`` if the op
    has a fixed one (comparisons give bool), else the dtype the reference gives."""

    def infer(*inputs: Any, **attrs: Any) -> Spec:
        shapes = [x.shape for x in inputs if isinstance(x, Spec)]
        try:
            shape = np.broadcast_shapes(*shapes)
        except ValueError:
            raise OpError(
                f"{name}: shapes {' and '.join(map(str, shapes))} cannot be broadcast together; "
                "each dimension must be equal, or 1, or missing (counted from the right)"
            ) from None
        if out_dtype is not None:
            return Spec(shape, out_dtype)
        return Spec(shape, _elementwise_dtype(name, reference, inputs, attrs))

    return infer


def _elementwise_dtype(name: str, reference: Callable, inputs: tuple, attrs: dict[str, Any]) -> np.dtype:
    """``reference_dtype``, except that a dtype combination NumPy has no loop for (a float in
    ``bitwise_and``) is the rule's ``OpError``: no kernel, cpu included, accepts those inputs."""
    dummies = [np.ones((1,), x.dtype) if isinstance(x, Spec) else x for x in inputs]
    with np.errstate(all="ignore"):
        try:
            return np.asarray(reference(*dummies, **attrs)).dtype
        except TypeError as exc:  # NumPy's "ufunc ... not supported for the input types"
            given = ", ".join(str(x.dtype) if isinstance(x, Spec) else type(x).__name__ for x in inputs)
            raise OpError(f"{name} does not take inputs of dtype ({given}): {exc}; "
                          "cast them with astype() to dtypes it takes") from None
        except Exception:  # a reference that cannot run on one-element dummies: NumPy's rule
            return np.result_type(*[x.dtype if isinstance(x, Spec) else x for x in inputs])


def unary(name: str, reference: Callable, grad: Callable | None = None, *, out_dtype: Any = None, doc: str = "",
          **flags: bool) -> Callable:
    """Define a unary elementwise op and return its public function. ``flags`` are the
    :class:`Op`'s ``float_only``, ``real_only`` and ``complex_grad``."""
    infer = elementwise_rule(name, reference, out_dtype)
    op = define(Op(name, reference, infer=infer, grad=grad, doc=doc, **flags))
    return op_function(op, 1)


def binary(name: str, reference: Callable, grad: Callable | None = None, *, out_dtype: Any = None, doc: str = "",
           **flags: bool) -> Callable:
    """Define a binary elementwise op (broadcasting, Python scalars allowed) and return its
    function. ``flags`` as for :func:`unary`."""
    op = define(Op(name, reference, infer=elementwise_rule(name, reference, out_dtype), grad=grad, doc=doc, **flags))
    return op_function(op, 2)
