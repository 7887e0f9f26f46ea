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
from tensorcore.ops.registry import OPS

from support import check_grad

CL = "opencl:0"
pytestmark = pytest.mark.skipif(
    CL not in [str(info.device) for info in tc.devices()],
    reason="opencl:0 is not available (no OpenCL driver such as PoCL, or the backend failed to start)",
)
rng = np.random.default_rng(11)
EPS = {np.dtype(np.float32): float(np.finfo(np.float32).eps), np.dtype(np.float64): float(np.finfo(np.float64).eps)}


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


def reference_grads(x: np.ndarray, w: np.ndarray | None, g: np.ndarray, eps: float) -> tuple:
    """(gx, gw, gb) of batch_norm in float64 for the output gradient ``g``, and per channel the
    bounds on a float sum's error for gw and gb (see ``close_sums``)."""
    x, g = x.astype(np.float64), g.astype(np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    mean = x.mean(axis=axes, keepdims=True)
    invstd = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    xhat = (x - mean) * invstd
    scale = invstd if w is None else w.reshape(shape) * invstd
    gx = scale * (g - g.mean(axis=axes, keepdims=True) - xhat * (g * xhat).mean(axis=axes, keepdims=True))
    # sum(g * xhat) also moves with the rounding of the mean, which shifts every xhat alike
    gw_scale = np.abs(g * xhat).sum(axis=axes) + (np.abs(mean) * invstd).ravel() * np.abs(g).sum(axis=axes)
    return gx, (g * xhat).sum(axis=axes), g.sum(axis=axes), gw_scale, np.abs(g).sum(axis=axes)


def close_values(got: tc.Tensor, expected: np.ndarray, dtype: np.dtype) -> None:
    """Elementwise results: a few ulp of the largest value (measured: about 1 in float32)."""
    assert str(got.device) == CL and got.dtype == dtype and got.shape == expected.shape
    tol = 64 * EPS[np.dtype(dtype)]
    np.testing.assert_allclose(got.numpy(), expected, rtol=tol, atol=tol * np.abs(expected).max())


def close_sums(got: tc.Tensor, expected: np.ndarray, magnitude: np.ndarray, dtype: np.dtype) -> None:
    """Per-channel sums: within 16 eps of the sum of the terms' magnitudes. A blocked or
    pairwise sum stays well inside; one running float32 sum over a long channel does not."""
    assert str(got.device) == CL and got.dtype == dtype and got.shape == expected.shape
    err = np.abs(got.numpy() - expected)
    bound = 16 * EPS[np.dtype(dtype)] * magnitude
    assert np.all(err <= bound), (err, bound)


@pytest.fixture
def native(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts of the OpenCL launchers' calls for batch_norm and its backward. A declined
    backward would run as its composite and count as no fallback, so the count is what tells."""
    calls = {"batch_norm": 0, "batch_norm_backward": 0}
    for name in calls:
        dev = next(d for d in OPS[name].kernels if str(d) == CL)
        kernel = OPS[name].kernels[dev]

        def counted(*args, _kernel=kernel, _name=name, **attrs):
            out = _kernel(*args, **attrs)
            calls[_name] += 1
            return out

        monkeypatch.setitem(OPS[name].kernels, dev, counted)
    return calls


def assert_native(calls: dict[str, int], backward: bool = True) -> None:
    """The OpenCL kernels ran (the backward too, if asked) and nothing fell back to cpu."""
    assert calls["batch_norm"] > 0 and (calls["batch_norm_backward"] > 0 or not backward), calls
    used = {key.split("@")[0] for key in tc.placement_stats()["fallbacks"]}
    assert not used & set(calls), f"fell back: {tc.placement_stats()['fallbacks']}"


def run_with_gradients(x: tc.Tensor, w: tc.Tensor | None, b: tc.Tensor | None, g: np.ndarray, **kw) -> tuple:
    """batch_norm's output and the gradients of sum(y * g) for x and the given parameters."""
    sources = [t for t in (x, w, b) if t is not None]
    with tc.GradientTape() as tape:
        tape.watch(sources)
        y = F.batch_norm(x, kw.pop("running_mean", None), kw.pop("running_var", None), w, b, training=True, **kw)
        loss = tc.sum(y * tc.asarray(g, device=CL))
    return y, tape.gradient(loss, sources)


@pytest.mark.parametrize("shape", [
    (5, 7, 33, 31),     # channels between the reduced axes: statistics from a channel-first copy
    (1, 3, 300, 301),   # three planes of 90,300: each split across many work-items (odd tail)
    (257, 5),           # (N, C): columns, no copy
    (6, 4, 1),          # a size-1 spatial axis
    (2, 3, 5, 1, 7),    # two spatial axes
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_and_its_gradients_match_numpy(shape: tuple, dtype: type, native: dict) -> None:
    c = shape[1]
    x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)
    w, b = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    running_mean = tc.zeros((c,), dtype=dtype, device=CL)
    running_var = tc.ones((c,), dtype=dtype, device=CL)
    y, (gx, gw, gb) = run_with_gradients(tc.Variable(x, device=CL), tc.Variable(w, device=CL),
                                         tc.Variable(b, device=CL), g, running_mean=running_mean,
                                         running_var=running_var, momentum=0.5, eps=1e-3)
    want, mean, var = reference(x, w, b, 1e-3)
    ref_gx, ref_gw, ref_gb, gw_scale, gb_scale = reference_grads(x, w, g, 1e-3)
    close_values(y, want, dtype)
    close_values(gx, ref_gx, dtype)
    close_sums(gw, ref_gw, gw_scale, dtype)
    close_sums(gb, ref_gb, gb_scale, dtype)
    count = x.size // c
    close_values(running_mean, 0.5 * mean, dtype)
    close_values(running_var, 0.5 + 0.5 * var * count / (count - 1), dtype)
    assert_native(native)


@pytest.mark.parametrize("affine", ["none", "weight", "bias", "both"])
def test_non_contiguous_input_and_parameters_that_are_views(affine: str, native: dict) -> None:
    base = rng.standard_normal((9, 4, 6, 5)).astype(np.float32)
    x = tc.permute_dims(tc.asarray(base, device=CL), (1, 0, 3, 2))[:, 1:]  # (4, 8, 5, 6), strided
    params = tc.asarray(rng.standard_normal(17).astype(np.float32), device=CL)
    w = params[1::2] if affine in ("weight", "both") else None  # offset and stride 2
    b = params[3:11] if affine in ("bias", "both") else None     # offset
    g = rng.standard_normal((4, 8, 5, 6)).astype(np.float32)
    y, grads = run_with_gradients(x, w, b, g)
    ref_x = base.transpose(1, 0, 3, 2)[:, 1:]
    np_w = None if w is None else w.numpy()
    np_b = None if b is None else b.numpy()
    close_values(y, reference(ref_x, np_w, np_b, 1e-5)[0], np.float32)
    ref_gx, ref_gw, ref_gb, gw_scale, gb_scale = reference_grads(ref_x, np_w, g, 1e-5)
    close_values(grads[0], ref_gx, np.float32)
    if w is not None:
        close_sums(grads[1], ref_gw, gw_scale, np.float32)
    if b is not None:
        close_sums(grads[-1], ref_gb, gb_scale, np.float32)
    assert_native(native)


def test_gradients_through_the_native_forward_on_a_strided_input(native: dict) -> None:
    def fn(x: tc.Tensor, w: tc.Tensor, b: tc.Tensor) -> tc.Tensor:
        return F.batch_norm(tc.permute_dims(x, (1, 0, 2)), None, None, w, b, training=True)

    check_grad(fn, [rng.standard_normal((3, 4, 5)), rng.standard_normal(3), rng.standard_normal(3)], CL)
    assert_native(native)


def test_batch_norm_of_2_pow_24_elements_is_accurate_in_float32(native: dict) -> None:
    """Statistics and gradient sums over 2**20 values per channel, the inputs far from 0: a
    float32 running sum would drift."""
    shape = (64, 16, 128, 128)
    x = (rng.standard_normal(shape, dtype=np.float32) + 100).astype(np.float32)
    g = (rng.standard_normal(shape, dtype=np.float32) + 1).astype(np.float32)
    w = rng.uniform(0.5, 2, 16).astype(np.float32)
    y, (gx, gw) = run_with_gradients(tc.Variable(x, device=CL), tc.Variable(w, device=CL), None, g)
    ref_gx, ref_gw, _, gw_scale, _ = reference_grads(x, w, g, 1e-5)
    close_values(y, reference(x, w, None, 1e-5)[0], np.float32)
    close_values(gx, ref_gx, np.float32)
    close_sums(gw, ref_gw, gw_scale, np.float32)
    assert_native(native)


def test_the_backward_reads_statistics_that_are_views_at_an_offset() -> None:
    """The launcher called directly (dispatch passes whatever views it holds) with the mean
    and variance at offsets 2 and 5 of one buffer, against the op's NumPy reference."""
    from tensorcore.backends.opencl_ops import nn_norm

    from tensorcore import registry
    from tensorcore.ops.normalization import _bn_backward_ref

    backend = registry.get_backend("opencl")
    x, g = rng.standard_normal((4, 3, 5)).astype(np.float32), rng.standard_normal((4, 3, 5)).astype(np.float32)
    w = rng.standard_normal(3).astype(np.float32)
    stats = np.concatenate([[9, 9], x.mean((0, 2)), x.var((0, 2))]).astype(np.float32)
    held = tc.asarray(stats, device=CL)._data
    mean, var = held.view((3,), (1,), 2), held.view((3,), (1,), 5)
    xs, gs, ws = (tc.asarray(a, device=CL)._data for a in (x, g, w))
    got = nn_norm.batch_norm_backward(backend.device(0), gs, xs, mean, var, ws, eps=1e-5, has_weight=True)
    want = _bn_backward_ref(g, x, stats[2:5], stats[5:], w, eps=1e-5, has_weight=True)
    for a, e in zip(got, want):
        np.testing.assert_allclose(backend.to_numpy(a), e, rtol=1e-5, atol=1e-5)
