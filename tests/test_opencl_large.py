"""Every native OpenCL kernel family at >= 2**24 elements, against NumPy (the cpu reference).

Index math and accumulation are what break first at that size: an ``int`` offset product that
overflows, a float32 index or counter (exact only up to 2**24), a launch size or chunk split
whose tail is dropped or read twice, or a float32 running total that stops absorbing terms.
So each test makes the relevant input or output >= 2**24 elements (16,777,216), mostly with
sizes that are not multiples of any tile (``(1 << 24) + odd``), plants values past index 2**24
where a position matters, compares with NumPy (in float64 where accuracy matters), and checks
that no float32 op fell back to cpu. Cases already in other files are not repeated here:
add and broadcast multiply (test_opencl_elementwise), flip, concat, assign_add and setitem
(test_opencl_movement_optim), sum and mean (test_opencl_reduce).

Scatter-adds (the gradients of take, embedding and take_along_axis) add atomically, in no
fixed order; the gradients scattered here are multiples of 1/8 whose partial sums stay far below 2**24 / 8, so every
order gives the exact sum and they are compared exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import tensorcore as tc

CL = "opencl:0"
pytestmark = pytest.mark.skipif(
    CL not in [str(info.device) for info in tc.devices()],
    reason="opencl:0 is not available (no OpenCL driver such as PoCL, or the backend failed to start)",
)
F = tc.nn.functional
BIG = 1 << 24
EPS32 = float(np.finfo(np.float32).eps)
rng = np.random.default_rng(24)


def cl(a: np.ndarray) -> tc.Tensor:
    """``a`` copied to the OpenCL device."""
    return tc.asarray(a, device=CL)


def assert_no_fallbacks() -> None:
    """Every op since the test began ran on OpenCL (none fell back to cpu)."""
    fallbacks = tc.placement_stats()["fallbacks"]
    assert not fallbacks, f"fell back to cpu: {fallbacks}"


def normal(shape: int | tuple[int, ...]) -> np.ndarray:
    """Standard normal float32 samples."""
    return rng.standard_normal(shape, dtype=np.float32)


def eighths(shape: int | tuple[int, ...]) -> np.ndarray:
    """float32 multiples of 1/8 in [-4, 4]: sums of up to 2**19 of them are exact in float32."""
    return (rng.integers(-32, 33, shape) / 8).astype(np.float32)


def close(actual: tc.Tensor, expected: np.ndarray, rtol: float, atol: float) -> None:
    """``actual`` has ``expected``'s shape and float32 dtype and matches its values."""
    assert str(actual.device) == CL, actual.device
    got = actual.numpy()
    assert got.shape == expected.shape and got.dtype == np.float32, (got.shape, got.dtype, expected.shape)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


# --- matmul and linear ------------------------------------------------------------------------


def test_batched_and_tall_matmul_with_2_pow_24_outputs() -> None:
    """Outputs past 2**24 elements from a small k: the GEMM's C offsets and edge tiles."""
    a, b = normal((1025, 128, 3)), normal((1025, 3, 129))  # 16,924,800 outputs
    expected = np.matmul(a.astype(np.float64), b)
    assert expected.size > BIG
    # three float32 products summed: a few ulps of sum(|a_i b_i|) (at most ~30 here)
    close(tc.matmul(cl(a), cl(b)), expected.astype(np.float32), rtol=1e-5, atol=1e-5)
    shared = normal((3, 129))  # broadcast B: packed once for all 1025 products
    close(tc.matmul(cl(a), cl(shared)), np.matmul(a.astype(np.float64), shared).astype(np.float32),
          rtol=1e-5, atol=1e-5)
    x, w = normal(((1 << 17) + 1, 8)), normal((8, 129))  # 16,908,417 outputs
    close(tc.matmul(cl(x), cl(w)), (x.astype(np.float64) @ w).astype(np.float32), rtol=1e-5, atol=2e-5)
    assert_no_fallbacks()


