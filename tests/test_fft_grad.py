"""Gradients of ``tc.fft`` against central finite differences, on every device.

The convention is the project's (``docs/array-api.md``): for a real loss ``L``, the gradient
of ``z = x + iy`` is ``dL/dx + i dL/dy``; ``check_complex_grad`` perturbs the real and the
imaginary part of each element apart, in float64/complex128. Each transform is checked for
every ``norm``, along the last axis and another, for lengths smaller than, equal to and larger
than the axis (cropping and zero padding), and for the Hermitian edge cases of the real
transforms (odd and even lengths, one and two points: the bins ``irfft`` reads once or twice).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_complex_grad import check_complex_grad

import tensorcore as tc
from tensorcore.ops.registry import OPS

NORMS = ["backward", "ortho", "forward"]
RNG = np.random.default_rng(3)
REAL = RNG.standard_normal((3, 4))
CPLX = RNG.standard_normal((3, 4)) + 1j * RNG.standard_normal((3, 4))
ONE_D = {"fft": CPLX, "ifft": CPLX, "rfft": REAL, "irfft": CPLX, "hfft": CPLX, "ihfft": REAL}


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", sorted(ONE_D))
def test_one_dimensional(name: str, norm: str, device: str) -> None:
    fn = getattr(tc.fft, name)
    for axis in (0, -1):
        m = ONE_D[name].shape[axis]
        for n in sorted({1, 2, m - 1, m, m + 2, 2 * m - 1, 2 * m - 2}):  # crop, equal, pad; odd and even
            check_complex_grad(lambda x, n=n, axis=axis: fn(x, n=n, axis=axis, norm=norm), [ONE_D[name]], device)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", ["fftn", "ifftn", "rfftn", "irfftn"])
def test_n_dimensional(name: str, norm: str, device: str) -> None:
    fn = getattr(tc.fft, name)
    x = REAL if name == "rfftn" else CPLX
    for s, axes in [(None, None), ((2, 5), (0, 1)), ((4, 3), (1, 0)), ((3, 6), (0, 1)), ((5,), (0,)), ((3, 1), (0, 1)),
                    ((2, 2), (1, 0))]:
        check_complex_grad(lambda a, s=s, axes=axes: fn(a, s=s, axes=axes, norm=norm), [x], device)


@pytest.mark.parametrize("name", ["fftshift", "ifftshift"])
def test_shifts(name: str, device: str) -> None:
    fn = getattr(tc.fft, name)
    odd = RNG.standard_normal((3, 5)) + 1j * RNG.standard_normal((3, 5))
    for axes in (None, 0, (1,), (1, 0)):
        check_complex_grad(lambda a, axes=axes: fn(a, axes=axes), [odd], device)
        check_complex_grad(lambda a, axes=axes: fn(a, axes=axes), [REAL], device)


def test_a_chain_through_real_and_complex_transforms(device: str) -> None:
    """A real signal, filtered in the frequency domain and brought back: real in, real out."""
    kernel = RNG.standard_normal(3) + 1j * RNG.standard_normal(3)

    def filtered(x: tc.Tensor) -> tc.Tensor:
        spectrum = tc.fft.rfft(x, axis=1) * tc.asarray(kernel, device=x.device)
        return tc.fft.irfft(tc.fft.fftshift(spectrum, axes=0), n=4, axis=1, norm="ortho")

    check_complex_grad(filtered, [REAL], device)


def test_the_gradient_of_a_transform_can_be_differentiated(device: str) -> None:
    """The gradients are written with the transform ops, so a second derivative exists: for
    ``L = |rfft(x)|^2 . w``, the Hessian-vector product equals finite differences of the gradient."""
    w = tc.asarray(RNG.standard_normal(3), device=device)

    def grad(x: tc.Tensor) -> tc.Tensor:
        with tc.GradientTape() as tape:
            tape.watch(x)
            spectrum = tc.fft.rfft(x, norm="ortho")
            loss = tc.sum(tc.real(spectrum * tc.conj(spectrum)) * w)
        return tape.gradient(loss, x)

    check_complex_grad(grad, [REAL[0]], device)


def test_every_fft_op_claims_complex_gradients_and_is_checked_here() -> None:
    ops = {name for name in OPS if name.startswith("fft.")}
    assert ops == {"fft.fftn", "fft.ifftn", "fft.rfftn", "fft.irfftn"}
    assert all(OPS[name].complex_grad for name in ops)
