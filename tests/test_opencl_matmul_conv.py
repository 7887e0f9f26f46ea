"""The OpenCL GEMM (matmul, linear, linear_backward_weight), conv2d and pooling kernels
against NumPy and the cpu reference: edge tiles, batching and broadcasting, strided inputs,
float64, empty dimensions, and no cpu fallback for any of these ops on float32."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import tensorcore as tc
from tensorcore.dispatch import apply
from tensorcore.ops.registry import OPS

DEV = "opencl:0"
if DEV not in [str(info.device) for info in tc.devices()]:
    pytest.skip("opencl:0 is unavailable here (no OpenCL driver, e.g. PoCL, or the backend failed to start)",
                allow_module_level=True)

rng = np.random.default_rng(5)
OUR_OPS = ("matmul", "linear", "linear_backward_weight", "conv2d", "conv2d_backward_input", "conv2d_backward_weight",
           "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward")


def _on(a: np.ndarray, device: str = DEV) -> tc.Tensor:
    return tc.asarray(a, device=device)


def _no_fallbacks() -> None:
    fallbacks = tc.placement_stats()["fallbacks"]
    assert not [k for k in fallbacks if k.split("@")[0] in OUR_OPS], fallbacks


def _run(op: str, arrays: list, attrs: dict | None = None, device: str = DEV) -> Any:
    """Op ``op`` through dispatch on ``device``; NumPy results (a list for several outputs)."""
    out = apply(OPS[op], tuple(_on(a, device) if isinstance(a, np.ndarray) else a for a in arrays), attrs or {})
    if isinstance(out, tuple):
        return [o.numpy() for o in out]
    assert str(out.device) == str(tc.Device(device))
    return out.numpy()


def _close(actual: Any, expected: Any, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    if isinstance(expected, list):
        for a, e in zip(actual, expected):
            _close(a, e, rtol, atol)
        return
    assert actual.shape == expected.shape and actual.dtype == expected.dtype, (actual.shape, actual.dtype, expected.shape, expected.dtype)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def _same_as_cpu(op: str, arrays: list, attrs: dict | None = None, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    _close(_run(op, arrays, attrs), _run(op, arrays, attrs, "cpu"), rtol, atol)


# --- matmul -----------------------------------------------------------------------------

def test_matmul_edge_tiles_in_every_dimension() -> None:
    sizes = (1, 7, 33, 65, 127)
    for m in sizes:
        for n in sizes:
            for k in (sizes if m == n else (m % 64 + 1,)):
                a = rng.standard_normal((m, k), dtype=np.float32)
                b = rng.standard_normal((k, n), dtype=np.float32)
                _close(tc.matmul(_on(a), _on(b)).numpy(), a @ b, atol=1e-4)
    _no_fallbacks()


@pytest.mark.parametrize("shapes", [((5,), (5,)), ((5,), (5, 3)), ((3, 5), (5,)), ((2, 3, 4, 5), (5, 6)),
                                    ((3, 1, 4, 5), (2, 5, 6)), ((4, 5), (3, 5, 2)), ((2, 1, 3, 7, 9), (4, 1, 9, 40)),
                                    ((5,), (2, 5, 3)), ((2, 3, 5), (5,))], ids=str)
def test_matmul_1d_batched_and_broadcast(shapes: tuple) -> None:
    a = rng.standard_normal(shapes[0], dtype=np.float32)
    b = rng.standard_normal(shapes[1], dtype=np.float32)
    _close(tc.matmul(_on(a), _on(b)).numpy(), np.matmul(a, b), atol=1e-4)
    _no_fallbacks()


def _view(base: np.ndarray, view: np.ndarray) -> tc.Tensor:
    """``view`` (a NumPy view of ``base``) as the same strided view of ``base`` on the device."""
    from tensorcore.dispatch import wrap

    data = _on(base)._data
    item = base.itemsize
    offset = (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // item
    return wrap(data.view(view.shape, tuple(s // item for s in view.strides), offset), tc.Device(DEV))


def test_matmul_strided_inputs() -> None:
    a = rng.standard_normal((3, 40, 70), dtype=np.float32)
    b = rng.standard_normal((3, 50, 40), dtype=np.float32)
    cases = [
        (np.swapaxes(a, -1, -2), np.swapaxes(b, -1, -2)),  # both transposed
        (b[:, 3:40:2], a[1:2, :, 5:66:3]),  # offsets and steps, broadcast batch
        (a[0].T, b[2].T),
        (b[1, 7], a[2, :, 1:]),  # 1-D with an offset
        (np.broadcast_to(b[0, :1], (3, 4, 40)), a[:, :, ::-1]),  # stride 0 rows, negative strides
    ]
    for x, y in cases:
        out = tc.matmul(_view(_base(x, a, b), x), _view(_base(y, a, b), y))
        _close(out.numpy(), np.matmul(x, y), atol=1e-4)
    _no_fallbacks()


def _base(view: np.ndarray, *bases: np.ndarray) -> np.ndarray:
    return next(base for base in bases if np.shares_memory(view, base))


def test_matmul_float64_and_empty_dims() -> None:
    a = rng.standard_normal((2, 37, 19))
    b = rng.standard_normal((19, 45))
    _close(tc.matmul(_on(a), _on(b)).numpy(), a @ b, rtol=1e-12, atol=1e-12)
    _close(tc.matmul(_on(b.T), _on(a[1].T)).numpy(), b.T @ a[1].T, rtol=1e-12, atol=1e-12)
    for sa, sb in [((0, 4), (4, 3)), ((3, 4), (4, 0)), ((3, 0), (0, 5)), ((0, 3, 4), (4, 2)), ((0,), (0,))]:
        x = rng.standard_normal(sa, dtype=np.float32)
        y = rng.standard_normal(sb, dtype=np.float32)
        _close(tc.matmul(_on(x), _on(y)).numpy(), np.matmul(x, y))
    _no_fallbacks()


def test_matmul_large() -> None:
    a = rng.standard_normal((512, 512), dtype=np.float32)
    b = rng.standard_normal((512, 512), dtype=np.float32)
    # float32 sums of 512 products of unit normals, in another order than BLAS: ~1e-5 relative
    _close(tc.matmul(_on(a), _on(b)).numpy(), (a.astype(np.float64) @ b).astype(np.float32), rtol=1e-3, atol=2e-3)
    _no_fallbacks()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_long_sums_are_blocked_and_as_accurate_as_numpy(dtype: type) -> None:
    """Past matmul.LONG_K products, the GEMM adds KBLOCK-long register sums into a per-tile
    total (the float32 error of one running sum grows with K). Both the plain k loop and
    conv2d's two-level (image, pixel) k are covered, with blocks that end mid-image."""
    from tensorcore.backends.opencl_ops.matmul import KBLOCK, LONG_K

    k = 3 * KBLOCK * 41 + 7  # > LONG_K, and not a multiple of the block
    assert k > LONG_K
    a, b = rng.random((9, k)).astype(dtype), rng.random((k, 5)).astype(dtype)
    exact = np.array([[math.fsum(a[i].astype(np.float64) * b[:, j]) for j in range(5)] for i in range(9)])
    ours = tc.matmul(_on(a), _on(b)).numpy()
    theirs = np.abs((a @ b) - exact).max()  # NumPy's own error, in this dtype
    assert np.abs(ours - exact).max() <= 4 * theirs + 4 * np.finfo(dtype).eps * np.abs(exact).max()
    # conv2d_backward_weight: k = images (5) x output pixels (24 x 24 = 576), 2,880 products;
    # 576 > KBLOCK, so blocks end inside images, and a block carries over into the next image
    x = rng.standard_normal((5, 2, 24, 24)).astype(dtype)
    g = rng.standard_normal((5, 3, 24, 24)).astype(dtype)
    params = {"stride": (1, 1), "padding": (1, 1), "dilation": (1, 1), "groups": 1, "kernel_size": (3, 3)}
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == np.float32 else {"rtol": 1e-11, "atol": 1e-11}
    _same_as_cpu("conv2d_backward_weight", [x, g], params, **tol)
    _no_fallbacks()


