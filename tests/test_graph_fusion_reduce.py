"""Elementwise chains that end in a sum or mean fuse into the reduction: one kernel adds the
chain's values up as it makes them. On every device, against eager mode (bitwise on cpu,
where the fused kernel runs the same NumPy calls in the same order)."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc
from tensorcore import registry
from tensorcore.nn import functional as F

rng = np.random.default_rng(11)


def squared_error(x, y):
    d = x - y
    return tc.sum(d * d)


def row_means(x, y):
    return tc.mean(tc.exp(x * 0.5) + y, axis=-1)


def trailing_means(x, y):
    return tc.mean(F.relu(x * 2.0 - y), axis=(1, 2), keepdims=True)


CASES = {"sum of all": (squared_error, "fused[subtract+multiply+sum]"),
         "mean of rows": (row_means, "fused[multiply+exp+add+mean]"),
         "mean of trailing axes, keepdims": (trailing_means, "fused[multiply+subtract+relu+mean]")}


def check_equal(got: tc.Tensor, want: tc.Tensor, device: str, dtype) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype
    if device == "cpu:0":
        np.testing.assert_array_equal(got.numpy(), want.numpy())  # the same NumPy calls, bitwise
    else:
        tol = 2e-6 if dtype == np.float32 else 1e-13
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=tol, atol=tol)


def skip_without_float64(device: str, dtype) -> None:
    if dtype == np.float64 and device.startswith("opencl") and not registry.get_backend("opencl").device(0).fp64:
        pytest.skip("opencl:0 has no float64")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_chain_ending_in_a_reduction_is_one_fused_node_equal_to_eager(device: str, case: str, dtype) -> None:
    skip_without_float64(device, dtype)
    fn, fused_name = CASES[case]
    x = tc.asarray(rng.standard_normal((3, 40, 700)).astype(dtype), device=device)
    y = tc.asarray(rng.standard_normal((3, 40, 700)).astype(dtype), device=device)
    traced = tc.function(fn)
    got = traced(x, y)
    assert [n.op_name for n in traced.graph(x, y).nodes] == [fused_name]
    assert fused_name in traced.code(x, y)
    check_equal(got, fn(x, y), str(tc.Device(device)), dtype)


def test_fused_reductions_read_broadcast_and_strided_inputs(device: str) -> None:
    def f(x, b):
        return tc.sum(tc.square(tc.matrix_transpose(x) - b), axis=-1)  # a transposed view, a broadcast row

    x = tc.asarray(rng.standard_normal((300, 20)).astype(np.float32), device=device)
    b = tc.asarray(rng.standard_normal(300).astype(np.float32), device=device)
    traced = tc.function(f)
    got = traced(x, b)
    assert any(n.op_name.endswith("+sum]") for n in traced.graph(x, b).nodes)
    # Not bitwise on cpu: eager NumPy keeps the transpose's memory order for the chain's result
    # (so it sums down strided rows), the fused kernel writes it row-major (and sums pairwise).
    np.testing.assert_allclose(got.numpy(), f(x, b).numpy(), rtol=2e-6)


def test_a_reduction_is_not_fused_where_the_chain_is_read_elsewhere_or_the_axes_lead(device: str) -> None:
    def f(x):
        a = tc.exp(x) * 2.0
        return a, tc.sum(a)  # the chain's result is returned: it must be written out

    def g(x):
        return tc.sum(tc.exp(x) * 2.0, axis=0)  # a leading axis: not this kernel's layout

    def h(x):
        return tc.sum(tc.exp(x) * 2.0, dtype=tc.float64)  # a dtype change: not fused either

    x = tc.asarray(rng.standard_normal((6, 5)).astype(np.float32), device=device)
    for fn in (f, g, h):
        traced = tc.function(fn)
        names = [n.op_name for n in traced.graph(x).nodes]
        assert "fused[exp+multiply]" in names and not any("+sum]" in n for n in names), names
        got, want = traced(x), fn(x)
        for g_, w_ in zip(*((r,) if isinstance(r, tc.Tensor) else r for r in (got, want))):
            np.testing.assert_allclose(g_.numpy(), w_.numpy(), rtol=1e-6)


def test_one_op_and_a_reduction_fuse_into_a_dot_product(device: str) -> None:
    def dot(x, y):
        return tc.sum(x * y)

    x = tc.asarray(rng.standard_normal(100_000).astype(np.float32), device=device)
    y = tc.asarray(rng.standard_normal(100_000).astype(np.float32), device=device)
    traced = tc.function(dot)
    got = traced(x, y)
    assert [n.op_name for n in traced.graph(x, y).nodes] == ["fused[multiply+sum]"]
    np.testing.assert_allclose(got.numpy(), np.sum(x.numpy().astype(np.float64) * y.numpy()), rtol=1e-5)


def test_empty_reductions_give_what_the_ops_give(device: str) -> None:
    def f(x):
        return tc.sum(tc.exp(x) * 2.0, axis=-1), tc.mean(tc.exp(x) * 2.0, axis=-1)

    x = tc.asarray(np.zeros((3, 0), np.float32), device=device)
    with np.errstate(invalid="ignore", divide="ignore"):
        got_sum, got_mean = tc.function(f)(x)
        want_sum, want_mean = f(x)
    np.testing.assert_array_equal(got_sum.numpy(), want_sum.numpy())  # zeros
    np.testing.assert_array_equal(got_mean.numpy(), want_mean.numpy())  # NaN, as NumPy


def test_gradients_of_a_traced_step_with_a_fused_loss_equal_eager(device: str) -> None:
    w0 = rng.standard_normal((8, 3)).astype(np.float32)
    x = tc.asarray(rng.standard_normal((64, 8)).astype(np.float32), device=device)
    y = tc.asarray(rng.standard_normal((64, 3)).astype(np.float32), device=device)

    def loss_and_grad(w):
        with tc.GradientTape() as tape:
            tape.watch(w)
            d = x @ w - y
            loss = tc.mean(d * d)
        return loss, tape.gradient(loss, w)

    w = tc.asarray(w0, device=device)
    traced = tc.function(loss_and_grad)
    (loss, grad), (loss_e, grad_e) = traced(w), loss_and_grad(w)
    assert any(n.op_name.endswith("+mean]") for n in traced.graph(w).nodes)
    np.testing.assert_allclose(loss.numpy(), loss_e.numpy(), rtol=1e-6)
    np.testing.assert_allclose(grad.numpy(), grad_e.numpy(), rtol=1e-6, atol=1e-7)


def test_a_fused_reduction_is_one_kernel_and_its_parts_sum_on_opencl(opencl_launches) -> None:
    launches = opencl_launches
    x = tc.asarray(rng.standard_normal((4, 50_000)).astype(np.float32), device="opencl:0")
    y = tc.asarray(rng.standard_normal((4, 50_000)).astype(np.float32), device="opencl:0")
    traced = tc.function(squared_error)
    traced(x, y)
    launches.clear()
    out = traced(x, y)
    # The chain and the sum in one kernel, then the parts added up (eager: three kernels, and
    # the chain's two results written out in full).
    assert launches[0] == "fused_reduce" and all(k.startswith("reduce") for k in launches[1:]), launches
    np.testing.assert_allclose(out.numpy(), squared_error(x, y).numpy(), rtol=2e-6)
