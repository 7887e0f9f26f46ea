"""batch_norm and layer_norm on every device: NumPy references, running statistics, gradients."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc
import tensorcore.nn.functional as F  # noqa: N812 - PyTorch's conventional alias

from support import assert_matches, check_grad, check_op

rng = np.random.default_rng(5)


def _bn_ref(x: np.ndarray, mean: np.ndarray, var: np.ndarray, weight: np.ndarray | None = None,
            bias: np.ndarray | None = None, eps: float = 1e-5) -> np.ndarray:
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    out = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def _batch_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    axes = (0,) + tuple(range(2, x.ndim))
    return x.mean(axis=axes), x.var(axis=axes), x.var(axis=axes, ddof=1)


@pytest.mark.parametrize("shape", [(4, 3, 2, 2), (6, 3), (2, 3, 4)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_forward_and_running_update(shape: tuple, affine: bool, device: str) -> None:
    x = rng.standard_normal(shape).astype(np.float32) * 2 + 1
    w, b = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    rm0, rv0 = rng.standard_normal(3).astype(np.float32), rng.uniform(0.5, 2, 3).astype(np.float32)
    running_mean = tc.asarray(rm0.copy(), device=device)
    running_var = tc.Variable(rv0.copy(), trainable=False, device=device)
    params = (tc.asarray(w, device=device), tc.asarray(b, device=device)) if affine else (None, None)
    y = F.batch_norm(tc.asarray(x, device=device), running_mean, running_var, *params, training=True, momentum=0.2)
    mean, var, unbiased = _batch_stats(x)
    assert_matches(y, _bn_ref(x, mean, var, *((w, b) if affine else ())), rtol=1e-4, atol=1e-5)
    assert_matches(running_mean, 0.8 * rm0 + 0.2 * mean, rtol=1e-5)
    assert_matches(running_var, 0.8 * rv0 + 0.2 * unbiased, rtol=1e-5)
    assert running_var._version == 1


def test_batch_norm_eval_uses_running_statistics(device: str) -> None:
    x = rng.standard_normal((3, 2, 2, 2))
    rm, rv = rng.standard_normal(2), rng.uniform(0.5, 2, 2)
    w, b = rng.standard_normal(2), rng.standard_normal(2)
    check_op(lambda *a: F.batch_norm(*a), lambda *a: _bn_ref(*a), [x, rm, rv, w, b], device, rtol=1e-12)
    running_mean = tc.asarray(rm, device=device)
    F.batch_norm(tc.asarray(x, device=device), running_mean, tc.asarray(rv, device=device))
    assert_matches(running_mean, rm)  # eval mode leaves the statistics alone


@pytest.mark.parametrize("shape", [(3, 2, 2, 2), (4, 2)])
def test_batch_norm_training_gradient(shape: tuple, device: str) -> None:
    def fn(x: tc.Tensor, w: tc.Tensor, b: tc.Tensor) -> tc.Tensor:
        return F.batch_norm(x, tc.zeros((2,), dtype=tc.float64, device=x.device), tc.ones((2,), dtype=tc.float64, device=x.device),
                            w, b, training=True)

    check_grad(fn, [rng.standard_normal(shape), rng.standard_normal(2), rng.standard_normal(2)], device)
    check_grad(lambda x: F.batch_norm(x, None, None, training=True), [rng.standard_normal(shape)], device)
    check_grad(lambda x, b: F.batch_norm(x, None, None, bias=b, training=True), [rng.standard_normal(shape), rng.standard_normal(2)], device)


def test_batch_norm_eval_gradient(device: str) -> None:
    rm, rv = tc.asarray(rng.standard_normal(2), device=device), tc.asarray(rng.uniform(0.5, 2, 2), device=device)
    check_grad(lambda x, w, b: F.batch_norm(x, rm, rv, w, b), [rng.standard_normal((2, 2, 3)), rng.standard_normal(2), rng.standard_normal(2)], device)


def test_batch_norm_second_order_gradient(device: str) -> None:
    r = rng.standard_normal((3, 2, 2))

    def grads(x: tc.Tensor, w: tc.Tensor) -> tuple:
        with tc.GradientTape() as inner:
            inner.watch([x, w])
            y = F.batch_norm(x, None, None, w, training=True)
            total = tc.sum(y * y * y * tc.asarray(r, device=x.device))
        return tuple(inner.gradient(total, [x, w]))

    check_grad(grads, [rng.standard_normal((3, 2, 2)), rng.standard_normal(2)], device)


def test_batch_norm_bad_inputs(device: str) -> None:
    x = tc.zeros((4, 3, 2, 2), device=device)
    with pytest.raises(tc.OpError, match=r"batch_norm: running_mean must have shape \(3,\).*got \(2,\)"):
        F.batch_norm(x, tc.zeros((2,), device=device), tc.ones((3,), device=device))
    with pytest.raises(tc.OpError, match=r"batch_norm: weight must have shape \(3,\)"):
        F.batch_norm(x, None, None, tc.ones((4,), device=device), training=True)
    with pytest.raises(tc.OpError, match=r"batch_norm: eval mode .* needs running_mean and running_var"):
        F.batch_norm(x, None, None)
    with pytest.raises(tc.OpError, match=r"batch_norm: training needs more than 1 value per channel"):
        F.batch_norm(tc.zeros((1, 3), device=device), None, None, training=True)
    with pytest.raises(tc.OpError, match=r"batch_norm: input must be floating point"):
        F.batch_norm(tc.zeros((4, 3), dtype=tc.int64, device=device), None, None, training=True)


def _ln_ref(x: np.ndarray, weight: np.ndarray | None = None, bias: np.ndarray | None = None, k: int = 1,
            eps: float = 1e-5) -> np.ndarray:
    axes = tuple(range(x.ndim - k, x.ndim))
    out = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    return out * (1 if weight is None else weight) + (0 if bias is None else bias)


@pytest.mark.parametrize("normalized_shape", [(4,), (3, 4)])
def test_layer_norm_forward_and_gradient(normalized_shape: tuple, device: str) -> None:
    x = rng.standard_normal((2, 3, 4))
    w, b = rng.standard_normal(normalized_shape), rng.standard_normal(normalized_shape)
    k = len(normalized_shape)
    check_op(lambda *a: F.layer_norm(a[0], normalized_shape, *a[1:]), lambda *a: _ln_ref(*a, k=k), [x, w, b], device, rtol=1e-10)
    check_op(lambda a: F.layer_norm(a, normalized_shape[-1] if k == 1 else normalized_shape), lambda a: _ln_ref(a, k=k), [x.astype(np.float32)], device, rtol=1e-4, atol=1e-5)
    check_grad(lambda *a: F.layer_norm(a[0], normalized_shape, *a[1:]), [x, w, b], device)


def test_layer_norm_bad_shapes(device: str) -> None:
    x = tc.zeros((2, 3, 4), device=device)
    with pytest.raises(tc.OpError, match=r"layer_norm: normalized_shape \(3,\) must match the trailing dimensions"):
        F.layer_norm(x, 3)
    with pytest.raises(tc.OpError, match=r"layer_norm: weight must have shape \(4,\)"):
        F.layer_norm(x, 4, tc.ones((3,), device=device))


def test_fused_backward_composites_match_their_kernels(device: str) -> None:
    """The composite forms (run on a backend with no kernel of its own) agree with the kernels."""
    from tensorcore.ops.registry import OPS

    x, g = rng.standard_normal((4, 3, 2)), rng.standard_normal((4, 3, 2))
    w = rng.standard_normal(3)
    mean, var = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
    op = OPS["batch_norm_backward"]
    args = [tc.asarray(a, device=device) for a in (g, x, mean, var, w)]
    attrs = {"eps": 1e-5, "has_weight": True}
    assert_matches(op.composite(*args, **attrs), op.reference(g, x, mean, var, w, **attrs), rtol=1e-10, atol=1e-12)
    logits, labels = rng.standard_normal((4, 3)), np.array([2, 0, 1, 1])
    z = np.exp(logits - logits.max(1, keepdims=True))
    probs = z / z.sum(1, keepdims=True)
    op = OPS["cross_entropy_backward"]
    for reduction, seed in (("mean", np.array(1.5)), ("none", rng.standard_normal(4))):
        args = [tc.asarray(a, device=device) for a in (seed, logits, probs, labels)]
        assert_matches(op.composite(*args, reduction=reduction), op.reference(seed, logits, probs, labels, reduction=reduction), rtol=1e-10)
