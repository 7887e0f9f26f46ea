"""``tc.custom_op``: define a new op from a NumPy function, with a gradient and device kernels.

The new op goes through the same dispatch as built-in ops: it runs eagerly, is recorded by
tapes, and runs on every device, falling back to ``cpu`` where it has no kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tensorcore.dispatch import apply
from tensorcore.ops.registry import Op, define, register_kernel


def custom_op(
    name: str,
    *,
    grad: Callable[..., Any] | None = None,
    infer: Callable[..., Any] | None = None,
    kernels: dict[str, Callable[..., Any]] | None = None,
    composite: Callable[..., Any] | None = None,
    n_outputs: int = 1,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator that turns a NumPy function into a tensorcore op named ``name``.

    The decorated function takes NumPy arrays (positional) and attributes (keywords) and
    returns an array (or a tuple of ``n_outputs`` arrays). ``grad(ctx, *output_grads)``
    returns one gradient per input, written with tensorcore ops; ``ctx.inputs``,
    ``ctx.outputs``, ``ctx.attrs`` and ``ctx.needs_grad`` describe the call. ``kernels``
    maps backend names (``"opencl"``) to kernels taking that backend's arrays.
    ``composite(*tensors, **attrs)`` computes the op with other tensorcore ops; a device
    with no kernel for the op runs it instead of falling back to ``cpu``.
    """

    def decorate(reference: Callable[..., Any]) -> Callable[..., Any]:
        op = define(Op(name, reference, infer=infer, grad=grad, composite=composite, n_outputs=n_outputs, doc=reference.__doc__))
        for backend, kernel in (kernels or {}).items():
            register_kernel(name, backend, kernel)

        def function(*inputs: Any, **attrs: Any) -> Any:
            return apply(op, inputs, attrs)

        def kernel_for(backend: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
            """Decorator registering a kernel of this op for ``backend``."""
            def register(kernel: Callable[..., Any]) -> Callable[..., Any]:
                register_kernel(name, backend, kernel)
                return kernel
            return register

        function.__name__ = function.__qualname__ = name
        function.__doc__ = reference.__doc__
        function.op = op  # type: ignore[attr-defined]
        function.register_kernel = kernel_for  # type: ignore[attr-defined]
        return function

    return decorate
