"""Gradients of complex inputs, against central finite differences in complex128, on every device.

The convention is PyTorch's and JAX's for a real loss ``L``: the gradient of ``z = x + iy`` is
``dL/dx + i dL/dy``, so a step of ``-lr * grad`` descends. Finite differences perturb the real
and the imaginary part of each element apart. A real input of a complex computation gets the
real part; an op whose gradient is not written for complex inputs refuses them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import tensorcore as tc
from tensorcore.ops.registry import OPS


def _z(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """complex128 values off both axes: away from the branch cuts of log, sqrt, acosh, ..."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.2, 0.9, shape) + 1j * rng.uniform(0.2, 0.9, shape)


def _weights(out: tc.Tensor, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(out.shape)
    return w + 1j * rng.standard_normal(out.shape) if out.dtype.kind == "c" else w


def _loss(out: tc.Tensor, w: np.ndarray) -> tc.Tensor:
    """A real number reading every element of ``out`` (both parts of a complex one)."""
    if out.dtype.kind == "c":
        return tc.sum(tc.real(out * tc.asarray(np.conj(w), device=out.device)))
    return tc.sum(out * tc.asarray(w, device=out.device))


def check_complex_grad(fn: Callable[..., tc.Tensor], arrays: list[np.ndarray], device: str,
                       eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-7) -> None:
    """The tape's gradient of ``_loss(fn(*arrays))`` for each input equals finite differences."""
    inputs = [tc.asarray(a, device=device) for a in arrays]
    w = _weights(fn(*inputs))
    with tc.GradientTape() as tape:
        tape.watch(inputs)
        loss = _loss(fn(*inputs), w)
    grads = tape.gradient(loss, inputs, unconnected_gradients="zero")

    def value(k: int, a: np.ndarray) -> float:
        args = [tc.asarray(a if j == k else b, device=device) for j, b in enumerate(arrays)]
        return float(_loss(fn(*args), w))

    for k, (a, g) in enumerate(zip(arrays, grads)):
        assert g.dtype == inputs[k].dtype and str(g.device) == str(tc.Device(device)), (g.dtype, g.device)
        numeric = np.zeros_like(a)
        steps = (1, 1j) if a.dtype.kind == "c" else (1,)
        for idx in np.ndindex(a.shape):
            for step in steps:  # d/dx and d/dy apart: dL/dx + i dL/dy
                plus, minus = a.copy(), a.copy()
                plus[idx] += eps * step
                minus[idx] -= eps * step
                numeric[idx] += step * (value(k, plus) - value(k, minus)) / (2 * eps)
        np.testing.assert_allclose(g.numpy(), numeric, rtol=rtol, atol=atol, err_msg=f"gradient of input {k}")


Z = _z((2, 3), 0)
Z2 = _z((2, 3), 1)
UNARY = ["negative", "positive", "conj", "real", "imag", "abs", "exp", "expm1", "log", "log1p", "log2", "log10",
         "sqrt", "square", "sin", "cos", "tan", "sinh", "cosh", "tanh", "asin", "acos", "atan", "asinh", "acosh",
         "atanh", "reciprocal", "round"]


@pytest.mark.parametrize("name", UNARY)
def test_unary(name: str, device: str) -> None:
    check_complex_grad(getattr(tc, name), [Z], device)


def test_acosh_left_of_the_imaginary_axis(device: str) -> None:
    # acosh' is 1 / (sqrt(z - 1) sqrt(z + 1)); 1 / sqrt(z**2 - 1) has the wrong sign where Re z < 0
    check_complex_grad(tc.acosh, [-Z], device)


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "divide", "pow"])
def test_binary(name: str, device: str) -> None:
    fn = getattr(tc, name)
    check_complex_grad(fn, [Z, Z2[0]], device)  # broadcast: the second input's gradient is summed
    check_complex_grad(lambda a: fn(a, 0.5 - 1.5j), [Z], device)  # a Python complex operand
    check_complex_grad(lambda a: fn(1.5 + 0.5j, a), [Z], device)


def test_real_inputs_of_a_complex_computation_get_real_gradients(device: str) -> None:
    x = np.array([0.3, -1.2, 2.0])
    check_complex_grad(lambda r, z: tc.exp(r * z) / (r + 2.0), [x, Z[0]], device)
    check_complex_grad(lambda r: tc.astype(r, tc.complex128) ** 2, [x], device)
    check_complex_grad(lambda r, z: tc.pow(r + 1.0, z), [x, Z[0]], device)  # d/dz of a real base's power