def test_linear_and_its_gradients_with_2_pow_24_outputs() -> None:
    """linear forward, and linear_backward_weight / linear_backward_bias reducing 2**17 + 1 rows."""
    rows = (1 << 17) + 1
    x, w, b = normal((rows, 8)), normal((129, 8)), normal(129)
    g = normal((rows, 129))  # 16,908,417 elements, like the output
    xt, wt, bt = cl(x), cl(w), cl(b)
    with tc.GradientTape() as tape:
        tape.watch([xt, wt, bt])
        y = F.linear(xt, wt, bt)
    close(y, (x.astype(np.float64) @ w.T + b).astype(np.float32), rtol=1e-5, atol=2e-5)
    gx, gw, gb = tape.gradient(y, [xt, wt, bt], output_gradients=cl(g))
    g64 = g.astype(np.float64)
    close(gx, (g64 @ w).astype(np.float32), rtol=1e-4, atol=1e-4)  # 129 terms each
    # gw sums 131,073 products of unit normals (sums ~ 360). The GEMM sums a long k in blocks
    # of 512 (matmul.py's KBLOCK), as BLAS does: max error ~8e-4 here, NumPy's ~7e-4. One
    # float32 running total over all of k was off by up to 0.011, which 4e-3 rejects; a dropped
    # or doubled k tile of 8 rows would be off by ~3, a wrong row by ~1.
    close(gw, (g64.T @ x).astype(np.float32), rtol=0, atol=4e-3)
    # gb comes from the reduction engine (chunked partials): ~1e-6 of the sum's scale (~360)
    close(gb, g64.sum(axis=0).astype(np.float32), rtol=1e-5, atol=1e-5 * np.sqrt(rows))
    assert_no_fallbacks()


# --- softmax and cross-entropy ----------------------------------------------------------------


def _log_softmax64(x: np.ndarray) -> np.ndarray:
    """log_softmax over the last axis, in float64."""
    z = x.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def test_softmax_and_log_softmax_forward_and_backward() -> None:
    """The fused row kernels over 16,385 rows of 1,027 (16,827,395 elements)."""
    x = normal(((1 << 14) + 1, 1027)) * 4
    g = normal(x.shape)
    logp = _log_softmax64(x)
    p = np.exp(logp)
    xt = cl(x)
    with tc.GradientTape(persistent=True) as tape:
        tape.watch(xt)
        y, logy = F.softmax(xt, axis=-1), F.log_softmax(xt, axis=-1)
    # float32 exp and a 1,027-term sum: a few ulps of each probability (< 1)
    close(y, p.astype(np.float32), rtol=1e-4, atol=1e-6)
    close(logy, logp.astype(np.float32), rtol=1e-5, atol=1e-5)
    g64 = g.astype(np.float64)
    dy = p * (g64 - (g64 * p).sum(axis=-1, keepdims=True))
    dlogy = g64 - p * g64.sum(axis=-1, keepdims=True)
    close(tape.gradient(y, xt, output_gradients=cl(g)), dy.astype(np.float32), rtol=1e-4, atol=1e-5)
    close(tape.gradient(logy, xt, output_gradients=cl(g)), dlogy.astype(np.float32), rtol=1e-4, atol=1e-4)
    # two rows of 2**23 + 5: too few rows for one work-item each, so the reduction engine
    # computes each row's max and sum in chunks and an elementwise kernel finishes
    x = normal((2, (1 << 23) + 5)) * 4
    logp = _log_softmax64(x)
    xt = cl(x)
    close(F.softmax(xt, axis=-1), np.exp(logp).astype(np.float32), rtol=1e-4, atol=1e-12)
    close(F.log_softmax(xt, axis=-1), logp.astype(np.float32), rtol=1e-5, atol=1e-5)
    assert_no_fallbacks()


