"""Test helpers: compare an op with its NumPy reference, and its gradient with finite differences."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import tensorcore as tc


def to_numpy(x: Any) -> Any:
    """Tensors (and tuples of them) as NumPy arrays."""
    if isinstance(x, (tuple, list)):
        return [to_numpy(v) for v in x]  # namedtuple results become plain lists
    return np.asarray(x.numpy()) if isinstance(x, tc.Tensor) else x


def assert_matches(actual: Any, expected: Any, rtol: float = 1e-5, atol: float = 1e-6, dtype: bool = True) -> None:
    """``actual`` (tensors) equals ``expected`` (NumPy) in values, shape and (optionally) dtype."""
    actual = to_numpy(actual)
    if isinstance(expected, (tuple, list)):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_matches(a, e, rtol, atol, dtype)
        return
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != expected {expected.shape}"
    if dtype:
        assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != expected {expected.dtype}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)


def check_op(fn: Callable, reference: Callable, arrays: Sequence[np.ndarray], device: str, rtol: float = 1e-5, atol: float = 1e-6, **kwargs: Any) -> None:
    """Run ``fn`` on ``arrays`` placed on ``device``; compare with ``reference`` on NumPy."""
    inputs = [tc.asarray(a, device=device) for a in arrays]
    out = fn(*inputs, **kwargs)
    for o in out if isinstance(out, (tuple, list)) else (out,):
        if isinstance(o, tc.Tensor):
            assert str(o.device) == str(tc.Device(device)), f"result on {o.device}, expected {device}"
    assert_matches(out, reference(*arrays, **kwargs), rtol, atol)


def check_grad(fn: Callable, arrays: Sequence[np.ndarray], device: str, eps: float = 1e-6, rtol: float = 1e-4, atol: float = 1e-6, wrt: Sequence[int] | None = None, seed: int = 0) -> None:
    """Compare ``GradientTape`` gradients of ``fn`` with central finite differences in float64.

    The outputs are reduced to a scalar with fixed random weights, so every output element
    is checked. ``wrt`` selects the inputs to differentiate (all floating inputs by default).
    """
    arrays = [np.asarray(a) for a in arrays]
    wrt = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"] if wrt is None else list(wrt)
    for i in wrt:
        assert arrays[i].dtype == np.float64, "gradient checks run in float64"
    rng = np.random.default_rng(seed)
    weights: list[np.ndarray] = []

    def scalar(outs: Any) -> Any:
        outs = outs if isinstance(outs, (tuple, list)) else (outs,)
        total = None
        for k, o in enumerate(outs):
            if o.dtype.kind != "f":
                continue
            while len(weights) <= k:
                weights.append(rng.standard_normal(outs[len(weights)].shape))
            term = tc.sum(o * tc.asarray(weights[k], device=o.device))
            total = term if total is None else total + term
        return total

    inputs = [tc.asarray(a, device=device) for a in arrays]
    with tc.GradientTape() as tape:
        for i in wrt:
            tape.watch(inputs[i])
        target = scalar(fn(*inputs))
    grads = tape.gradient(target, [inputs[i] for i in wrt], unconnected_gradients="zero")

    def value(perturbed: list[np.ndarray]) -> float:
        return float(to_numpy(scalar(fn(*[tc.asarray(a, device=device) for a in perturbed]))))

    for i, g in zip(wrt, grads):
        assert str(g.device) == str(tc.Device(device)), f"gradient on {g.device}, expected {device}"
        numeric = np.zeros_like(arrays[i])
        for idx in np.ndindex(arrays[i].shape):
            plus = [a.copy() for a in arrays]
            minus = [a.copy() for a in arrays]
            plus[i][idx] += eps
            minus[i][idx] -= eps
            numeric[idx] = (value(plus) - value(minus)) / (2 * eps)
        np.testing.assert_allclose(to_numpy(g), numeric, rtol=rtol, atol=atol, err_msg=f"gradient of input {i}")