def test_reductions(device: str) -> None:
    check_complex_grad(lambda z: tc.sum(z, axis=0), [Z], device)
    check_complex_grad(lambda z: tc.mean(z, axis=1, keepdims=True), [Z], device)
    check_complex_grad(lambda z: tc.prod(z, axis=1), [Z], device)
    zero = Z.copy()
    zero[0, 1] = 0  # the product of the others, with one zero in the row
    check_complex_grad(lambda z: tc.prod(z, axis=1), [zero], device)


def test_products(device: str) -> None:
    a, b, v = _z((2, 3), 2), _z((3, 4), 3), _z((3,), 4)
    check_complex_grad(tc.matmul, [a, b], device)
    check_complex_grad(tc.matmul, [v, b], device)
    check_complex_grad(lambda x, y: tc.tensordot(x, y, axes=1), [a, b], device)
    check_complex_grad(tc.vecdot, [a, v], device)
    check_complex_grad(lambda x: tc.linalg.vector_norm(x), [a], device)


def test_movement_and_selection(device: str) -> None:
    check_complex_grad(lambda z: tc.reshape(z, (3, 2)) * 2j, [Z], device)
    check_complex_grad(lambda z: tc.permute_dims(z, (1, 0)), [Z], device)
    check_complex_grad(lambda z: tc.broadcast_to(z[:1], (4, 3)), [Z], device)
    check_complex_grad(lambda z, w: tc.concat([z, w], axis=0), [Z, Z2], device)
    check_complex_grad(lambda z: tc.flip(z, axis=1), [Z], device)
    check_complex_grad(lambda z: tc.roll(z, 1, axis=1), [Z], device)
    check_complex_grad(lambda z: z[1, ::2], [Z], device)
    mask = np.array([[True, False, True], [False, True, True]])
    check_complex_grad(lambda z, w: tc.where(tc.asarray(mask, device=z.device), z, w), [Z, Z2], device)
    check_complex_grad(lambda z: tc.astype(z, tc.complex128) * 1j, [Z], device)


def test_moving_between_devices(device: str) -> None:
    check_complex_grad(lambda z: tc.exp(z.to_device("cpu")).to_device(device), [Z], device)


def test_every_op_that_claims_complex_gradients_is_checked_here() -> None:
    checked = set(UNARY) | {"add", "subtract", "multiply", "divide", "pow", "astype", "sum", "mean", "prod",
                            "matmul", "reshape", "permute_dims", "broadcast_to", "concat", "flip", "roll",
                            "getitem", "where", "transfer"}
    checked |= {"fft.fftn", "fft.ifftn", "fft.rfftn", "fft.irfftn"}  # in tests/test_fft_grad.py
    checked |= {f"linalg.{name}" for name in ("inv", "solve", "det", "slogdet", "cholesky", "qr", "eigh", "eigvalsh",
                                              "svd", "svdvals")}  # in tests/test_linalg_complex_grad.py
    claimed = {name for name, op in OPS.items() if op.complex_grad}
    assert claimed <= checked, f"ops with complex gradients and no check: {sorted(claimed - checked)}"


@pytest.mark.parametrize("fn", [lambda z: tc.sum(tc.real(tc.sign(z))), lambda z: tc.sum(tc.real(tc.cumulative_prod(z, axis=1)))],
                         ids=["sign", "cumulative_prod"])
def test_ops_without_complex_gradients_refuse_rather_than_guess(fn: Callable, device: str) -> None:
    z = tc.asarray(Z, device=device)
    with tc.GradientTape() as tape:
        tape.watch(z)
        loss = fn(z)
    with pytest.raises(tc.GradientError, match="is not implemented for complex inputs yet"):
        tape.gradient(loss, z)


def test_a_complex_target_needs_output_gradients(device: str) -> None:
    z = tc.asarray(Z, device=device)
    with tc.GradientTape() as tape:
        tape.watch(z)
        out = tc.sum(tc.exp(z))
    with pytest.raises(tc.GradientError, match="the gradient target 0 is complex"):
        tape.gradient(out, z)
    with tc.GradientTape() as tape:
        tape.watch(z)
        out = tc.exp(z)
    seed = tc.asarray(np.full(Z.shape, 1 - 1j), device=device)
    np.testing.assert_allclose(tape.gradient(out, z, output_gradients=seed).numpy(), (1 - 1j) * np.conj(np.exp(Z)))
