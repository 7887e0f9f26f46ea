"""The op table: every op is defined once, as an :class:`Op`, and backends attach kernels to it.

An op carries its NumPy reference implementation (which *is* the ``cpu`` kernel), its shape
and dtype rule, its gradient, and optionally a composite implementation in terms of other
ops, used on a backend that has no kernel of its own for it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from tensorcore.device import Device


class Spec(NamedTuple):
    """The static description of a tensor: what shape and dtype rules consume and return."""

    shape: tuple[int | None, ...] | None  # None where the shape depends on the data
    dtype: np.dtype


class Op:
    """One operation: signature, rules, gradient, and the kernels registered for it.

    - ``reference(*arrays, **attrs)``: NumPy implementation; the ``cpu`` kernel.
    - ``infer(*specs, **attrs)``: output :class:`Spec` (or tuple); raises ``OpError`` naming
      the op, the shapes or dtypes given and what was expected. Dispatch calls it only
      when a kernel fails (to explain why) and the graph layer calls it to trace.
      In-place ops (which return nothing) have none.
    - ``grad(ctx, *output_grads)``: input gradients (None where there is none), written
      with tensorcore ops so it runs on any device and is itself differentiable.
    - ``composite(*inputs, **attrs)``: the op in terms of other ops, run on a backend
      without a kernel for it before falling back to ``cpu``.
    - ``float_only``: inputs must be floating point, real or complex (checked before any
      kernel runs).
    - ``real_only``: inputs must not be complex (checked before any kernel runs); a complex
      input raises ``dtypes.ComplexInputError``.
    - ``complex_grad``: ``grad`` is right for complex inputs too (the convention of
      ``docs/array-api.md``: ``dL/dRe + i dL/dIm``), checked against finite differences in
      ``tests/test_complex_grad.py``. Backprop refuses complex inputs of any other op.
    - ``mutates``: for an in-place op, the indices of the inputs (after the target) that its
      kernel writes too, e.g. an optimizer's state.
    - ``stateful``: each call may give a different result (random sampling), so a graph never
      folds it into a constant or merges two calls.

    ``kernels`` maps each :class:`Device` to its kernel, already bound to that device by
    its backend (so a kernel needs no lookup of its queue or context when it runs).
    """

    __slots__ = (
        "name", "reference", "infer", "grad", "composite", "float_only", "real_only", "checks_dtypes",
        "complex_grad", "n_outputs", "kernels", "doc", "mutates", "stateful",
    )

    def __init__(
        self,
        name: str,
        reference: Callable[..., Any],
        *,
        infer: Callable[..., Any] | None = None,
        grad: Callable[..., Any] | None = None,
        composite: Callable[..., Any] | None = None,
        float_only: bool = False,
        real_only: bool = False,
        complex_grad: bool = False,
        n_outputs: int = 1,
        doc: str | None = None,
        mutates: tuple[int, ...] = (),
        stateful: bool = False,
    ) -> None:
        self.name = name
        self.reference = reference
        self.infer = infer
        self.grad = grad
        self.composite = composite
        self.float_only = float_only
        self.real_only = real_only
        self.checks_dtypes = float_only or real_only  # one flag for dispatch's hot path to test
        self.complex_grad = complex_grad
        self.n_outputs = n_outputs
        self.kernels: dict[Device, Callable[..., Any]] = {CPU: reference}
        self.doc = doc
        self.mutates = mutates
        self.stateful = stateful

    def backends(self) -> list[str]:
        """Names of the backends with a kernel for this op."""
        return sorted({d.type for d in self.kernels})

    def __repr__(self) -> str:
        return f"Op({self.name!r}, backends={self.backends()})"


CPU = Device("cpu")
OPS: dict[str, Op] = {}
# Unbound kernels by backend name and op name: the source of truth, kept so that kernels
# registered before their op or their backend exists are bound once both do.
_registered: dict[str, dict[str, Callable[..., Any]]] = {}
# Loaded backends: name -> (its devices, its bind function).
_installed: dict[str, tuple[list[Device], Callable[[Callable[..., Any], int], Callable[..., Any]]]] = {}


def _bind(op: Op, backend: str, kernel: Callable[..., Any]) -> None:
    devices, bind = _installed[backend]
    for dev in devices:
        op.kernels[dev] = bind(kernel, dev.index)


def define(op: Op) -> Op:
    """Add ``op`` to the op table; an op name is defined once."""
    if op.name in OPS:
        raise ValueError(f"op {op.name!r} is already defined")
    OPS[op.name] = op
    for backend, kernels in _registered.items():
        if op.name in kernels and backend in _installed:
            _bind(op, backend, kernels[op.name])
    return op


def register_kernel(op_name: str, backend: str, kernel: Callable[..., Any]) -> None:
    """Attach ``kernel`` as backend ``backend``'s implementation of op ``op_name``."""
    _registered.setdefault(backend, {})[op_name] = kernel
    op = OPS.get(op_name)
    if op is not None and backend in _installed:
        _bind(op, backend, kernel)


def install_backend(backend: str, devices: list[Device], bind: Callable[..., Any], kernels: Mapping[str, Callable[..., Any]]) -> None:
    """Attach a loaded backend's kernel table to the ops, bound to each of its devices."""
    unknown = [name for name in kernels if name not in OPS]
    if unknown:
        warnings.warn(
            f"backend {backend!r} registers kernels for ops tensorcore does not define: "
            f"{', '.join(sorted(unknown))}; they are kept until such ops are defined",
            stacklevel=2,
        )
    _installed[backend] = (list(devices), bind)
    table = _registered.setdefault(backend, {})
    for name, kernel in kernels.items():
        table.setdefault(name, kernel)  # a kernel registered explicitly wins over the table's
    for name, kernel in table.items():
        if name in OPS:
            _bind(OPS[name], backend, kernel)


def native_ops(backend: str) -> list[str]:
    """Names of the ops that have a kernel of their own on ``backend``."""
    if backend == "cpu":
        return sorted(OPS)
    return sorted(name for name in _registered.get(backend, {}) if name in OPS)