def test_cross_entropy_forward_and_gradient() -> None:
    """cross_entropy and its backward over 16,387 rows of 1,025 classes (16,796,675 logits)."""
    n, c = (1 << 14) + 3, 1025
    logits = normal((n, c)) * 3
    labels = rng.integers(0, c, n)
    labels[-1] = c - 1  # the very last logit is the label's
    logp = _log_softmax64(logits)
    lt = cl(logits)
    with tc.GradientTape() as tape:
        tape.watch(lt)
        loss = F.cross_entropy(lt, cl(labels))
    expected = -logp[np.arange(n), labels].mean()
    assert loss.shape == () and abs(float(loss.numpy()) - expected) <= 1e-5 * abs(expected)
    grad = np.exp(logp)
    grad[np.arange(n), labels] -= 1.0
    # each entry is (p - onehot) / n: compare n times the gradient, a few ulps of 1
    got = tape.gradient(loss, lt).numpy()
    assert got.shape == (n, c) and got.dtype == np.float32
    np.testing.assert_allclose(got * n, grad, rtol=1e-4, atol=1e-6)
    assert_no_fallbacks()


# --- reductions -------------------------------------------------------------------------------


def test_max_min_argmax_argmin_with_extremes_past_2_pow_24() -> None:
    """Extremes planted at odd positions past 2**24, which a float32 index cannot hold."""
    n = BIG + 7
    x = rng.random(n, dtype=np.float32)
    x[BIG + 5], x[BIG + 3] = 2.0, -1.0
    x[5], x[7] = 2.0, -1.0  # earlier ties: the first occurrence must win
    t = cl(x)
    assert float(tc.max(t).numpy()) == 2.0 and float(tc.min(t).numpy()) == -1.0
    assert int(tc.argmax(t).numpy()) == 5 and int(tc.argmin(t).numpy()) == 7
    x[5], x[7] = 0.5, 0.5
    t = cl(x)
    assert int(tc.argmax(t).numpy()) == BIG + 5 and int(tc.argmin(t).numpy()) == BIG + 3
    assert float(tc.max(t[:BIG]).numpy()) == np.max(x[:BIG])  # the largest below the planted one
    assert_no_fallbacks()


def test_prod_and_var_of_2_pow_24_elements() -> None:
    """prod of 2**24 + 9 factors (1,001 of them not 1, two past 2**24) and var of values far from 0."""
    n = BIG + 9
    x = np.ones(n, np.float32)
    where = np.concatenate([rng.choice(BIG, 999, replace=False), [BIG + 1, n - 1]])
    x[where] = np.exp2(rng.uniform(-1.0, 1.0, where.size))  # log-uniform: partial products stay finite
    exact = np.prod(x.astype(np.float64))
    got = float(tc.prod(cl(x)).numpy())
    # 1,001 float32 roundings of at most eps / 2 each bound the error by 6e-5 relative; a factor
    # skipped or taken twice would be off by up to 2x. (Dense factors within 1e-4 of 1 are no
    # test: float32 drops every cross term δi·δj, so even NumPy's float32 product is 1% off.)
    assert abs(got - exact) <= 1001 * EPS32 / 2 * exact, (got, exact)
    y = (1000.0 + normal(n)).astype(np.float32)
    exact = np.var(y.astype(np.float64))
    for correction in (0, 1):
        got = float(tc.var(cl(y), correction=correction).numpy())
        want = exact * n / (n - correction)
        # two passes (mean, then squared deviations): ~1e-6 relative; a one-pass
        # sum(x**2) - n * mean**2 in float32 would lose everything to cancellation
        assert abs(got - want) <= 1e-5 * want, (correction, got, want)
    assert_no_fallbacks()


def test_reductions_over_each_axis_of_a_2_pow_24_matrix() -> None:
    """Column (axis 0) and row (axis 1) reductions of a 4,097 x 4,099 matrix (16,793,603)."""
    x = normal((4097, 4099))
    x64 = x.astype(np.float64)
    t = cl(x)
    # sums of ~4,098 unit normals (~64): ~1e-5 relative in float32
    close(tc.sum(t, axis=0), x64.sum(axis=0).astype(np.float32), rtol=1e-5, atol=1e-4)
    close(tc.mean(t, axis=1), x64.mean(axis=1).astype(np.float32), rtol=1e-5, atol=1e-6)
    close(tc.max(t, axis=0), x.max(axis=0), rtol=0, atol=0)
    close(tc.min(t, axis=1), x.min(axis=1), rtol=0, atol=0)
    close(tc.var(t, axis=0), x64.var(axis=0).astype(np.float32), rtol=1e-5, atol=0)
    np.testing.assert_array_equal(tc.argmin(t, axis=0).numpy(), np.argmin(x, axis=0))
    np.testing.assert_array_equal(tc.argmax(t, axis=1).numpy(), np.argmax(x, axis=1))
    assert_no_fallbacks()


