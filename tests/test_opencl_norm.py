"""OpenCL's native training-mode batch_norm against NumPy (in float64): the layouts its launcher
handles differently (channels between reduced axes, (N, C) columns, planes split across
work-items, non-contiguous inputs and parameters), float32 and float64, gradients, and no
fallback to cpu. The device-generic cases live in test_nn_normalization.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc
import tensorcore.nn.functional as F  # noqa: N812 - PyTorch's conventional alias

from support import check_grad

CL = "opencl:0"
pytestmark = pytest.mark.skipif(
    CL not in [str(info.device) for info in tc.devices()],
    reason="opencl:0 is not available (no OpenCL driver such as PoCL, or the backend failed to start)",
)
rng = np.random.default_rng(11)


def reference(x: np.ndarray, w: np.ndarray | None, b: np.ndarray | None, eps: float) -> tuple:
    """(y, batch mean, biased batch variance) in float64."""
    x = x.astype(np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    if w is not None:
        y = y * w.reshape(shape)
    if b is not None:
        y = y + b.reshape(shape)
    return y, mean, var


def reference_grads(x: np.ndarray, w: np.ndarray, g: np.ndarray, eps: float) -> tuple:
    """(gx, gw, gb) of batch_norm in float64, for the output gradient ``g``."""
    x, g = x.astype(np.float64), g.astype(np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    invstd = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    xhat = (x - x.mean(axis=axes, keepdims=True)) * invstd
    gx = w.reshape(shape) * invstd * (g - g.mean(axis=axes, keepdims=True)
                                      - xhat * (g * xhat).mean(axis=axes, keepdims=True))
    return gx, (g * xhat).sum(axis=axes), g.sum(axis=axes)


def assert_native() -> None:
    """Neither batch_norm nor its backward fell back to cpu."""
    used = {key.split("@")[0] for key in tc.placement_stats()["fallbacks"]}
    assert not used & {"batch_norm", "batch_norm_backward"}, f"fell back: {tc.placement_stats()['fallbacks']}"


@pytest.mark.parametrize("shape", [
    (5, 7, 33, 31),     # channels between the reduced axes: statistics from a channel-first copy
    (1, 3, 300, 301),   # three planes of 90,300: each split across many work-items (odd tail)
    (257, 5),           # (N, C): columns, no copy
    (6, 4, 1),          # a size-1 spatial axis
    (2, 3, 5, 1, 7),    # two spatial axes
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_and_its_gradients_match_numpy(shape: tuple, dtype: type) -> None:
    c = shape[1]
    x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)
    w, b = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    running_mean = tc.zeros((c,), dtype=dtype, device=CL)
    running_var = tc.ones((c,), dtype=dtype, device=CL)
    tx, tw, tb = (tc.Variable(a, device=CL) for a in (x, w, b))
    with tc.GradientTape() as tape:
        y = F.batch_norm(tx, running_mean, running_var, tw, tb, training=True, momentum=0.5, eps=1e-3)
        loss = tc.sum(y * tc.asarray(g, device=CL))
    grads = tape.gradient(loss, [tx, tw, tb])
    want, mean, var = reference(x, w, b, 1e-3)
    count = x.size // c
    tol = 2e-5 if dtype == np.float32 else 1e-12
    assert str(y.device) == CL and y.dtype == dtype and y.shape == shape
    np.testing.assert_allclose(y.numpy(), want, rtol=tol, atol=tol)
    for got, expected in zip(grads, reference_grads(x, w, g, 1e-3)):
        assert str(got.device) == CL and got.dtype == dtype and got.shape == expected.shape
        np.testing.assert_allclose(got.numpy(), expected, rtol=10 * tol, atol=10 * tol * np.sqrt(count))
    np.testing.assert_allclose(running_mean.numpy(), 0.5 * mean, rtol=tol, atol=tol)
    np.testing.assert_allclose(running_var.numpy(), 0.5 + 0.5 * var * count / (count - 1), rtol=tol)
    assert_native()


@pytest.mark.parametrize("affine", ["none", "weight", "bias"])
def test_non_contiguous_input_and_parameters_that_are_views(affine: str) -> None:
    base = rng.standard_normal((9, 4, 6, 5)).astype(np.float32)
    x = tc.permute_dims(tc.asarray(base, device=CL), (1, 0, 3, 2))[:, 1:]  # (4, 8, 5, 6), strided
    params = tc.asarray(rng.standard_normal(17).astype(np.float32), device=CL)
    w = params[1::2] if affine == "weight" else None  # offset and stride 2
    b = params[3:11] if affine == "bias" else None     # offset
    y = F.batch_norm(x, None, None, w, b, training=True)
    ref_x = base.transpose(1, 0, 3, 2)[:, 1:]
    np_w = None if w is None else w.numpy()
    np_b = None if b is None else b.numpy()
    np.testing.assert_allclose(y.numpy(), reference(ref_x, np_w, np_b, 1e-5)[0], rtol=2e-5, atol=2e-5)
    assert_native()


def test_gradients_through_the_native_forward_on_a_strided_input() -> None:
    def fn(x: tc.Tensor, w: tc.Tensor, b: tc.Tensor) -> tc.Tensor:
        return F.batch_norm(tc.permute_dims(x, (1, 0, 2)), None, None, w, b, training=True)

    check_grad(fn, [rng.standard_normal((3, 4, 5)), rng.standard_normal(3), rng.standard_normal(3)], CL)
    assert_native()


def test_batch_norm_of_2_pow_24_elements_is_accurate_in_float32() -> None:
    """Statistics and gradient sums over 2**20 values per channel, the inputs far from 0: a
    float32 running sum would drift."""
    shape = (64, 16, 128, 128)
    x = (rng.standard_normal(shape, dtype=np.float32) + 100).astype(np.float32)
    g = (rng.standard_normal(shape, dtype=np.float32) + 1).astype(np.float32)
    w = rng.uniform(0.5, 2, 16).astype(np.float32)
    tx, tw = tc.Variable(x, device=CL), tc.Variable(w, device=CL)
    with tc.GradientTape() as tape:
        y = F.batch_norm(tx, None, None, tw, training=True)
        loss = tc.sum(y * tc.asarray(g, device=CL))
    gx, gw = tape.gradient(loss, [tx, tw])
    np.testing.assert_allclose(y.numpy(), reference(x, w, None, 1e-5)[0], rtol=1e-4, atol=1e-4)
    ref_gx, ref_gw, _ = reference_grads(x, w, g, 1e-5)
    np.testing.assert_allclose(gx.numpy(), ref_gx, rtol=1e-3, atol=1e-4)
    # A float32 mean of values near 100 is off by up to half an ulp of 100, which shifts every
    # xhat alike: sum(g * xhat) then moves by up to that much times sum(|g|). NumPy's float32
    # (the cpu) is off by as much; anything more would be the kernel's own error.
    bound = np.finfo(np.float32).eps * 100 * np.abs(g).sum(axis=(0, 2, 3))
    assert np.all(np.abs(gw.numpy() - ref_gw) <= bound), (gw.numpy() - ref_gw, bound)
    assert_native()