def test_matmul_integers_fall_back() -> None:
    a = np.arange(12, dtype=np.int32).reshape(3, 4)
    _close(tc.matmul(_on(a), _on(a.T.copy())).numpy(), a @ a.T)
    assert "matmul@opencl:0" in tc.placement_stats()["fallbacks"]



@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_other_register_tile_on_any_cpu(monkeypatch: pytest.MonkeyPatch, dtype: type) -> None:
    """The GEMM's tile follows the device's SIMD width (256-bit: VW 8 floats, 6 rows; 512-bit:
    VW 16, 8 rows). Either build runs on any CPU (PoCL splits wider vectors, or runs narrower
    ones), so the build this machine does not use is checked here (the other tests check its
    own): edge tiles in both orientations, C written transposed, the bias and the activation
    epilogues, and conv2d's packers."""
    from tensorcore import registry

    dev = registry.get_backend("opencl").device(0)
    monkeypatch.setattr(dev, "simd_bytes", 96 - dev.simd_bytes)  # 32 <-> 64
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-10}
    for m, n, k in [(1, 1, 1), (7, 33, 19), (65, 17, 40), (13, 127, 9)]:
        a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
        _close(tc.matmul(_on(a), _on(b)).numpy(), a @ b, **tol)
        _close(tc.matmul(_on(a.T.copy()).mT, _on(b.T.copy()).mT).numpy(), a @ b, **tol)  # strided operands
        w, bias = rng.standard_normal((n, k)).astype(dtype), rng.standard_normal(n).astype(dtype)
        _same_as_cpu("linear", [a, w, bias], {"activation": "relu"}, **tol)
        g = rng.standard_normal((m, n)).astype(dtype)
        _same_as_cpu("linear_backward_weight", [g, a], **tol)
    x = rng.standard_normal((2, 3, 9, 8)).astype(dtype)
    wt = rng.standard_normal((5, 3, 3, 3)).astype(dtype)
    params = {"stride": (1, 1), "padding": (1, 1), "dilation": (1, 1), "groups": 1}
    _same_as_cpu("conv2d", [x, wt, rng.standard_normal(5).astype(dtype)], params, **tol)
    g = rng.standard_normal((2, 5, 9, 8)).astype(dtype)
    _same_as_cpu("conv2d_backward_input", [g, wt], {"input_size": (9, 8), **params}, **tol)
    _same_as_cpu("conv2d_backward_weight", [x, g], {"kernel_size": (3, 3), **params}, **tol)
    _no_fallbacks()

