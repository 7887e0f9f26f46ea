"""tensorcore.nn.functional: activations, linear, embedding, losses and dropout on every device.

Forward results are compared with NumPy references written here, gradients with float64
central finite differences (tiny shapes), second-order gradients with finite differences
of the first derivative, and bad inputs with the errors they must raise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

import tensorcore as tc
import tensorcore.nn.functional as F  # noqa: N812 - PyTorch's conventional alias

from support import assert_matches, check_grad, check_op

rng = np.random.default_rng(7)


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _gelu(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    erf = np.vectorize(math.erf)
    return (0.5 * x * (1 + erf(x / math.sqrt(2)))).astype(x.dtype)


ACTIVATIONS = {
    "relu": (F.relu, lambda x: np.maximum(x, 0)),
    "sigmoid": (F.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    "tanh": (F.tanh, np.tanh),
    "gelu": (F.gelu, _gelu),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda x: _gelu(x, "tanh")),
    "softmax": (F.softmax, _softmax),
    "log_softmax": (F.log_softmax, _log_softmax),
    "softmax_axis0": (lambda x: F.softmax(x, axis=0), lambda x: _softmax(x, 0)),
    "log_softmax_axis0": (lambda x: F.log_softmax(x, axis=0), lambda x: _log_softmax(x, 0)),
}


def _away_from_zero(shape: tuple[int, ...]) -> np.ndarray:
    """Normal samples nudged off 0, where relu has no derivative."""
    x = rng.standard_normal(shape)
    return x + np.where(x >= 0, 0.1, -0.1)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_forward(name: str, dtype: type, device: str) -> None:
    fn, ref = ACTIVATIONS[name]
    x = (rng.standard_normal((4, 6)) * 3).astype(dtype)
    check_op(fn, lambda a: ref(a).astype(dtype), [x], device, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_gradient(name: str, device: str) -> None:
    fn, _ = ACTIVATIONS[name]
    check_grad(fn, [_away_from_zero((3, 4))], device)


def _first_derivative(fn: Callable) -> Callable:
    """``x -> d/dx sum(fn(x)**2 * r)`` computed with an inner tape (so an outer tape sees it)."""
    r = rng.standard_normal((3, 4))

    def grad(x: tc.Tensor) -> tc.Tensor:
        with tc.GradientTape() as inner:
            inner.watch(x)
            y = fn(x)
            total = tc.sum(y * y * tc.asarray(r, device=x.device))
        return inner.gradient(total, x)

    return grad


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "softmax", "log_softmax", "softmax_axis0"])
def test_activation_second_order_gradient(name: str, device: str) -> None:
    fn, _ = ACTIVATIONS[name]
    check_grad(_first_derivative(fn), [_away_from_zero((3, 4))], device, rtol=1e-4, atol=1e-6)


def test_softmax_is_stable_for_huge_logits(device: str) -> None:
    x = np.array([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4]], dtype=np.float32)
    t = tc.asarray(x, device=device)
    assert_matches(F.softmax(t), _softmax(x.astype(np.float64)).astype(np.float32))
    assert_matches(F.log_softmax(t), _log_softmax(x.astype(np.float64)).astype(np.float32), rtol=1e-6)
    big = tc.asarray(np.array([-800.0, 0.0, 800.0]), device=device)
    assert_matches(F.sigmoid(big), np.array([0.0, 0.5, 1.0]), atol=1e-300)


def test_relu_keeps_integer_dtype_and_relu_reuses_output_for_gradient(device: str) -> None:
    ints = tc.asarray(np.array([-2, 0, 3], dtype=np.int32), device=device)
    assert_matches(F.relu(ints), np.array([0, 0, 3], dtype=np.int32))
    x = tc.asarray(np.array([-1.0, 2.0, -3.0, 4.0], dtype=np.float32), device=device)
    with tc.GradientTape() as tape:
        tape.watch(x)
        y = F.relu(x)
    assert_matches(tape.gradient(y, x), np.array([0, 1, 0, 1], dtype=np.float32))


# --- linear and embedding -----------------------------------------------------------


@pytest.mark.parametrize("x_shape", [(5, 3), (2, 4, 3), (3,)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_forward_and_gradient(x_shape: tuple, with_bias: bool, device: str) -> None:
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal((4, 3)), rng.standard_normal(4)
    arrays = [x, w, b] if with_bias else [x, w]

    def ref(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        return x @ w.T + (0 if b is None else b)

    check_op(F.linear, ref, [a.astype(np.float32) for a in arrays], device)
    check_grad(F.linear, arrays, device)


def test_linear_second_order_gradient(device: str) -> None:
    r = rng.standard_normal((3, 2))

    def grads(x: tc.Tensor, w: tc.Tensor, b: tc.Tensor) -> tuple:
        with tc.GradientTape() as inner:
            inner.watch([x, w, b])
            y = F.linear(x, w, b)
            total = tc.sum(y * y * y * tc.asarray(r, device=x.device))
        return tuple(inner.gradient(total, [x, w, b]))

    check_grad(grads, [rng.standard_normal((3, 4)), rng.standard_normal((2, 4)), rng.standard_normal(2)], device)


def test_linear_skips_the_gradient_of_an_input_that_needs_none(device: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import tensorcore.ops.dense as dense

    calls = []
    monkeypatch.setattr(dense, "matmul", lambda *a: calls.append(a) or tc.matmul(*a))
    x = tc.asarray(rng.standard_normal((8, 3)).astype(np.float32), device=device)
    w = tc.Variable(rng.standard_normal((2, 3)).astype(np.float32), device=device)
    with tc.GradientTape() as tape:
        loss = tc.sum(F.linear(x, w))
    (gw,) = tape.gradient(loss, [w])
    assert_matches(gw, np.tile(x.numpy().sum(0), (2, 1)), rtol=1e-5, atol=1e-5)
    assert not calls, "the input's gradient (g @ w) was computed although x needs none"


def test_embedding_forward_and_gradient_accumulates_repeats(device: str) -> None:
    weight = rng.standard_normal((5, 3))
    idx = np.array([[0, 2, 2], [4, 0, 2]])
    check_op(F.embedding, lambda i, w: w[i], [idx, weight], device)
    check_grad(F.embedding, [idx, weight], device, wrt=[1])
    w = tc.asarray(weight, device=device)
    with tc.GradientTape() as tape:
        tape.watch(w)
        out = F.embedding(tc.asarray(idx, device=device), w)
    g = tape.gradient(out, w).numpy()
    np.testing.assert_array_equal(g[:, 0], [2, 0, 3, 0, 1])


def test_embedding_second_order_gradient(device: str) -> None:
    idx = tc.asarray(np.array([1, 1, 0]), device=device)
    r = rng.standard_normal((3, 2))

    def grad(w: tc.Tensor) -> tc.Tensor:
        with tc.GradientTape() as inner:
            inner.watch(w)
            e = F.embedding(idx, w)
            total = tc.sum(e * e * tc.asarray(r, device=w.device))
        return inner.gradient(total, w)

    check_grad(grad, [rng.standard_normal((3, 2))], device)


# --- losses -------------------------------------------------------------------------


def _cross_entropy(logits: np.ndarray, labels: np.ndarray, reduction: str = "mean") -> np.ndarray:
    losses = -_log_softmax(logits.astype(np.float64))[np.arange(len(labels)), labels]
    out = {"mean": losses.mean(), "sum": losses.sum(), "none": losses}[reduction]
    return np.asarray(out, dtype=logits.dtype)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_forward_and_gradient(reduction: str, device: str) -> None:
    logits, labels = rng.standard_normal((5, 4)), np.array([0, 3, 1, 3, 2])
    check_op(lambda x, y: F.cross_entropy(x, y, reduction=reduction), lambda x, y: _cross_entropy(x, y, reduction),
             [logits.astype(np.float32), labels], device)
    check_grad(lambda x, y: F.cross_entropy(x, y, reduction=reduction), [logits, labels.astype(np.int32)], device, wrt=[0])


def test_cross_entropy_gradient_is_softmax_minus_onehot_over_n(device: str) -> None:
    logits = rng.standard_normal((4, 3)).astype(np.float32)
    labels = np.array([2, 0, 1, 1])
    x = tc.asarray(logits, device=device)
    with tc.GradientTape() as tape:
        tape.watch(x)
        loss = F.cross_entropy(x, tc.asarray(labels, device=device))
    expected = (_softmax(logits) - np.eye(3, dtype=np.float32)[labels]) / 4
    assert_matches(tape.gradient(loss, x), expected)


def test_cross_entropy_is_stable_for_huge_logits(device: str) -> None:
    logits = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0]], dtype=np.float32)
    out = F.cross_entropy(tc.asarray(logits, device=device), tc.asarray(np.array([0, 0]), device=device), reduction="none")
    assert_matches(out, np.array([0.0, 2e4], dtype=np.float32))


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_cross_entropy_second_order_gradient(reduction: str, device: str) -> None:
    labels = tc.asarray(np.array([1, 0, 2]), device=device)

    def grad(x: tc.Tensor) -> tc.Tensor:
        with tc.GradientTape() as inner:
            inner.watch(x)
            loss = F.cross_entropy(x * x, labels, reduction=reduction)
            total = tc.sum(loss * tc.sum(x, axis=1)) if reduction == "none" else loss * tc.sum(x)
        return inner.gradient(total, x)

    check_grad(grad, [rng.standard_normal((3, 3))], device)


def test_cross_entropy_bad_inputs_say_what_is_wrong(device: str) -> None:
    logits = tc.asarray(rng.standard_normal((3, 4)).astype(np.float32), device=device)
    # The cpu checks labels at the call and names the label; a device checks them in its kernel
    # and reports at the next read (an asynchronous device error), as CUDA does.
    with pytest.raises(tc.OpError, match=r"cross_entropy: (label 4|a label) is out of range for 4 classes"):
        F.cross_entropy(logits, tc.asarray(np.array([0, 4, 1]), device=device)).numpy()
    with pytest.raises(tc.OpError, match=r"cross_entropy: (label -1|a label) is out of range"):
        F.cross_entropy(logits, tc.asarray(np.array([0, -1, 1]), device=device)).numpy()
    np.testing.assert_allclose(F.cross_entropy(logits, tc.asarray(np.array([0, 1, 1]), device=device)).numpy(),
                               F.cross_entropy(logits.to_device("cpu"), tc.asarray(np.array([0, 1, 1]))).numpy(), rtol=1e-5)
    with pytest.raises(tc.OpError, match=r"cross_entropy: labels must be integer class indices, got dtype float32"):
        F.cross_entropy(logits, tc.asarray(np.array([0.0, 1.0, 1.0], dtype=np.float32), device=device))
    with pytest.raises(tc.OpError, match=r"cross_entropy: labels must have shape \(3,\).*got \(2,\)"):
        F.cross_entropy(logits, tc.asarray(np.array([0, 1]), device=device))
    with pytest.raises(tc.OpError, match=r"cross_entropy: logits must be 2-D \(N, C\), got shape \(4,\)"):
        F.cross_entropy(logits[0], tc.asarray(np.array([0]), device=device))
    with pytest.raises(tc.OpError, match=r"cross_entropy: reduction must be"):
        F.cross_entropy(logits, tc.asarray(np.array([0, 1, 1]), device=device), reduction="avg")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(reduction: str, device: str) -> None:
    pred, target = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))

    def ref(p: np.ndarray, t: np.ndarray) -> np.ndarray:
        sq = (p - t) ** 2
        return {"mean": sq.mean(), "sum": sq.sum(), "none": sq}[reduction]

    check_op(lambda p, t: F.mse_loss(p, t, reduction=reduction), ref, [pred, target], device, rtol=1e-12)
    check_grad(lambda p, t: F.mse_loss(p, t, reduction=reduction), [pred, target], device)
    with pytest.raises(tc.OpError, match=r"mse_loss: pred has shape \(3, 2\) but target has shape \(2,\)"):
        F.mse_loss(tc.asarray(pred, device=device), tc.asarray(target[0], device=device))


# --- dropout and bad inputs ---------------------------------------------------------


def test_dropout_scales_kept_elements_and_masks_the_gradient(device: str) -> None:
    tc.random.seed(3)
    x = tc.asarray(rng.uniform(1.0, 2.0, (50, 40)).astype(np.float32), device=device)
    with tc.GradientTape() as tape:
        tape.watch(x)
        y = F.dropout(x, p=0.25)
    out, xs = y.numpy(), x.numpy()
    kept = out != 0
    assert 0.7 < kept.mean() < 0.8
    np.testing.assert_allclose(out[kept], xs[kept] / 0.75, rtol=1e-6)
    g = tape.gradient(y, x).numpy()
    np.testing.assert_allclose(g, kept / np.float32(0.75), rtol=1e-6)
    assert F.dropout(x, p=0.5, training=False) is x
    assert F.dropout(x, p=0.0) is x
    tc.random.seed(3)
    assert_matches(F.dropout(x, p=0.25), out)  # same seed, same mask


def test_bad_inputs_raise_op_errors_naming_the_problem(device: str) -> None:
    ints = tc.asarray(np.arange(6).reshape(2, 3), device=device)
    with pytest.raises(tc.OpError, match=r"softmax: input 0 has dtype int64.*floating-point"):
        F.softmax(ints)
    with pytest.raises(tc.OpError, match=r"log_softmax: axis 2 is out of range for a 2-D tensor"):
        F.log_softmax(ints.astype(tc.float32), axis=2)
    x = tc.asarray(rng.standard_normal((2, 3)).astype(np.float32), device=device)
    with pytest.raises(tc.OpError, match=r"linear: input of shape \(2, 3\) has 3 features but weight \(4, 5\) expects in_features=5"):
        F.linear(x, tc.zeros((4, 5), device=device))
    with pytest.raises(tc.OpError, match=r"linear: bias must have shape \(4,\)"):
        F.linear(x, tc.zeros((4, 3), device=device), tc.zeros((3,), device=device))
    with pytest.raises(tc.OpError, match=r"linear: weight must be 2-D"):
        F.linear(x, tc.zeros((3,), device=device))
    for p in (1.0, -0.1, 1.5):
        with pytest.raises(tc.OpError, match=r"dropout: p must be a probability in \[0, 1\)"):
            F.dropout(x, p=p)
    with pytest.raises(tc.OpError, match=r"gelu: approximate must be 'none' or 'tanh'"):
        F.gelu(x, approximate="erf")
    with pytest.raises(tc.OpError, match=r"embedding: (index 5|an index) is out of range for a weight with 5 rows"):
        F.embedding(tc.asarray(np.array([0, 5]), device=device), tc.zeros((5, 2), device=device)).numpy()
    with pytest.raises(tc.OpError, match=r"embedding: indices must be an integer tensor, got float32"):
        F.embedding(x, tc.zeros((5, 2), device=device))
