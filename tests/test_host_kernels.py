"""The host kernels that are faster than their one-line NumPy form: ``host_gemm.gemm`` (the
faster of two equivalent BLAS calls, chosen by timing) and ``_nn.relu_into`` (max against a
block of zeros). Each is checked against the NumPy call it replaces."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from tensorcore.ops import host_gemm
from tensorcore.ops._nn import relu_into


@pytest.fixture
def autotune():
    """Autotuning on with no choices made; the previous setting is restored afterwards."""
    was = host_gemm.autotune_enabled()
    host_gemm.set_autotune(True)
    yield
    host_gemm.set_autotune(was)


def _operands(rng, a_shape, b_shape, dtype, order="C"):
    def draw(shape):
        x = rng.standard_normal(shape)
        if np.dtype(dtype).kind == "c":
            x = x + 1j * rng.standard_normal(shape)
        return np.asarray(x.astype(dtype), order=order)

    return draw(a_shape), draw(b_shape)


SHAPES = [
    ((64, 128), (128, 128)),  # M < N: the shape where the transposed call wins on some CPUs
    ((128, 64), (64, 32)),  # M > N
    ((8, 16, 40), (40, 24)),  # a stack times one matrix (linear on 3-D input)
    ((2, 1, 12, 30), (3, 30, 50)),  # broadcast stacks
    ((3, 5), (5, 7)),  # too small to time: the direct call
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64])
@pytest.mark.parametrize("a_shape,b_shape", SHAPES)
def test_both_calls_equal_numpy_matmul_and_are_c_contiguous(autotune, a_shape, b_shape, dtype):
    a, b = _operands(np.random.default_rng(0), a_shape, b_shape, dtype)
    want = np.matmul(a, b)
    tol = 1e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-12
    for got in (host_gemm.gemm(a, b), host_gemm.transposed_call(a, b)):
        assert got.shape == want.shape and got.dtype == want.dtype
        assert got.flags.c_contiguous
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


def test_operands_in_fortran_order_and_transposed_views(autotune):
    rng = np.random.default_rng(1)
    a, b = _operands(rng, (64, 96), (96, 128), np.float32, order="F")
    w = rng.standard_normal((128, 96)).astype(np.float32)
    for x, y in ((a, b), (a, w.T), (np.ascontiguousarray(a), w.T)):
        np.testing.assert_allclose(host_gemm.gemm(x, y), np.matmul(x, y), rtol=1e-4, atol=1e-4)


def test_the_choice_is_made_once_per_shape_and_layout(autotune):
    rng = np.random.default_rng(2)
    a, b = _operands(rng, (64, 128), (128, 128), np.float32)
    first = host_gemm.gemm(a, b)
    assert len(host_gemm.choices()) == 1
    for _ in range(3):  # the same call every time: the same bits
        assert np.array_equal(host_gemm.gemm(a, b), first)
    host_gemm.gemm(a, np.asfortranarray(b))  # another layout is another decision
    assert len(host_gemm.choices()) == 2
    chosen = host_gemm.choice_for(a, b)
    assert chosen is not None
    call = host_gemm.transposed_call if chosen else np.matmul
    assert np.array_equal(first, call(a, b))


def test_small_products_and_equal_m_n_are_not_timed(autotune, monkeypatch):
    timed = []
    monkeypatch.setattr(host_gemm, "_seconds", lambda call, a, b: timed.append(call) or 1.0)
    rng = np.random.default_rng(3)
    for a_shape, b_shape in (((3, 5), (5, 7)), ((128, 64), (64, 128))):  # too small; M == N
        a, b = _operands(rng, a_shape, b_shape, np.float32)
        assert np.array_equal(host_gemm.gemm(a, b), np.matmul(a, b))
        assert host_gemm.choice_for(a, b) is None
    assert timed == [] and host_gemm.choices() == {}


def test_without_autotuning_every_product_is_numpys_own_call():
    was = host_gemm.autotune_enabled()
    host_gemm.set_autotune(False)
    try:
        a, b = _operands(np.random.default_rng(4), (64, 128), (128, 256), np.float32)
        assert np.array_equal(host_gemm.gemm(a, b), np.matmul(a, b))
        assert host_gemm.choices() == {}
    finally:
        host_gemm.set_autotune(was)


def test_autotuning_is_off_unless_the_environment_variable_is_1():
    code = "from tensorcore.ops import host_gemm; print(host_gemm.autotune_enabled())"
    env = {k: v for k, v in os.environ.items() if k != "TENSORCORE_GEMM_AUTOTUNE"}
    for value, want in ((None, "False"), ("0", "False"), ("1", "True")):
        run_env = env if value is None else {**env, "TENSORCORE_GEMM_AUTOTUNE": value}
        out = subprocess.run([sys.executable, "-c", code], env=run_env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == want, value


def test_other_dtypes_and_vectors_go_to_numpy_unchanged(autotune):
    rng = np.random.default_rng(5)
    ai, bi = rng.integers(-5, 5, (64, 96)), rng.integers(-5, 5, (96, 128))
    assert np.array_equal(host_gemm.gemm(ai, bi), ai @ bi)
    a, b = _operands(rng, (64, 96), (96, 128), np.float32)
    mixed = host_gemm.gemm(a, b.astype(np.float64))
    assert mixed.dtype == np.float64 and np.array_equal(mixed, a @ b.astype(np.float64))
    assert host_gemm.choices() == {}


def test_operands_that_do_not_fit_raise_numpys_error_and_nothing_is_kept(autotune):
    a, b = _operands(np.random.default_rng(6), (64, 96), (95, 128), np.float32)
    with pytest.raises(ValueError, match="matmul"):
        host_gemm.gemm(a, b)
    assert host_gemm.choices() == {}


def test_the_timed_calls_give_no_warning_of_their_own(autotune):
    a, b = _operands(np.random.default_rng(7), (64, 128), (128, 256), np.float32)
    a[0, 0] = np.inf
    b[0, :] = 0.0  # inf * 0: invalid, in the first row of the product
    with pytest.warns(RuntimeWarning) as caught:
        got = host_gemm.gemm(a, b)
    assert len(caught) == 1  # the real call's warning, not one per timed call
    assert np.isnan(got[0]).all() and not np.isnan(got[1:]).any()


@pytest.mark.parametrize("direct,transposed,want", [
    ([10, 10, 10], [5, 5, 5], True),  # twice as fast
    ([10, 10, 10], [9, 9, 9], False),  # within the margin: stay with the direct call
    ([10, 10, 10], [5, 50, 50], False),  # one lucky run does not decide
    ([10, 90, 10, 10, 10], [5, 5, 5, 5, 5], True),  # nor one slow run of the other
])
def test_the_decision_takes_medians_and_a_margin(direct, transposed, want):
    assert host_gemm.decide(direct, transposed) is want


SPECIAL = np.array([-0.0, 0.0, np.nan, -np.nan, -1.5, 2.5, np.inf, -np.inf])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("size", [8, 1000, (1 << 16) + 3, 3 * (1 << 16)])  # one block, several, a partial last one
def test_relu_into_gives_numpy_maximums_bits(dtype, size):
    x = np.resize(SPECIAL, size).astype(dtype)
    np.random.default_rng(8).shuffle(x)
    want = np.maximum(x, 0)
    bits = {2: np.uint16, 4: np.uint32, 8: np.uint64}[np.dtype(dtype).itemsize]
    assert np.array_equal(relu_into(x).view(bits), want.view(bits))
    out = np.empty_like(x)
    assert relu_into(x, out) is out and np.array_equal(out.view(bits), want.view(bits))
    y = x.copy()
    relu_into(y, y)  # in place, as the epilogue and memory planning run it
    assert np.array_equal(y.view(bits), want.view(bits))
    x2 = x.reshape(-1, 2) if size % 2 == 0 else x.reshape(1, -1)
    assert relu_into(x2).shape == x2.shape


@pytest.mark.parametrize("size", [1000, 3 * (1 << 16)])  # the small path and the block path
def test_relu_into_keeps_numpys_rules_for_out(size):
    rng = np.random.default_rng(13)
    x = rng.standard_normal((1, size)).astype(np.float32)
    wide = np.full((2, size), 7.0, np.float32)  # broadcast into every row
    relu_into(x, wide)
    assert np.array_equal(wide, np.broadcast_to(np.maximum(x, 0), (2, size)))
    buf = rng.standard_normal(size + 1).astype(np.float32)
    want = buf.copy()
    np.maximum(want[:size], 0, out=want[1:])  # out overlaps x one element on: NumPy buffers it
    relu_into(buf[:size], buf[1:])
    assert np.array_equal(buf, want)
    strided = np.zeros((1, 2 * size), np.float32)[:, ::2]  # a non-contiguous out
    relu_into(x, strided)
    assert np.array_equal(strided, np.maximum(x, 0))


def test_relu_into_on_views_other_dtypes_and_scalars():
    x = np.random.default_rng(9).standard_normal((40, 30)).astype(np.float32)
    view = x[:, ::2]  # not contiguous: NumPy's own call
    assert np.array_equal(relu_into(view), np.maximum(view, 0))
    for a in (np.array([-2, 0, 3], np.int16), np.array([True, False])):
        got = relu_into(a)
        assert got.dtype == a.dtype and np.array_equal(got, np.maximum(a, np.zeros((), a.dtype)))
    assert relu_into(-2.0) == 0.0 and relu_into(3) == 3


@pytest.mark.parametrize("a_shape,b_shape,want", [
    ((3, 5), (5, 7), 0),  # too small to be worth timing
    ((128, 64), (64, 128), 0),  # M == N: both calls are the same problem
    ((64, 128), (128, 256), host_gemm.ROUNDS),
    ((64, 64, 288), (64, 288, 256), host_gemm.BIG_ROUNDS),  # a stack: its work counts whole (a conv's forward)
    ((64, 4096), (4096, 4096), 0),  # too big: each timed call would cost ~0.1 s
])
def test_the_rounds_follow_the_work(a_shape, b_shape, want):
    a, b = (np.broadcast_to(np.float32(0), s) for s in (a_shape, b_shape))  # shapes only: no memory
    assert host_gemm._rounds(a, b) == want


def test_blas_is_warmed_once_per_dtype_before_its_first_product(monkeypatch):
    warmed = []
    real = host_gemm.warm_blas
    monkeypatch.setattr(host_gemm, "warm_blas", lambda dtype=np.float32: warmed.append(np.dtype(dtype)) or real(dtype))
    was = host_gemm.autotune_enabled()
    host_gemm.set_autotune(False)  # the warm-up does not depend on autotuning, and forgets what was warmed
    try:
        rng = np.random.default_rng(10)
        small = _operands(rng, (3, 5), (5, 7), np.float64)
        assert np.array_equal(host_gemm.gemm(*small), np.matmul(*small))  # NumPy's own call, bit for bit
        assert warmed == [np.dtype(np.float64)]
        host_gemm.gemm(*_operands(rng, (64, 96), (96, 128), np.float64))
        ints = rng.integers(0, 5, (4, 6)), rng.integers(0, 5, (6, 3))
        assert np.array_equal(host_gemm.gemm(*ints), np.matmul(*ints))
        assert warmed == [np.dtype(np.float64)]  # once for float64; integers never reach BLAS
    finally:
        host_gemm.set_autotune(was)

def test_layouts_beyond_the_cap_take_numpys_call_untimed(autotune, monkeypatch):
    monkeypatch.setattr(host_gemm, "MAX_SHAPES", 1)
    rng = np.random.default_rng(11)
    host_gemm.gemm(*_operands(rng, (3, 5), (5, 7), np.float32))  # fills the one place
    a, b = _operands(rng, (64, 128), (128, 256), np.float32)
    assert np.array_equal(host_gemm.gemm(a, b), np.matmul(a, b))
    assert host_gemm.choices() == {} and host_gemm.choice_for(a, b) is None  # the new one: not timed


def test_each_blas_thread_count_gets_its_own_decision_and_warm_up(autotune, monkeypatch):
    from threadpoolctl import threadpool_limits

    warmed = []
    real = host_gemm.warm_blas
    monkeypatch.setattr(host_gemm, "warm_blas", lambda dtype=np.float32: warmed.append(dtype) or real(dtype))
    a, b = _operands(np.random.default_rng(12), (64, 96), (96, 128), np.float32)
    with threadpool_limits(1):
        one = host_gemm.gemm(a, b)
        assert host_gemm.choice_for(a, b) is not None
        one_thread = host_gemm._threads()
    with threadpool_limits(2):
        if host_gemm._threads() == one_thread:  # OPENBLAS_NUM_THREADS=1, or one core: no second count
            pytest.skip("NumPy's BLAS does not take a second thread count here")
        assert host_gemm.choice_for(a, b) is None  # not decided at two threads yet
        two = host_gemm.gemm(a, b)
        assert host_gemm.choice_for(a, b) is not None
    assert len(host_gemm.choices()) == 2 and len(warmed) == 2
    np.testing.assert_allclose(one, two, rtol=1e-4, atol=1e-4)
