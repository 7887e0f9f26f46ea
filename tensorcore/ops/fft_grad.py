"""Reverse-mode gradients of the Fourier transform ops (:mod:`tensorcore.ops.fft`).

Convention (``docs/array-api.md``): for a real loss ``L``, the gradient of ``z = x + iy`` is
``dL/dx + i dL/dy``. For an op that is linear over the complex numbers, ``y = A z``, that is
``A^H g``; for a real input it is the real part of that. Each op first crops or zero-pads its
input to ``s`` on the transformed axes (``P``), whose adjoint crops or pads back (``_resize``).

- ``fftn`` (norm N): ``y = F P z``, gradient ``P^H ifftn(g, norm=SWAP[N])``, since the adjoint
  of an unscaled DFT is ``n`` times its inverse; ``ifftn`` the same way round.
- ``rfftn``: ``y = R F P x`` with ``R`` keeping bins ``0 .. s[-1] // 2``; gradient
  ``Re P^H ifftn(R^H g, norm=SWAP[N])``, ``R^H`` zero-padding the last axis back to ``s[-1]``.
- ``irfftn``: the last axis reads bin ``k`` of ``0 < k < s[-1] / 2`` twice (``z_k`` and its
  conjugate mirror), and only the real part of bin 0 (and of bin ``s[-1] / 2`` for even
  ``s[-1]``). So the gradient is ``P^H (rfftn(g, norm=SWAP[N]) * w)`` with ``w = 2`` on those
  interior bins and 1 on the others; the edge bins of ``rfftn(g)`` are real, as the discarded
  imaginary parts ask.

``tests/test_fft_grad.py`` checks each against central finite differences.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore.ops import fft as _fft
from tensorcore.tensor import Tensor


def _resize(t: Tensor, axes: tuple[int, ...], sizes: tuple[int, ...]) -> Tensor:
    """``t`` cropped or zero-padded at the end of each of ``axes`` to ``sizes``."""
    from tensorcore.ops.creation import zeros
    from tensorcore.ops.indexing import getitem
    from tensorcore.ops.manipulation import concat

    for a, size in zip(axes, sizes):
        have = t.shape[a]
        if have > size:
            t = getitem(t, (slice(None),) * a + (slice(0, size),))
        elif have < size:
            shape = t.shape[:a] + (size - have,) + t.shape[a + 1:]
            t = concat([t, zeros(shape, dtype=t.dtype, device=t.device)], axis=a)
    return t


def _as_output(ctx: Any, g: Tensor) -> Tensor:
    """``g`` in the output's dtype (a user's ``output_gradients`` may be of another)."""
    from tensorcore.ops.logic import astype

    dtype = ctx.outputs[0].dtype
    return g if g.dtype == dtype else astype(g, dtype)


def _input_sizes(ctx: Any) -> tuple[int, ...]:
    return tuple(ctx.inputs[0].shape[a] for a in ctx.attrs["axes"])


def _c2c_grad(ctx: Any, g: Tensor, adjoint: Any) -> tuple:
    s, axes, norm = ctx.attrs["s"], ctx.attrs["axes"], ctx.attrs["norm"]
    out = _fft.transform(adjoint, _as_output(ctx, g), s, axes, _fft.SWAP[norm])
    return (_resize(out, axes, _input_sizes(ctx)),)


def fftn_grad(ctx: Any, g: Tensor) -> tuple:
    """``P^H ifftn(g, norm=SWAP[norm])``."""
    return _c2c_grad(ctx, g, _fft.IFFTN)


def ifftn_grad(ctx: Any, g: Tensor) -> tuple:
    """``P^H fftn(g, norm=SWAP[norm])``."""
    return _c2c_grad(ctx, g, _fft.FFTN)


def rfftn_grad(ctx: Any, g: Tensor) -> tuple:
    """``Re P^H ifftn(R^H g, norm=SWAP[norm])``, in the input's dtype."""
    from tensorcore.ops.complex_parts import real
    from tensorcore.ops.logic import astype

    x, (s, axes, norm) = ctx.inputs[0], (ctx.attrs["s"], ctx.attrs["axes"], ctx.attrs["norm"])
    full = _resize(_as_output(ctx, g), axes[-1:], s[-1:])  # R^H: the dropped bins get no gradient
    out = real(_resize(_fft.transform(_fft.IFFTN, full, s, axes, _fft.SWAP[norm]), axes, _input_sizes(ctx)))
    return (out if out.dtype == x.dtype else astype(out, x.dtype),)


def irfftn_grad(ctx: Any, g: Tensor) -> tuple:
    """``P^H (rfftn(g, norm=SWAP[norm]) * w)``, ``w`` doubling the bins read twice."""
    from tensorcore.ops.arithmetic import multiply
    from tensorcore.ops.creation import asarray

    s, axes, norm = ctx.attrs["s"], ctx.attrs["axes"], ctx.attrs["norm"]
    g = _as_output(ctx, g)
    half = _fft.transform(_fft.RFFTN, g, s, axes, _fft.SWAP[norm])
    n = s[-1]
    weights = np.full(n // 2 + 1, 2.0, dtype=g.dtype)
    weights[0] = 1.0
    if n % 2 == 0:
        weights[-1] = 1.0  # the Nyquist bin is read once (and n == 2 has no interior bin)
    shape = [1] * half.ndim
    shape[axes[-1]] = n // 2 + 1
    out = multiply(half, asarray(weights.reshape(shape), device=half.device))
    return (_resize(out, axes, _input_sizes(ctx)),)
