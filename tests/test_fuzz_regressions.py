"""Regression tests for the bugs the differential fuzz tests (tests/test_fuzz_*.py) found, one
plain test each, on every device. A bug that is not fixed yet is marked
``xfail(strict=True)`` with what goes wrong, so the fix turns it into a failure to unmark.
"""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc
import tensorcore.nn.functional as F
from tensorcore.dispatch import apply, apply_inplace
from tensorcore.ops.registry import OPS


def on(device: str, x: object, dtype: object = np.float32) -> tc.Tensor:
    """``x`` as a tensor of ``dtype`` on ``device``."""
    return tc.asarray(np.asarray(x, dtype=dtype), device=device)


def grads(device: str, fn: object, *arrays: np.ndarray) -> list[np.ndarray]:
    """The gradients of ``sum(fn(*xs))`` with respect to every input, as NumPy arrays."""
    xs = [on(device, a) for a in arrays]
    with tc.GradientTape() as tape:
        tape.watch(xs)
        y = tc.sum(fn(*xs))
    return [g.numpy() for g in tape.gradient(y, xs, unconnected_gradients="zero")]


# --- fixed: NumPy references (tensorcore/ops/*.py) -------------------------------------------


def test_relu_of_bool_keeps_its_dtype(device: str) -> None:
    """relu's reference gave int64 for bool (``np.maximum(x, 0)`` promotes), its rule bool."""
    out = F.relu(on(device, [True, False, True], bool))
    assert out.dtype == tc.bool
    np.testing.assert_array_equal(out.numpy(), [True, False, True])


def test_conv2d_of_an_empty_batch(device: str) -> None:
    """conv2d and its weight gradient on a batch of 0 images: the reference's ``reshape(-1)``
    could not infer a dimension of an empty array and raised."""
    x, w = np.zeros((0, 2, 4, 4), np.float32), np.ones((3, 2, 2, 2), np.float32)
    out = F.conv2d(on(device, x), on(device, w))
    assert out.shape == (0, 3, 3, 3)
    gx, gw = grads(device, F.conv2d, x, w)
    assert gx.shape == x.shape and gw.shape == w.shape
    np.testing.assert_array_equal(gw, np.zeros_like(w))


def test_linear_gradients_with_no_output_features(device: str) -> None:
    """linear_backward_weight and linear_backward_bias with 0 output features (a 1-D input or
    batch dimensions): ``g.reshape(-1, 0)`` raised in the reference."""
    x, w, b = np.ones((2, 3, 4), np.float32), np.ones((0, 4), np.float32), np.ones((0,), np.float32)
    gx, gw, gb = grads(device, F.linear, x, w, b)
    np.testing.assert_array_equal(gx, np.zeros_like(x))
    assert gw.shape == (0, 4) and gb.shape == (0,)
    assert grads(device, F.linear, x[0, 0], w)[1].shape == (0, 4)


def test_embedding_gradient_with_no_embedding_dimensions(device: str) -> None:
    """embedding_backward with embedding_dim 0: ``g.reshape(-1, 0)`` raised in the reference."""
    weight = on(device, np.ones((5, 0)))
    indices = tc.asarray(np.array([[1, 2], [4, 1]]), device=device)
    with tc.GradientTape() as tape:
        tape.watch(weight)
        y = tc.sum(F.embedding(indices, weight))
    assert tape.gradient(y, weight).shape == (5, 0)


def test_max_pool_gradient_of_an_empty_batch(device: str) -> None:
    """max_pool2d_backward with N * C == 0: ``indices.reshape(0, -1)`` raised in the reference."""
    (gx,) = grads(device, lambda x: F.max_pool2d(x, 2), np.zeros((0, 3, 4, 4), np.float32))
    assert gx.shape == (0, 3, 4, 4)


@pytest.mark.parametrize("name", ["sgd_step", "adam_step"])
def test_a_refused_optimizer_step_writes_nothing(device: str, name: str) -> None:
    """A gradient that does not fit its parameter is refused before anything is written: the
    cpu reference scaled SGD's velocity (momentum, no weight decay) and Adam's first moment
    (and, with AdamW's decay, the parameter) before NumPy's broadcasting error."""
    param, m, v = on(device, [0.5]), on(device, [0.25]), on(device, [0.125])
    grad, lr = on(device, [1.0, 2.0]), on(device, [0.1])
    if name == "sgd_step":
        state, attrs = (grad, m, lr, None), {"momentum": 0.9, "nesterov": False, "weight_decay": 0.0}
    else:
        schedule = on(device, [0.9, 0.999, 1e-3, 1e-8])
        state, attrs = (grad, m, v, schedule, lr), {"beta1": 0.9, "beta2": 0.999, "weight_decay": 0.01,
                                                   "decoupled": True}
    with pytest.raises(tc.OpError, match=name):
        apply_inplace(OPS[name], param, state, attrs)
        tc.synchronize(device)
    assert (param.numpy().tolist(), m.numpy().tolist(), v.numpy().tolist()) == ([0.5], [0.25], [0.125])


