"""``tc.custom_gradient`` and ``tc.stop_gradient``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from tensorcore.autodiff import tape as _tape
from tensorcore.dispatch import apply
from tensorcore.ops.registry import Op, define
from tensorcore.tensor import Tensor

_STOP = define(Op("stop_gradient", lambda x: x, doc="Identity that blocks gradients."))


def stop_gradient(x: Tensor) -> Tensor:
    """``x`` itself as far as values go, but no gradient flows through it."""
    return apply(_STOP, (x,))


class _CustomGradient:
    """The tape-facing op of one ``custom_gradient`` call: a name and a gradient."""

    __slots__ = ("name", "grad")

    def __init__(self, name: str, grad_fn: Callable[..., Any], n_inputs: int) -> None:
        self.name = name

        def grad(ctx: Any, *upstream: Tensor) -> tuple:
            grads = grad_fn(*upstream)
            grads = tuple(grads) if isinstance(grads, (list, tuple)) else (grads,)
            if len(grads) != n_inputs:
                raise ValueError(
                    f"custom_gradient {name!r}: the gradient function returned {len(grads)} "
                    f"gradients for {n_inputs} inputs; return one per positional input (None allowed)"
                )
            return grads

        self.grad = grad


def custom_gradient(f: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: ``f(*inputs)`` returns ``(output, grad_fn)``; ``grad_fn(*upstream)`` returns
    one gradient per positional input. Ops inside ``f`` are not recorded; ``grad_fn`` is
    written with tensorcore ops, so an outer tape can differentiate it again.
    """

    @functools.wraps(f)
    def wrapper(*inputs: Any) -> Any:
        with _tape.paused():
            output, grad_fn = f(*inputs)
        outputs = output if isinstance(output, tuple) else (output,)
        if _tape.recording and _tape.recording_here():
            _tape.record(_CustomGradient(f.__name__, grad_fn, len(inputs)), inputs, {}, outputs)
        return output

    return wrapper
