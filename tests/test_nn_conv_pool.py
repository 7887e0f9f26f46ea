"""conv2d, max_pool2d and avg_pool2d on every device against loop-based NumPy references.

Gradient checks use float64 finite differences on tiny inputs (N=2, a few channels, 5x5).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tensorcore as tc
import tensorcore.nn.functional as F  # noqa: N812 - PyTorch's conventional alias

from support import assert_matches, check_grad, check_op

rng = np.random.default_rng(11)


def _pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d_loops(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1) -> np.ndarray:
    """The definition of a grouped, strided, dilated 2-D cross-correlation, one output at a time."""
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, _, hp, wp = xp.shape
    o, cg, kh, kw = w.shape
    ho, wo = (hp - dh * (kh - 1) - 1) // sh + 1, (wp - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, o, ho, wo), dtype=np.result_type(x, w))
    per_group = o // groups
    for ni in range(n):
        for oi in range(o):
            grp = oi // per_group
            for i in range(ho):
                for j in range(wo):
                    patch = xp[ni, grp * cg:(grp + 1) * cg, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw]
                    out[ni, oi, i, j] = np.sum(patch * w[oi]) + (0 if b is None else b[oi])
    return out


def pool_loops(x: np.ndarray, kernel: Any, stride: Any = None, padding: Any = 0, mode: str = "max") -> np.ndarray:
    """Max or average (zero padding counted) over each window, one output at a time."""
    (kh, kw) = _pair(kernel)
    (sh, sw), (ph, pw) = _pair(kernel if stride is None else stride), _pair(padding)
    fill = -np.inf if mode == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    n, c, hp, wp = xp.shape
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    out = np.zeros((n, c, ho, wo), dtype=x.dtype)
    for i in range(ho):
        for j in range(wo):
            win = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            out[:, :, i, j] = win.max(axis=(2, 3)) if mode == "max" else win.mean(axis=(2, 3))
    return out


# (in_channels, out_channels, kernel, stride, padding, dilation, groups, bias)
CONV_CASES = [
    (3, 4, 3, 1, 0, 1, 1, True),
    (2, 3, 3, 2, 1, 1, 1, False),
    (2, 2, (2, 3), (1, 2), (2, 1), 1, 1, True),
    (2, 2, 2, 1, 1, 2, 1, True),
    (4, 6, 3, 2, 2, 2, 2, True),
    (4, 4, 3, 1, 1, 1, 4, False),
]


def _conv_arrays(case: tuple) -> tuple[list, dict]:
    c, o, k, stride, padding, dilation, groups, bias = case
    kh, kw = _pair(k)
    arrays = [rng.standard_normal((2, c, 5, 5)), rng.standard_normal((o, c // groups, kh, kw))]
    if bias:
        arrays.append(rng.standard_normal(o))
    return arrays, {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_forward(case: tuple, device: str) -> None:
    arrays, params = _conv_arrays(case)
    check_op(lambda *a: F.conv2d(*a, **params), lambda *a: conv2d_loops(*a, **params),
             [a.astype(np.float32) for a in arrays], device, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_gradient(case: tuple, device: str) -> None:
    arrays, params = _conv_arrays(case)
    check_grad(lambda *a: F.conv2d(*a, **params), arrays, device)


@pytest.mark.parametrize("params", [{"stride": 1, "padding": 1}, {"stride": 2, "padding": 0, "dilation": 2}, {"groups": 2, "padding": 1}])
def test_conv2d_second_order_gradient(params: dict, device: str) -> None:
    r = rng.standard_normal((1, 2, 6, 6))

    def grads(x: tc.Tensor, w: tc.Tensor) -> tuple:
        with tc.GradientTape() as inner:
            inner.watch([x, w])
            y = F.conv2d(x, w, **params)
            total = tc.sum(y * y * tc.asarray(r[..., :y.shape[2], :y.shape[3]], device=x.device))
        return tuple(inner.gradient(total, [x, w]))

    check_grad(grads, [rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((2, 2 // params.get("groups", 1), 2, 2))], device)


def test_conv2d_backward_ops_have_the_expected_shapes_when_stride_drops_rows(device: str) -> None:
    # 6 rows, kernel 3, stride 2: the last row is never read, and its gradient is zero
    x = tc.asarray(rng.standard_normal((1, 1, 6, 6)), device=device)
    w = tc.asarray(rng.standard_normal((1, 1, 3, 3)), device=device)
    with tc.GradientTape() as tape:
        tape.watch(x)
        y = F.conv2d(x, w, stride=2)
    gx = tape.gradient(y, x).numpy()
    assert y.shape == (1, 1, 2, 2) and gx.shape == (1, 1, 6, 6)
    assert not gx[0, 0, 5].any() and not gx[0, 0, :, 5].any()


def test_conv2d_bad_inputs(device: str) -> None:
    x = tc.zeros((2, 3, 5, 5), device=device)
    with pytest.raises(tc.OpError, match=r"conv2d: input \(2, 3, 5, 5\) has 3 channels, but weight \(4, 2, 3, 3\) expects 2"):
        F.conv2d(x, tc.zeros((4, 2, 3, 3), device=device))
    with pytest.raises(tc.OpError, match=r"conv2d: groups=2 must divide both the input channels \(3"):
        F.conv2d(x, tc.zeros((4, 1, 3, 3), device=device), groups=2)
    with pytest.raises(tc.OpError, match=r"conv2d: input must be 4-D \(N, C, H, W\), got shape \(3, 5, 5\)"):
        F.conv2d(x[0], tc.zeros((4, 3, 3, 3), device=device))
    with pytest.raises(tc.OpError, match=r"conv2d: bias must have shape \(4,\)"):
        F.conv2d(x, tc.zeros((4, 3, 3, 3), device=device), tc.zeros((3,), device=device))
    with pytest.raises(tc.OpError, match=r"conv2d: kernel \(7, 7\).*does not fit"):
        F.conv2d(x, tc.zeros((4, 3, 7, 7), device=device))
    with pytest.raises(tc.OpError, match=r"conv2d: stride must be >= 1"):
        F.conv2d(x, tc.zeros((4, 3, 3, 3), device=device), stride=0)
    with pytest.raises(tc.OpError, match=r"conv2d: padding must be an int or a pair of ints"):
        F.conv2d(x, tc.zeros((4, 3, 3, 3), device=device), padding="same")


# (kernel, stride, padding)
POOL_CASES = [(2, None, 0), (3, 2, 1), ((2, 3), (1, 2), (1, 1)), (3, 1, 1), (2, 3, 0)]


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pool_forward_and_gradient(case: tuple, mode: str, device: str) -> None:
    kernel, stride, padding = case
    fn = F.max_pool2d if mode == "max" else F.avg_pool2d
    x = rng.standard_normal((2, 3, 5, 5))
    check_op(lambda a: fn(a, kernel, stride, padding), lambda a: pool_loops(a, kernel, stride, padding, mode),
             [x.astype(np.float32)], device)
    check_grad(lambda a: fn(a, kernel, stride, padding), [x], device)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pool_second_order_gradient(mode: str, device: str) -> None:
    fn = F.max_pool2d if mode == "max" else F.avg_pool2d

    def grad(x: tc.Tensor) -> tc.Tensor:
        with tc.GradientTape() as inner:
            inner.watch(x)
            y = fn(x * x, 3, 1, 1)
            total = tc.sum(y * y)
        return inner.gradient(total, x)

    check_grad(grad, [rng.standard_normal((1, 2, 4, 4))], device)


def test_max_pool_gradient_goes_to_the_maximum_and_accumulates_over_windows(device: str) -> None:
    x_np = np.zeros((1, 1, 3, 3), dtype=np.float32)
    x_np[0, 0, 1, 1] = 5.0  # the maximum of all four overlapping 2x2 windows
    x = tc.asarray(x_np, device=device)
    with tc.GradientTape() as tape:
        tape.watch(x)
        y = F.max_pool2d(x, 2, stride=1)
    assert_matches(y, np.full((1, 1, 2, 2), 5.0, dtype=np.float32))
    expected = np.zeros_like(x_np)
    expected[0, 0, 1, 1] = 4.0
    assert_matches(tape.gradient(y, x), expected)


def test_max_pool_propagates_nan_and_pools_integers(device: str) -> None:
    x = tc.asarray(np.array([[[[1.0, np.nan], [3.0, 2.0]]]]), device=device)
    with tc.GradientTape() as tape:
        tape.watch(x)
        y = F.max_pool2d(x, 2)
    assert np.isnan(y.numpy()).all()
    assert_matches(tape.gradient(y, x), np.array([[[[0.0, 1.0], [0.0, 0.0]]]]))
    ints = np.arange(16, dtype=np.int32).reshape(1, 1, 4, 4)
    check_op(lambda a: F.max_pool2d(a, 3, 2, 1), lambda a: pool_loops(a.astype(np.float64), 3, 2, 1).astype(np.int32), [ints], device)


def _first_maximum_indices(x: np.ndarray) -> np.ndarray:
    """For each 2x2 window (stride 2) the flat plane index of its first maximum (or first NaN)
    in row-major order, one window at a time."""
    n, c, h, w = x.shape
    out = np.zeros((n, c, h // 2, w // 2), np.int64)
    for idx in np.ndindex(out.shape):
        ni, ci, i, j = idx
        taps = [(2 * i + a, 2 * j + b) for a in range(2) for b in range(2)]
        values = [x[ni, ci, r, q] for r, q in taps]
        nan = [t for t, v in zip(taps, values) if isinstance(v, np.floating) and np.isnan(v)]
        best = nan[0] if nan else next(t for t, v in zip(taps, values) if v == max(values))
        out[idx] = best[0] * w + best[1]
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.uint8, np.int64])
@pytest.mark.parametrize("data", ["ties", "signed zeros", "infinities", "nan", "transposed view"])
def test_the_2x2_max_pool_picks_what_the_scan_of_every_tap_picks(dtype: Any, data: str) -> None:
    # The 2x2 stride-2 pool on cpu runs in two pairwise stages (_max_pool_2x2); it must give the
    # values and indices, bit for bit, of the general scan over taps (_max_pool_taps), which
    # chooses each window's first maximum (ties, -0.0 against 0.0, NaN) in row-major order.
    from tensorcore.ops.pooling import _max_pool_ref, _max_pool_taps

    floating = np.dtype(dtype).kind == "f"
    if data in ("signed zeros", "infinities", "nan") and not floating:
        pytest.skip("a float case")
    # odd sizes (the last row and column are not pooled), and planes wide enough for NumPy's
    # vector loops (which must break -0.0/+0.0 ties as its scalar ones do)
    x = rng.integers(0, 3, (2, 3, 7, 9) if data != "signed zeros" else (2, 2, 6, 67)).astype(dtype)
    if data == "signed zeros":
        x = np.where(rng.random(x.shape) < 0.5, -0.0, 0.0).astype(dtype) - (x == 2).astype(dtype)
    elif data == "infinities":
        x[rng.random(x.shape) < 0.3] = np.inf
        x[rng.random(x.shape) < 0.3] = -np.inf
    elif data == "nan":
        x[rng.random(x.shape) < 0.1] = np.nan
    elif data == "transposed view":
        x = np.swapaxes(rng.integers(0, 3, (2, 3, 9, 7)).astype(dtype), 2, 3)
    attrs = {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0)}
    values, indices = _max_pool_ref(x, **attrs)
    want_values, want_indices = _max_pool_taps(x, **attrs)
    assert values.dtype == want_values.dtype and indices.dtype == want_indices.dtype
    assert values.tobytes() == want_values.tobytes()  # bit for bit: signs of zeros and NaNs too
    np.testing.assert_array_equal(indices, want_indices)
    np.testing.assert_array_equal(indices, _first_maximum_indices(x))


@pytest.mark.parametrize("dtype", [np.bool_, np.complex64])
def test_the_2x2_max_pool_refuses_what_every_max_pool_refuses(dtype: Any) -> None:
    from tensorcore.ops.pooling import _max_pool_ref

    for kernel in ((2, 2), (3, 3)):  # the fast path and the scan over taps alike
        with pytest.raises(ValueError):
            _max_pool_ref(np.zeros((1, 1, 6, 6), dtype), kernel_size=kernel, stride=kernel, padding=(0, 0))


def test_pool_bad_inputs(device: str) -> None:
    x = tc.zeros((1, 2, 4, 4), device=device)
    with pytest.raises(tc.OpError, match=r"max_pool2d: padding \(2, 2\) must be at most half the kernel size \(3, 3\)"):
        F.max_pool2d(x, 3, padding=2)
    with pytest.raises(tc.OpError, match=r"avg_pool2d: input must be 4-D"):
        F.avg_pool2d(x[0], 2)
    with pytest.raises(tc.OpError, match=r"max_pool2d: kernel \(5, 5\) does not fit"):
        F.max_pool2d(x, 5)
    with pytest.raises(tc.OpError, match=r"avg_pool2d: input 0 has dtype int64"):
        F.avg_pool2d(tc.zeros((1, 1, 2, 2), dtype=tc.int64, device=device), 2)