def test_cumulative_sum_and_counts_past_2_pow_24() -> None:
    """A scan of 2**24 + 5 elements, and counts and any / all that a float32 counter or a
    dropped tail would get wrong."""
    n = BIG + 5
    x = eighths(n)  # multiples of 1/8 whose running sums stay far below 2**21: exact in float32
    got = tc.cumulative_sum(cl(x))
    assert str(got.device) == CL
    np.testing.assert_array_equal(got.numpy(), np.cumsum(x, dtype=np.float64).astype(np.float32))
    ones = np.ones(n, np.float32)
    ones[[3, BIG + 2]] = 0.0
    assert int(tc.count_nonzero(cl(ones)).numpy()) == n - 2  # 16,777,219: odd, not a float32
    flags = np.zeros(n, np.bool_)
    flags[BIG + 4] = True
    assert bool(tc.any(cl(flags)).numpy()) and not bool(tc.any(cl(flags[:BIG + 4])).numpy())
    assert not bool(tc.all(cl(~flags)).numpy()) and bool(tc.all(cl(~flags[:BIG + 4])).numpy())
    assert_no_fallbacks()


# --- copies, casts and elementwise selection --------------------------------------------------


def test_transpose_copy_cast_where_and_compare() -> None:
    """A transposed 4,097 x 4,099 view made contiguous, then cast, compared and selected."""
    x = normal((4097, 4099)) * 1000
    t = cl(x)
    tt = tc.permute_dims(t, (1, 0))  # a view: no kernel yet
    flat = tc.reshape(tt, (-1,))  # a view cannot be flattened in place: the copy kernel runs
    np.testing.assert_array_equal(flat.numpy(), x.T.reshape(-1))
    np.testing.assert_array_equal((tt + 0.0).numpy(), x.T)  # an elementwise kernel reading the view
    ints = tc.astype(tt, tc.int32)
    assert ints.dtype == tc.int32
    np.testing.assert_array_equal(ints.numpy(), x.T.astype(np.int32))  # truncation toward zero
    wide = tc.astype(t, tc.float64)
    assert wide.dtype == tc.float64
    np.testing.assert_array_equal(wide.numpy(), x.astype(np.float64))
    y = normal(x.shape) * 1000
    u = cl(y)
    np.testing.assert_array_equal((t > u).numpy(), x > y)
    np.testing.assert_array_equal(tc.where(tt > 0, tt, tc.permute_dims(u, (1, 0))).numpy(), np.where(x.T > 0, x.T, y.T))
    assert_no_fallbacks()


def test_roll_repeat_tile_and_triangles() -> None:
    """The copy kernels that compute a source index per element: roll, repeat, tile, tril, triu."""
    n = BIG + 3
    x = normal(n)
    t = cl(x)
    for shift in (12345, -(BIG + 1)):
        np.testing.assert_array_equal(tc.roll(t, shift).numpy(), np.roll(x, shift))
    part = x[:(1 << 22) + 1]
    np.testing.assert_array_equal(tc.repeat(cl(part), 4).numpy(), np.repeat(part, 4))  # 16,777,220
    row = x[:4099].reshape(1, 4099)
    np.testing.assert_array_equal(tc.tile(cl(row), (4097, 1)).numpy(), np.tile(row, (4097, 1)))
    m = normal((4097, 4099))
    tm = cl(m)
    np.testing.assert_array_equal(tc.tril(tm, k=-3).numpy(), np.tril(m, k=-3))
    np.testing.assert_array_equal(tc.triu(tm, k=2).numpy(), np.triu(m, k=2))
    assert_no_fallbacks()