# --- linear -----------------------------------------------------------------------------

@pytest.mark.parametrize("shapes", [((128, 784), (512, 784)), ((3, 20, 33), (70, 33)), ((7,), (5, 7)),
                                    ((300, 20), (10, 20)), ((4, 0), (6, 0))], ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_and_its_weight_gradient(shapes: tuple, bias: bool) -> None:
    x = rng.standard_normal(shapes[0], dtype=np.float32)
    w = rng.standard_normal(shapes[1], dtype=np.float32)
    b = rng.standard_normal(shapes[1][:1], dtype=np.float32)
    expected = x @ w.T + (b if bias else 0)
    _close(_run("linear", [x, w, b] if bias else [x, w]), expected.astype(np.float32), rtol=1e-4, atol=1e-4)
    g = rng.standard_normal(expected.shape, dtype=np.float32)
    rows = int(np.prod(x.shape[:-1]))  # not reshape(-1, 0), which NumPy refuses (as the cpu kernel does)
    expected = g.reshape(rows, -1).T @ x.reshape(rows, x.shape[-1])
    _close(_run("linear_backward_weight", [g, x]), expected, rtol=1e-4, atol=1e-4)
    _no_fallbacks()


def test_linear_float64_and_transposed_weight() -> None:
    x = rng.standard_normal((9, 13))
    w = rng.standard_normal((13, 5))
    out = apply(OPS["linear"], (_on(x), tc.matrix_transpose(_on(w)), _on(np.ones(5))))
    _close(out.numpy(), x @ w + 1, rtol=1e-12, atol=1e-12)
    _no_fallbacks()


# --- conv2d -----------------------------------------------------------------------------

# (N, C, H, W, O, kernel, stride, padding, dilation, groups)
CONV_CASES = [
    (2, 3, 9, 8, 5, (3, 3), (1, 1), (0, 0), (1, 1), 1),
    (2, 4, 10, 11, 6, (3, 3), (2, 2), (1, 1), (1, 1), 2),
    (1, 2, 12, 9, 3, (2, 3), (1, 2), (2, 1), (2, 1), 1),
    (3, 4, 7, 7, 4, (3, 3), (1, 1), (1, 1), (1, 1), 4),
    (2, 6, 6, 40, 9, (1, 1), (1, 1), (0, 0), (1, 1), 3),
    (1, 3, 5, 5, 2, (5, 5), (1, 1), (0, 0), (1, 1), 1),
    (3, 3, 8, 8, 5, (3, 3), (1, 1), (1, 1), (1, 1), 1),  # 64 pixels: whole panels per image
]


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_forward_and_backward(case: tuple, dtype: type) -> None:
    n, c, h, w, o, k, stride, padding, dilation, groups = case
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((o, c // groups) + k).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    params = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-10}
    _same_as_cpu("conv2d", [x, wt, b], params, **tol)
    _same_as_cpu("conv2d", [x, wt], params, **tol)
    y = _run("conv2d", [x, wt], params, "cpu")
    g = rng.standard_normal(y.shape).astype(dtype)
    _same_as_cpu("conv2d_backward_input", [g, wt], {"input_size": (h, w), **params}, **tol)
    _same_as_cpu("conv2d_backward_weight", [x, g], {"kernel_size": k, **params}, **tol)
    _no_fallbacks()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", [(6, 10, 9, 7, 6, (3, 3), (1, 1), (1, 1), (1, 1), 2),
                                  (4, 8, 11, 10, 5, (3, 2), (2, 1), (1, 0), (2, 1), 1)], ids=str)
def test_conv2d_weight_gradient_split_over_slices_of_images(monkeypatch: pytest.MonkeyPatch, case: tuple,
                                                            dtype: type) -> None:
    """A long K (images x output pixels) is split into equal slices of images, each summed into
    its own partial gradient from its slice of the packed panels, and the partials added:
    forced here on small inputs (a slice of a few rows), with groups, strides and dilation, and
    more than one packed panel per group (C/groups x kH x kW = 45 and 48 columns)."""
    from tensorcore.backends.opencl_ops import nn_conv

    n, c, h, w, o, k, stride, padding, dilation, groups = case
    used = []
    split = nn_conv._k_slices
    monkeypatch.setattr(nn_conv, "SLICE_BYTES", 2048)
    monkeypatch.setattr(nn_conv, "_k_slices", lambda *a: used.append(split(*a)) or used[-1])
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    params = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    wt = rng.standard_normal((o, c // groups) + k).astype(dtype)
    g = rng.standard_normal(_run("conv2d", [x, wt], params, "cpu").shape).astype(dtype)
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-10}
    _same_as_cpu("conv2d_backward_weight", [x, g], {"kernel_size": k, **params}, **tol)
    assert used and 1 < used[0] <= n and n % used[0] == 0, used
    _no_fallbacks()


def test_conv2d_weight_gradient_of_a_cnn_sized_batch_is_split() -> None:
    """At the default slice size: 8 images of 32 x 32 output pixels split into 4 slices (72
    columns: three panels)."""
    from tensorcore.backends.opencl_ops import nn_conv

    assert nn_conv._k_slices(8, 32 * 32, 32 * 4) == 4 and nn_conv._k_slices(8, 4, 32 * 4) == 1
    assert nn_conv._k_slices(0, 32 * 32, 32 * 4) == 1  # no images: one (empty) launch
    x = rng.standard_normal((8, 8, 32, 32), dtype=np.float32)
    g = rng.standard_normal((8, 4, 32, 32), dtype=np.float32)
    params = {"stride": (1, 1), "padding": (1, 1), "dilation": (1, 1), "groups": 1, "kernel_size": (3, 3)}
    _same_as_cpu("conv2d_backward_weight", [x, g], params, rtol=1e-4, atol=2e-4)
    _no_fallbacks()


@pytest.mark.parametrize("packer", ["by rows", "by channels"])
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_weight_gradient_with_either_packer(monkeypatch: pytest.MonkeyPatch, case: tuple, packer: str) -> None:
    """The weight gradient's columns are packed by panel rows for few images x channels and by
    channels otherwise (ROWS_BELOW); both packers, forced, give the cpu's gradient."""
    from tensorcore.backends.opencl_ops import nn_conv

    monkeypatch.setattr(nn_conv, "ROWS_BELOW", 1 << 30 if packer == "by rows" else 0)
    n, c, h, w, o, k, stride, padding, dilation, groups = case
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    params = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    g = rng.standard_normal(_run("conv2d", [x, rng.standard_normal((o, c // groups) + k).astype(np.float32)],
                                 params, "cpu").shape).astype(np.float32)
    _same_as_cpu("conv2d_backward_weight", [x, g], {"kernel_size": k, **params}, rtol=1e-4, atol=1e-4)
    _no_fallbacks()


@pytest.mark.parametrize("packer", ["by rows", "by channels"])
def test_conv2d_weight_gradient_of_a_channels_last_view(monkeypatch: pytest.MonkeyPatch, packer: str) -> None:
    """The packers read x through its strides: an NHWC array seen as NCHW (a view on the device)."""
    from tensorcore.backends.opencl_ops import nn_conv

    monkeypatch.setattr(nn_conv, "ROWS_BELOW", 1 << 30 if packer == "by rows" else 0)
    nhwc = rng.standard_normal((3, 9, 8, 6)).astype(np.float32)
    g = rng.standard_normal((3, 4, 9, 8)).astype(np.float32)
    attrs = {"kernel_size": (3, 3), "stride": (1, 1), "padding": (1, 1), "dilation": (1, 1), "groups": 2}
    x_view = tc.permute_dims(_on(nhwc), (0, 3, 1, 2))
    got = apply(OPS["conv2d_backward_weight"], (x_view, _on(g)), attrs).numpy()
    want = _run("conv2d_backward_weight", [np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2)), g], attrs, "cpu")
    _close(got, want, rtol=1e-4, atol=1e-4)
    _no_fallbacks()


def test_conv2d_in_chunks_of_images(monkeypatch: pytest.MonkeyPatch) -> None:
    from tensorcore.backends.opencl_ops import nn_conv

    monkeypatch.setattr(nn_conv, "CHUNK_BYTES", 4096)  # one image per launch
    x = rng.standard_normal((3, 4, 8, 8), dtype=np.float32)
    wt = rng.standard_normal((6, 2, 3, 3), dtype=np.float32)
    params = {"stride": (1, 1), "padding": (1, 1), "dilation": (1, 1), "groups": 2}
    _same_as_cpu("conv2d", [x, wt], params, rtol=1e-4, atol=1e-4)
    g = rng.standard_normal((3, 6, 8, 8), dtype=np.float32)
    _same_as_cpu("conv2d_backward_input", [g, wt], {"input_size": (8, 8), **params}, rtol=1e-4, atol=1e-4)
    _same_as_cpu("conv2d_backward_weight", [x, g], {"kernel_size": (3, 3), **params}, rtol=1e-4, atol=1e-4)
    _no_fallbacks()



@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_packers_agree_bit_for_bit(monkeypatch: pytest.MonkeyPatch, dtype: type) -> None:
    """Where output rows are whole vectors, the forward packs its columns row by row
    (im2col_panels_rows); it must pack exactly what the general packer packs: same bits out
    (padding, dilation, groups, a vertical stride, and a last panel half empty)."""
    from tensorcore.backends.opencl_ops import nn_conv

    # (N, C, H, W, O, kernel, stride, padding, dilation, groups): Wo = 16, 32 or 8
    cases = [(2, 3, 16, 16, 5, (3, 3), (1, 1), (1, 1), (1, 1), 1), (1, 4, 9, 34, 6, (3, 3), (2, 1), (0, 1), (1, 2), 2),
             (3, 2, 5, 8, 3, (1, 3), (1, 1), (0, 1), (1, 1), 1), (1, 2, 7, 10, 4, (2, 3), (1, 1), (2, 0), (2, 1), 1)]
    for n, c, h, w, o, k, stride, padding, dilation, groups in cases:
        x = rng.standard_normal((n, c, h, w)).astype(dtype)
        wt = rng.standard_normal((o, c // groups) + k).astype(dtype)
        params = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
        by_rows = _run("conv2d", [x, wt], params)
        with monkeypatch.context() as m:
            m.setattr(nn_conv, "vector_width", lambda dev, dt: 10**9)  # no row of whole vectors: the general packer
            general = _run("conv2d", [x, wt], params)
        assert by_rows.tobytes() == general.tobytes()
        _close(by_rows, _run("conv2d", [x, wt], params, "cpu"), **({"rtol": 1e-4, "atol": 1e-4} if dtype == np.float32 else {}))
    _no_fallbacks()

def test_conv2d_strided_input_and_gradient_through_the_tape() -> None:
    x = rng.standard_normal((2, 5, 9, 3), dtype=np.float32).transpose(0, 3, 1, 2)  # (2, 3, 5, 9), not contiguous
    wt = rng.standard_normal((4, 3, 3, 2), dtype=np.float32)
    results = []
    for device in (DEV, "cpu"):
        xt = tc.permute_dims(_on(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), device), (0, 3, 1, 2))
        wtt = _on(wt, device)
        with tc.GradientTape() as tape:
            tape.watch([xt, wtt])
            y = tc.nn.functional.conv2d(xt, wtt, stride=(2, 1), padding=1)
        results.append([y.numpy()] + [t.numpy() for t in tape.gradient(y, [xt, wtt])])
    _close(results[0], results[1], rtol=1e-4, atol=1e-4)
    _no_fallbacks()


# --- pooling ----------------------------------------------------------------------------

# (kernel, stride, padding)
POOL_CASES = [((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1)), ((2, 3), (1, 2), (1, 1)), ((3, 3), (1, 1), (1, 1)),
              ((2, 2), (3, 3), (0, 0))]


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pooling_forward_and_backward(case: tuple, dtype: type) -> None:
    kernel, stride, padding = case
    x = rng.standard_normal((2, 3, 9, 8)).astype(dtype)
    x[0, 0, 2, 2:4] = x[0, 0, 3, 2]  # ties: the first maximum wins
    attrs = {"kernel_size": kernel, "stride": stride, "padding": padding}
    _same_as_cpu("max_pool2d", [x], attrs)
    _same_as_cpu("avg_pool2d", [x], attrs)
    values, index = _run("max_pool2d", [x], attrs, "cpu")
    g = rng.standard_normal(values.shape).astype(dtype)
    overlapping = stride[0] < kernel[0] or stride[1] < kernel[1]
    _same_as_cpu("max_pool2d_backward", [g, index], {"input_size": (9, 8), "overlapping": overlapping})
    _same_as_cpu("avg_pool2d_backward", [g], {"input_size": (9, 8), **attrs})
    _no_fallbacks()


def test_max_pool_nan_and_integers() -> None:
    x = rng.standard_normal((1, 2, 6, 6), dtype=np.float32)
    x[0, 0, 1, 1] = x[0, 1, 4, 5] = np.nan
    attrs = {"kernel_size": (3, 3), "stride": (2, 2), "padding": (1, 1)}
    got, want = _run("max_pool2d", [x], attrs), _run("max_pool2d", [x], attrs, "cpu")
    np.testing.assert_array_equal(got[0], want[0])  # NaN in the same places
    np.testing.assert_array_equal(got[1], want[1])
    x = np.full((1, 1, 5, 5), -np.inf, dtype=np.float32)  # padding ties with -inf and comes first
    x[0, 0, 4, 4] = 1.0
    _same_as_cpu("max_pool2d", [x], attrs)
    for dtype in (np.int32, np.int64, np.uint8, np.int8):
        ints = rng.integers(0, 100, (2, 2, 5, 7)).astype(dtype)
        ints[0, 0, :2] = np.iinfo(dtype).min  # ties with the padding value
        _same_as_cpu("max_pool2d", [ints], attrs)
    _no_fallbacks()


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.uint8, np.int64])
def test_max_pool_2x2_vectors_are_bitwise_the_scalar_kernel(dtype: type) -> None:
    """The 2x2, stride 2 pool takes eight outputs per step from vector loads where rows are
    contiguous; a strided input takes the kernel's scalar window loop. Both must give the same
    indices and the same bits (NaN payloads, the sign of a zero) as each other, and the
    reference's indices and values: the first maximum of the window, then its first NaN, over
    ties, +-inf, signed zeros and NaN in every tap, in rows of 8n outputs and with tails."""
    attrs = {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0)}
    for h, w in [(2, 16), (5, 35), (8, 50), (3, 17)]:
        x = rng.integers(-2, 3, (2, 3, h, w)).astype(dtype)  # few values: many ties
        if np.dtype(dtype).kind == "f":
            specials = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0], dtype)
            x.flat[rng.choice(x.size, x.size // 3, replace=False)] = rng.choice(specials, x.size // 3)
        wide = np.zeros((2, 3, h, 2 * w), dtype)
        wide[..., ::2] = x
        strided = _on(wide)[..., ::2]  # the same values, every other element: the scalar loop
        vectors, scalar = _run("max_pool2d", [x], attrs), _run("max_pool2d", [strided], attrs)
        want = _run("max_pool2d", [x], attrs, "cpu")
        np.testing.assert_array_equal(vectors[1], scalar[1])
        np.testing.assert_array_equal(vectors[1], want[1])
        assert vectors[0].tobytes() == scalar[0].tobytes()
        np.testing.assert_array_equal(vectors[0], want[0])  # NaN where the reference has NaN
    _no_fallbacks()
