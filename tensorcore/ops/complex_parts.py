"""The parts of complex numbers: ``real``, ``imag``, ``conj``, and the helpers that gradients
of complex inputs use.

Gradient convention (PyTorch's and JAX's, for a real loss ``L`` of complex inputs): the
gradient of ``z = x + iy`` is ``dL/dx + i dL/dy``. For a holomorphic ``f`` with output gradient
``g``, the input's gradient is ``g * conj(f'(z))``: the real formulas with the derivative
conjugated (:func:`conj_of`, which is free for real tensors). A real input of a complex
computation gets the real part of its gradient (``autodiff/backprop.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore.ops._define import unary
from tensorcore.tensor import Tensor


def conj_of(x: Any) -> Any:
    """``conj(x)`` for a complex tensor or Python complex; anything real as it is (no op)."""
    if isinstance(x, Tensor):
        return conj(x) if x.dtype.kind == "c" else x
    return x.conjugate() if isinstance(x, complex) else x


def _real_grad(ctx: Any, g: Tensor) -> tuple:
    # L depends on x only: dL/dx = g, dL/dy = 0, so the gradient is g + 0i.
    from tensorcore.ops.logic import astype

    return (astype(g, ctx.inputs[0].dtype),)


def _imag_grad(ctx: Any, g: Tensor) -> tuple:
    # L depends on y only: the gradient is 0 + i g.
    from tensorcore.ops.arithmetic import multiply

    return (multiply(g, 1j),)


def _copy(part: Any) -> Any:
    """A NumPy part that returns a new array, never a view into the complex input (a write
    into ``real(z)`` must not change ``z``)."""
    return lambda x: np.array(part(x))


_real = unary("real", _copy(np.real), _real_grad, complex_grad=True, doc="The real part of each element.")
_imag = unary("imag", _copy(np.imag), _imag_grad, complex_grad=True, doc="The imaginary part of each element.")
_conj = unary("conj", np.conj, lambda ctx, g: (conj(g),), complex_grad=True, doc="The complex conjugate of each element.")


def real(x: Tensor, /) -> Tensor:
    """The real part of each element, in the real dtype of ``x``'s precision (float32 for
    complex64). A real tensor is returned as it is."""
    return _real(x) if _is_complex(x) else x


def imag(x: Tensor, /) -> Tensor:
    """The imaginary part of each element, in the real dtype of ``x``'s precision; zeros of
    ``x``'s dtype for a real tensor."""
    if _is_complex(x):
        return _imag(x)
    from tensorcore.ops.arithmetic import multiply

    return multiply(x, 0)


def conj(x: Tensor, /) -> Tensor:
    """The complex conjugate of each element. A real tensor is returned as it is."""
    return _conj(x) if _is_complex(x) else x


def _is_complex(x: Any) -> bool:
    """Whether ``x`` needs the op: a complex tensor or array; a Python complex or a list, which
    the op turns into a tensor. Real tensors and numbers are their own real part."""
    dt = getattr(x, "dtype", None)
    if dt is not None:
        return np.dtype(dt).kind == "c"
    return not isinstance(x, (bool, int, float))


__all__ = ["real", "imag", "conj"]