def test_fused_elementwise_chain_in_graph_mode() -> None:
    """tc.function fuses an elementwise chain over a transposed 4,099 x 4,097 view and a
    broadcast row into one generated kernel (strided loads past 2**24)."""

    def f(x: tc.Tensor, b: tc.Tensor) -> tc.Tensor:
        t = tc.permute_dims(x, (1, 0))
        return tc.tanh(t * 0.5 + b) * F.sigmoid(t) - b * b

    x, b = normal((4097, 4099)), normal(4097)
    xt, bt = cl(x), cl(b)
    traced = tc.function(f)
    traced(xt, bt)  # traces
    out = traced(xt, bt)  # runs the graph
    assert any(node.kind == "fused" for node in traced.graph(xt, bt).nodes)
    t64, b64 = x.T.astype(np.float64), b.astype(np.float64)
    expected = np.tanh(t64 * 0.5 + b64) / (1 + np.exp(-t64)) - b64 * b64
    close(out, expected.astype(np.float32), rtol=1e-5, atol=1e-6)  # a few ulps per op
    assert_no_fallbacks()


# --- gathers and scatter-adds -----------------------------------------------------------------


def test_take_of_2_pow_24_indices_and_its_scatter_add_gradient() -> None:
    """tc.take with 16,777,221 repeated indices into 1,000 entries, and its gradient."""
    n, m = BIG + 5, 1000
    table = normal(m)
    idx = rng.integers(0, m, n)
    idx[-1] = m - 1
    g = eighths(n)  # ~16,800 terms per entry, each a multiple of 1/8: exact in any order
    tt = cl(table)
    with tc.GradientTape() as tape:
        tape.watch(tt)
        y = tc.take(tt, cl(idx))
    got = y.numpy()
    assert got.shape == (n,)
    np.testing.assert_array_equal(got, table[idx])
    expected = np.bincount(idx, weights=g, minlength=m).astype(np.float32)
    np.testing.assert_array_equal(tape.gradient(y, tt, output_gradients=cl(g)).numpy(), expected)
    assert_no_fallbacks()


def test_embedding_and_take_along_axis_forward_and_backward() -> None:
    """embedding of 2**21 + 1 rows of 8 (16,777,224 outputs) and take_along_axis on 4,097 x
    4,099, with the scatter-add gradients of both."""
    rows, dim, vocab = (1 << 21) + 1, 8, 1001
    weight = normal((vocab, dim))
    idx = rng.integers(0, vocab, rows)
    idx[-1] = vocab - 1
    g = eighths((rows, dim))
    wt = cl(weight)
    with tc.GradientTape() as tape:
        tape.watch(wt)
        y = F.embedding(cl(idx), wt)
    np.testing.assert_array_equal(y.numpy(), weight[idx])
    expected = np.zeros((vocab, dim))
    for j in range(dim):
        expected[:, j] = np.bincount(idx, weights=g[:, j], minlength=vocab)
    np.testing.assert_array_equal(tape.gradient(y, wt, output_gradients=cl(g)).numpy(), expected.astype(np.float32))

    x = normal((4097, 4099))
    along = rng.integers(0, 4099, x.shape)
    g = eighths(x.shape)
    xt = cl(x)
    with tc.GradientTape() as tape:
        tape.watch(xt)
        y = tc.take_along_axis(xt, cl(along), axis=1)
    np.testing.assert_array_equal(y.numpy(), np.take_along_axis(x, along, axis=1))
    expected = np.zeros(x.shape)
    np.add.at(expected, (np.arange(x.shape[0])[:, None], along), g)
    np.testing.assert_array_equal(tape.gradient(y, xt, output_gradients=cl(g)).numpy(), expected.astype(np.float32))
    assert_no_fallbacks()


# --- conv2d and pooling -----------------------------------------------------------------------