def test_gelu_of_the_largest_floats_is_finite(device: str) -> None:
    """gelu(x) is about x for large x; the reference computed ``(1 + erf) * x`` before halving
    it, so it overflowed to inf from half the dtype's largest value up."""
    big = np.finfo(np.float32).max
    x = on(device, [big, big / 2, -big])
    for approximate in ("none", "tanh"):
        np.testing.assert_array_equal(F.gelu(x, approximate=approximate).numpy(), [big, big / 2, -0.0])


def test_gelu_tanh_of_a_0d_tensor(device: str) -> None:
    """gelu with ``approximate="tanh"`` of a 0-d tensor: the reference's ``np.tanh(inner,
    out=inner)`` got a NumPy scalar (``x * x`` of a 0-d array) and raised."""
    x = 1.5
    expected = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(F.gelu(on(device, x), approximate="tanh").numpy(), expected, rtol=1e-6)


def test_relu_of_negative_zero_is_positive_zero(device: str) -> None:
    """relu(-0.0) is +0.0, as NumPy's maximum(-0.0, 0) gives (an exact op: the sign of zero counts);
    opencl's f_relu was ``x < 0 ? 0 : x``, in its elementwise kernel and in fused graphs alike."""
    out = F.relu(on(device, [-0.0, 0.0, -1.0]))
    assert not np.signbit(out.numpy()).any(), out.numpy()


# --- fixed: pooling (reference and kernels) and a composite --------------------------------


def test_max_pool_padding_never_wins_a_window_of_minus_infinity(device: str) -> None:
    """Padding never wins (max_pool2d's docstring): a window of -inf picks its first real
    element, as PyTorch's does, and the gradient goes there. The cpu reference and the opencl
    and CUDA kernels let the -inf padding win such a window (an index outside the plane: the
    backward raised on cpu and misplaced the gradient on opencl)."""
    x = np.full((1, 1, 3, 3), -np.inf, np.float32)
    _, indices = apply(OPS["max_pool2d"], (on(device, x),), {"kernel_size": (3, 3), "stride": (1, 1),
                                                             "padding": (1, 1)})
    np.testing.assert_array_equal(indices.numpy().ravel(), [0, 0, 1, 0, 0, 1, 3, 3, 4])
    (gx,) = grads(device, lambda t: F.max_pool2d(t, 3, 1, 1), x)
    np.testing.assert_array_equal(gx.ravel(), [4, 2, 0, 2, 1, 0, 0, 0, 0])


@pytest.mark.parametrize(("small", "wide", "value"), [(np.float16, np.float32, 20.0), (np.float32, np.float64, 2.0**70)])
def test_norm_partial_of_mixed_dtypes_sums_in_the_result_dtype(device: str, small: type, wide: type,
                                                               value: float) -> None:
    """norm_partial of tensors of two float dtypes sums ``|x|**2`` in the wider one (the result
    dtype), as its reference does: squares that overflow the narrower dtype still count. The
    composite (run where a kernel declines mixed dtypes or float16, as opencl's does) summed
    each tensor in its own dtype and cast the part afterwards: inf."""
    xs = (on(device, np.full(300, value), small), on(device, [1.0], wide))
    total = apply(OPS["norm_partial"], xs, {"norm_type": 2.0})
    assert total.dtype == np.dtype(wide)
    np.testing.assert_allclose(total.numpy(), 300 * value**2 + 1, rtol=1e-6)


# --- fixed: device kernels ------------------------------------------------------------------


@pytest.mark.parametrize(("name", "dtype", "value"), [("assign", np.bool_, 0), ("assign", np.int8, 2.7),
                                                       ("assign_add", np.int8, 2.7), ("assign_sub", np.int8, 0.5)])
def test_in_place_update_refuses_a_python_scalar_of_another_kind(device: str, name: str, dtype: type,
                                                                  value: object) -> None:
    """``assign``/``assign_add``/``assign_sub`` follow NumPy's same-kind rule (the reference's
    ``np.copyto``/``np.add(out=)``): a Python float into an integer tensor, or an int into a bool
    one, is refused and writes nothing. (``Variable.assign`` casts first, so this is the op's
    contract, reached by code that calls ``dispatch.apply_inplace`` itself.) opencl's kernels
    cast the scalar C's way: assign(int8, 2.7) wrote 2, assign(bool, 0) False."""
    target = on(device, [7, 7], dtype)
    before = target.numpy().tolist()
    with pytest.raises(tc.OpError, match=name):
        apply_inplace(OPS[name], target, (value,))
        tc.synchronize(device)
    assert target.numpy().tolist() == before
