"""Reverse accumulation over a tape's entries.

Complex numbers (``docs/array-api.md``): a source ``z = x + iy`` gets ``dL/dx + i dL/dy`` for a
real target ``L``; a real tensor inside a complex computation gets the real part of what flows
back to it; ops whose gradient is not written for complex inputs (``Op.complex_grad``) refuse
them rather than return a wrong gradient.
"""

from __future__ import annotations

from typing import Any

from tensorcore.errors import GradientError
from tensorcore.tensor import Tensor


def backprop(entries: list, targets: list, seeds: list | None, sources: list, zero_unconnected: bool) -> list:
    """Walk ``entries`` backwards from ``targets``; return the gradient of each source."""
    from tensorcore.ops import creation, elementwise

    grads: dict[int, Any] = {}
    for i, t in enumerate(targets):
        if seeds is None and t.dtype.kind == "c":
            raise GradientError(
                f"the gradient target {i} is complex ({t.dtype}{list(t.shape)}); differentiate a real "
                "value of it (tc.real, tc.abs, a squared norm), or pass output_gradients"
            )
        seed = creation.ones_like(t) if seeds is None else seeds[i]
        _accumulate(grads, t, seed, elementwise.add)
    wanted = {id(s) for s in sources}
    for entry in reversed(entries):
        out_grads = [grads.get(id(o)) for o in entry.outputs]
        if all(g is None for g in out_grads):
            continue
        _check_versions(entry)
        if not getattr(entry.op, "complex_grad", True) and _complex_entry(entry):
            raise GradientError(
                f"the gradient of {entry.op.name!r} is not implemented for complex inputs yet (inputs: "
                f"{', '.join(_dtype_name(x) for x in entry.inputs)}); docs/array-api.md lists the ops that have one"
            )
        out_grads = [
            creation.zeros_like(o) if g is None else g for o, g in zip(entry.outputs, out_grads)
        ]
        in_grads = entry.op.grad(entry, *out_grads)
        if len(in_grads) != len(entry.inputs):
            raise GradientError(
                f"the gradient of {entry.op.name!r} returned {len(in_grads)} values for "
                f"{len(entry.inputs)} inputs; it must return one per input (None allowed)"
            )
        for x, g, needed in zip(entry.inputs, in_grads, entry.needs_grad):
            if needed and g is not None:
                _accumulate(grads, x, g, elementwise.add)
        # A source's gradient is final once every entry after it is processed; other
        # intermediate gradients are dropped as soon as their producer has used them.
        for o in entry.outputs:
            if id(o) not in wanted:
                grads.pop(id(o), None)
    result = []
    for s in sources:
        g = grads.get(id(s))
        if g is None and zero_unconnected:
            g = creation.zeros_like(s)
        result.append(g)
    return result


def _accumulate(grads: dict[int, Any], x: Any, g: Any, add: Any) -> None:
    if g.dtype != x.dtype and g.dtype.kind == "c" and x.dtype.kind != "c":
        from tensorcore.ops.complex_parts import real

        g = real(g)  # a real tensor in a complex computation: dL/dx is the real part
    if g.dtype != x.dtype and g.dtype.kind == "f" and x.dtype.kind == "f":
        from tensorcore.ops.logic import astype

        # An op that promoted x (float32 times float64 is float64) sends back a gradient in
        # its own dtype: x's gradient is that, in x's dtype (as JAX gives it).
        g = astype(g, x.dtype)
    if g.shape != x.shape or g.dtype != x.dtype or g.device is not x.device:
        raise GradientError(
            f"a gradient is {g.dtype}{list(g.shape)} on {g.device} but its tensor is "
            f"{x.dtype}{list(x.shape)} on {x.device}; an op's gradient function is wrong"
        )
    prev = grads.get(id(x))
    grads[id(x)] = g if prev is None else add(prev, g)


def _complex_entry(entry: Any) -> bool:
    """Whether a recorded op read or made complex numbers (a tensor or a Python complex)."""
    return any(isinstance(x, complex) or (isinstance(x, Tensor) and x.dtype.kind == "c")
               for x in (*entry.inputs, *entry.outputs))


def _dtype_name(x: Any) -> str:
    return str(x.dtype) if isinstance(x, Tensor) else type(x).__name__


def _check_versions(entry: Any) -> None:
    for i, (x, version) in enumerate(zip(entry.inputs, entry.versions)):
        if isinstance(x, Tensor) and x._version != version:
            what = f"variable {x.name!r}" if hasattr(x, "trainable") else f"a {x.dtype}{list(x.shape)} tensor"
            raise GradientError(
                f"input {i} of {entry.op.name!r} ({what}) was written in place after the op was "
                "recorded, so its gradient would be wrong; compute gradients before assigning to "
                "it, or write into a copy"
            )