def _on_both(fn: Callable[..., tc.Tensor], arrays: list[np.ndarray], g: np.ndarray) -> list[list[np.ndarray]]:
    """``fn(*arrays)`` and its gradients (for output gradient ``g``) on opencl:0 and on cpu."""
    results = []
    for device in (CL, "cpu"):
        ts = [tc.asarray(a, device=device) for a in arrays]
        with tc.GradientTape() as tape:
            tape.watch(ts)
            y = fn(*ts)
        grads = tape.gradient(y, ts, output_gradients=tc.asarray(g, device=device))
        assert str(y.device) == str(tc.Device(device)) and all(str(d.device) == str(y.device) for d in grads)
        results.append([y.numpy()] + [d.numpy() for d in grads])
    return results


def test_conv2d_forward_and_backward_with_2_pow_24_outputs() -> None:
    """16 images of 257 x 257, 1 -> 16 channels, 3 x 3: 16,908,544 outputs, cheap compute."""
    x, w, b = normal((16, 1, 257, 257)), normal((16, 1, 3, 3)), normal(16)
    g = normal((16, 16, 257, 257))
    ours, ref = _on_both(lambda x, w, b: F.conv2d(x, w, b, padding=1), [x, w, b], g)
    assert [a.shape for a in ours] == [a.shape for a in ref] == [g.shape, x.shape, w.shape, b.shape]
    # output: 9 terms; input gradient: 144 terms (~12). The weight gradient sums k = 1,056,784
    # products (sums ~1,000) in blocks (see the linear test): max error ~1.4e-3, the cpu's
    # float32 ~1.1e-3; allow 6e-3, which one unblocked running total (drifting like eps * k / 5)
    # would exceed. The bias gradient is the reduction engine's (chunked partials, ~1e-6
    # relative). A lost image or row of pixels would be off by >= 16.
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours[1], ref[1], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours[2], ref[2], rtol=0, atol=6e-3)
    np.testing.assert_allclose(ours[3], ref[3], rtol=1e-5, atol=1e-2)
    assert_no_fallbacks()


def test_pooling_forward_and_backward_on_2_pow_24_inputs() -> None:
    """max_pool2d and avg_pool2d (overlapping windows, padding) of 16 x 16 x 257 x 257."""
    x = normal((16, 16, 257, 257))  # 16,908,544 elements
    ours, ref = _on_both(lambda x: F.max_pool2d(x, 2), [x], normal((16, 16, 128, 128)))
    for a, e in zip(ours, ref):
        assert a.shape == e.shape and a.dtype == e.dtype
        np.testing.assert_array_equal(a, e)  # a choice and a copy: exact
    ours, ref = _on_both(lambda x: F.avg_pool2d(x, 3, stride=2, padding=1), [x], normal((16, 16, 129, 129)))
    for a, e in zip(ours, ref):
        assert a.shape == e.shape and a.dtype == e.dtype
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)  # 9 (or 4) terms and a division
    assert_no_fallbacks()


# --- fused optimizer updates ------------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda p: tc.optim.SGD(p, lr=0.1, momentum=0.9),
                                  lambda p: tc.optim.Adam(p, lr=1e-2)], ids=["sgd_momentum", "adam"])
def test_fused_optimizer_step_on_2_pow_24_parameters(make: Callable[[list], tc.optim.Optimizer]) -> None:
    """Two sgd_step / adam_step updates of (1 << 24) + 3 parameters, as on cpu."""
    n = BIG + 3
    p0, grads = normal(n), [normal(n), normal(n)]
    params = {}
    for device in (CL, "cpu"):
        v = tc.Variable(p0, device=device)
        opt = make([v])
        for g in grads:
            opt.step([tc.asarray(g, device=device)])
        params[device] = v.numpy()
    assert params[CL].shape == (n,)
    assert not np.array_equal(params[CL], p0)
    # a few float32 ops per element (Adam: a square root and a division): a few ulps
    np.testing.assert_allclose(params[CL], params["cpu"], rtol=1e-5, atol=1e-6)
    assert_no_fallbacks()
