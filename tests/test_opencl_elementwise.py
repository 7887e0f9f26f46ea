"""OpenCL elementwise kernels against the cpu reference (NumPy): views, broadcasting, scalars,
mixed dtypes, special values, empty / size-1 / odd sizes, one large array, and no fallbacks.

The reference of each op is its own ``Op.reference`` (the cpu kernel), so dtypes and edge cases
are judged exactly as on cpu.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorcore as tc
from tensorcore.dispatch import apply, wrap
from tensorcore.ops.registry import OPS, native_ops

from support import assert_matches

DEV = "opencl:0"
if DEV not in [str(info.device) for info in tc.devices()]:
    pytest.skip("no OpenCL device opencl:0 (install pyopencl and an OpenCL driver such as PoCL)",
                allow_module_level=True)

rng = np.random.default_rng(7)
POS, UNIT, ABOVE1 = (0.5, 2.0), (-0.8, 0.8), (1.5, 3.0)  # input domains
FLOAT_UNARY = {
    "abs": None, "negative": None, "positive": None, "sign": None, "exp": None, "expm1": None,
    "log": POS, "log1p": POS, "log2": POS, "log10": POS, "sqrt": POS, "square": None, "reciprocal": POS,
    "sin": None, "cos": None, "tan": UNIT, "asin": UNIT, "acos": UNIT, "atan": None, "sinh": None,
    "cosh": None, "tanh": None, "asinh": None, "acosh": ABOVE1, "atanh": UNIT, "floor": None, "ceil": None,
    "trunc": None, "round": None, "isnan": None, "isinf": None, "isfinite": None, "signbit": None,
    "logical_not": None, "relu": None, "sigmoid": None,
}
INT_UNARY = ["abs", "negative", "positive", "sign", "square", "floor", "ceil", "trunc", "round", "isnan",
             "isinf", "isfinite", "signbit", "logical_not", "bitwise_invert", "relu"]
FLOAT_BINARY = ["add", "subtract", "multiply", "divide", "pow", "maximum", "minimum", "atan2", "hypot",
                "logaddexp", "copysign", "floor_divide", "remainder", "nextafter", "equal", "not_equal",
                "less", "less_equal", "greater", "greater_equal", "logical_and", "logical_or", "logical_xor"]
INT_BINARY = ["add", "subtract", "multiply", "pow", "maximum", "minimum", "floor_divide", "remainder",
              "equal", "not_equal", "less", "less_equal", "greater", "greater_equal", "logical_and",
              "logical_or", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift",
              "bitwise_right_shift"]
# integer ops also checked with a scalar on either side (each kernel costs ~50 ms to compile once)
SCALAR_CHECKS = {"subtract", "pow", "floor_divide", "remainder", "less", "bitwise_right_shift", "bitwise_xor"}


def sample(shape: tuple[int, ...], domain: tuple | None = None, dtype: type = np.float32) -> np.ndarray:
    """Random values in ``domain`` (standard normal when None), with a few exact halves for round."""
    x = rng.uniform(*domain, shape) if domain else rng.standard_normal(shape) * 2
    if domain is None and x.size > 3:
        x.flat[:3] = [0.5, -1.5, 2.5]
    return x.astype(dtype)


def ref(name: str, *args: object, **attrs: object) -> np.ndarray:
    """The cpu reference of op ``name``, warnings (overflow, divide by zero) silenced."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return np.asarray(OPS[name].reference(*args, **attrs))


def run(name: str, *args: object, **attrs: object) -> tc.Tensor:
    """Op ``name`` through dispatch (the way every public function calls it)."""
    return apply(OPS[name], args, attrs)


def tol(dtype: np.dtype) -> dict:
    """Tolerances for a few ulps of ``dtype`` (PoCL's math library is not NumPy's)."""
    return {"rtol": 2e-6, "atol": 1e-6} if np.dtype(dtype) == np.float32 else {"rtol": 1e-13, "atol": 1e-13}


def on(x: np.ndarray) -> tc.Tensor:
    """``x`` copied to the OpenCL device."""
    return tc.asarray(x, device=DEV)


def no_fallbacks() -> None:
    """Every op since the test began ran natively on OpenCL (none fell back to cpu)."""
    stats = tc.placement_stats()
    assert not stats["fallbacks"], stats["fallbacks"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(FLOAT_UNARY))
def test_float_unary_on_transposed_and_sliced_views(name: str, dtype: type) -> None:
    base = sample((9, 7), FLOAT_UNARY[name], dtype)
    if name in ("isnan", "isinf", "isfinite", "signbit", "sign", "logical_not", "relu", "abs"):
        base.flat[3:9] = [np.nan, np.inf, -np.inf, -0.0, 0.0, np.nan]
    x = on(base)
    for view, expected in ((tc.permute_dims(x, (1, 0)), base.T), (x[1::2, 2:], base[1::2, 2:]), (x, base)):
        assert_matches(run(name, view), ref(name, expected), **tol(dtype))
    no_fallbacks()


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.int64, np.uint32, np.bool_])
def test_integer_and_bool_unary(dtype: type) -> None:
    base = rng.integers(-100, 100, (6, 5)).astype(dtype)
    if np.dtype(dtype) == np.int8:
        base.flat[0] = -128  # abs and negative wrap like NumPy
    x = on(base)
    names = ["abs", "floor", "ceil", "trunc", "isnan", "isinf", "isfinite", "signbit", "logical_not", "bitwise_invert"]
    for name in INT_UNARY if base.dtype.kind != "b" else names:
        assert_matches(run(name, tc.permute_dims(x, (1, 0))), ref(name, base.T))
        assert_matches(run(name, x), ref(name, base))
    no_fallbacks()


@pytest.mark.parametrize("name", FLOAT_BINARY)
def test_float_binary_broadcasting_views_and_scalars(name: str) -> None:
    a_np, b_np = sample((7, 5), POS), sample((5,), POS)
    if name in ("subtract", "maximum", "minimum", "copysign", "logaddexp", "floor_divide", "remainder", "equal"):
        a_np, b_np = sample((7, 5)), sample((5,))
        b_np[0] = a_np[1, 0]
    a, b = on(a_np), on(b_np)
    at = tc.permute_dims(on(a_np.T.copy()), (1, 0))  # same values as a, transposed strides
    cases = [
        (at, b, a_np, b_np),  # strided (transposed) with a broadcast row
        (a, tc.broadcast_to(b, (7, 5)), a_np, np.broadcast_to(b_np, (7, 5))),  # zero strides
        (a[::2], b[None, :], a_np[::2], b_np[None, :]),  # slice, size-1 dim
        (a, a, a_np, a_np),  # contiguous fast path
        (a, 1.5, a_np, 1.5), (1.5, a, 1.5, a_np), (at, 2, a_np, 2), (3, at, 3, a_np),  # scalars either side
    ]
    for x, y, x_np, y_np in cases:
        assert_matches(run(name, x, y), ref(name, x_np, y_np), rtol=1e-5, atol=1e-6)
    no_fallbacks()


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.int64, np.uint64])
def test_integer_binary(dtype: type) -> None:
    info, bits = np.iinfo(dtype), 8 * np.dtype(dtype).itemsize
    signed = info.min < 0
    a_np = rng.integers(max(info.min, -50), 50, (6, 4)).astype(dtype)
    b_np = rng.integers(max(info.min, -5), 6, (4,)).astype(dtype)
    b_np[0] = 0  # // and % by zero give 0
    if signed:
        a_np[0, 1], b_np[1] = info.min, -1  # INT_MIN // -1 wraps instead of trapping
    # shift counts past the width (and negative ones) give 0, or -1 for negative x >> n, as in NumPy
    shifts = np.array([-1 if signed else 0, 2, bits, bits + 3]).astype(dtype)
    a, at = on(a_np), tc.permute_dims(on(a_np.T.copy()), (1, 0))
    for name in INT_BINARY:
        y_np = shifts if name.endswith("shift") else b_np
        cases = [(at, on(y_np), a_np, y_np)]
        if name in SCALAR_CHECKS:
            cases += [(a, 3, a_np, 3), (7, on(y_np), 7, y_np)]
        if name == "pow" and signed:
            cases = [(a, 3, a_np, 3)]  # a signed exponent tensor may hold negatives (NumPy raises): cpu decides
        for x, y, x_np, y_ref in cases:
            assert_matches(run(name, x, y), ref(name, x_np, y_ref))
    no_fallbacks()


def test_mixed_dtypes_follow_numpy_promotion() -> None:
    f32, i32 = sample((4, 3)), rng.integers(-9, 9, (4, 3)).astype(np.int32)
    i8, u8 = rng.integers(-9, 9, (3,)).astype(np.int8), rng.integers(0, 9, (3,)).astype(np.uint8)
    mask = f32 > 0
    cases = [("add", i32, f32), ("multiply", f32, i8), ("subtract", i8, u8), ("add", i32, 1.5),
             ("multiply", mask, f32), ("multiply", mask, 0.5), ("add", mask, mask), ("maximum", u8, True),
             ("divide", i32, 2.0), ("less", i32, 0.5), ("equal", f32, i8), ("pow", f32, 2),
             ("remainder", i32, -4), ("floor_divide", -7, i8), ("bitwise_and", mask, mask), ("minimum", i8, u8)]
    for name, x, y in cases:
        xs = on(x) if isinstance(x, np.ndarray) else x
        ys = on(y) if isinstance(y, np.ndarray) else y
        assert_matches(run(name, xs, ys), ref(name, x, y), rtol=1e-6)
    no_fallbacks()


def test_float_special_values() -> None:
    v = np.array([0.0, -0.0, 1.0, -1.0, 2.5, -2.5, 0.5, -0.5, 1.5, np.inf, -np.inf, np.nan], np.float32)
    a_np, b_np = np.repeat(v, v.size), np.tile(v, v.size)  # every pair
    a, b = on(a_np), on(b_np)
    for name in ("maximum", "minimum", "floor_divide", "remainder", "logaddexp", "nextafter", "copysign",
                 "pow", "atan2", "hypot", "divide", "equal", "less", "logical_xor"):
        assert_matches(run(name, a, b), ref(name, a_np, b_np), rtol=1e-6, atol=0)
    for name in ("round", "sign", "floor", "ceil", "trunc", "relu", "sigmoid", "isnan", "isinf", "signbit"):
        assert_matches(run(name, a), ref(name, a_np), rtol=1e-6, atol=0)
    no_fallbacks()


def test_where_views_scalars_and_promotion() -> None:
    c_np = sample((5, 4)) > 0
    x_np, y_np = sample((4, 5)), rng.integers(-3, 3, (4,)).astype(np.int32)
    c, x, y = on(c_np), on(x_np), on(y_np)
    xt = tc.permute_dims(x, (1, 0))
    for args, expected in [((c, xt, y), (c_np, x_np.T, y_np)), ((c, xt, 0.0), (c_np, x_np.T, 0.0)),
                           ((c, 1, y), (c_np, 1, y_np)), ((c[::2], 2.5, -1), (c_np[::2], 2.5, -1)),
                           ((c, x_np.T.copy(), y), (c_np, x_np.T, y_np))]:
        args = tuple(on(a) if isinstance(a, np.ndarray) else a for a in args)
        assert_matches(tc.where(*args), np.where(*expected))
    no_fallbacks()


def test_clip_and_astype() -> None:
    f_np = sample((5, 6))
    f_np[0, :2] = np.nan, -np.inf
    i_np = rng.integers(-120, 120, (5, 6)).astype(np.int8)
    f, i = on(f_np), on(i_np)
    for x, x_np in ((tc.permute_dims(f, (1, 0)), f_np.T), (f, f_np), (i, i_np)):
        for lo, hi in ((-0.5, 0.5), (None, 1.0), (-1, None), (2, -2)):
            if x_np.dtype.kind == "i" and isinstance(lo or hi, float):
                continue
            assert_matches(run("clip", x, lo=lo, hi=hi), ref("clip", x_np, lo=lo, hi=hi))
    assert_matches(run("clip", i, lo=-1000, hi=50), ref("clip", i_np, lo=-1000, hi=50))  # bound beyond int8
    casts = {np.float32: (np.int32, np.uint8, np.int64, np.bool_, np.float64, np.float32),
             np.int8: (np.float32, np.uint32, np.bool_, np.int64), np.bool_: (np.float32, np.int32)}
    bases = {np.float32: sample((5, 6)) * 50, np.int8: i_np, np.bool_: f_np > 0}
    bases[np.float32][0, :2] = -1.0, -0.5  # -1.0 -> 255 as uint8, as NumPy gives
    for src, targets in casts.items():
        base = bases[src]
        for dst in targets:
            t = on(base)
            assert_matches(tc.astype(tc.permute_dims(t, (1, 0)), dst), base.T.astype(dst))
            assert_matches(tc.astype(t, dst), base.astype(dst))
    x = on(f_np)
    assert tc.astype(x, tc.float32, copy=False)._data is x._data  # no copy, as NumPy
    no_fallbacks()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_and_their_backward_ops(dtype: type) -> None:
    x_np, g_np = sample((6, 5), dtype=dtype) * 4, sample((6, 5), dtype=dtype)
    x_np[0, :3] = 0.0, 40.0, -40.0
    y_np = ref("sigmoid", x_np)
    x, g, y = on(x_np), on(g_np), on(y_np)
    xt, gt = tc.permute_dims(on(x_np.T.copy()), (1, 0)), tc.permute_dims(on(g_np.T.copy()), (1, 0))
    for view in (x, xt):
        assert_matches(run("relu", view), ref("relu", x_np), **tol(dtype))
        assert_matches(run("sigmoid", view), y_np, **tol(dtype))
        for approximate in ("none", "tanh"):
            # against float64 references: the kernels avoid the cancellation that costs the
            # float32 reference up to 1e-6 where tanh saturates
            expected = ref("gelu", x_np.astype(np.float64), approximate=approximate).astype(dtype)
            assert_matches(run("gelu", view, approximate=approximate), expected, rtol=1e-5, atol=1e-6)
            expected = ref("gelu_backward", g_np.astype(np.float64), x_np.astype(np.float64), approximate=approximate)
            assert_matches(run("gelu_backward", gt, view, approximate=approximate), expected.astype(dtype), rtol=1e-5, atol=1e-6)
    for gg in (g, gt):
        assert_matches(run("relu_backward", gg, x), ref("relu_backward", g_np, x_np))
        assert_matches(run("sigmoid_backward", gg, y), ref("sigmoid_backward", g_np, y_np), rtol=1e-5, atol=1e-7)
    no_fallbacks()


def test_empty_size_one_and_zero_dim() -> None:
    e_np, row = np.zeros((0, 3), np.float32), sample((3,))
    e = on(e_np)
    assert_matches(tc.exp(e), np.exp(e_np))
    assert_matches(e + on(row), e_np + row)
    assert_matches(tc.where(e > 0, e, 1.0), np.where(e_np > 0, e_np, np.float32(1.0)))
    assert_matches(tc.astype(e, tc.int32), e_np.astype(np.int32))
    one, col = sample((1, 1, 5)), sample((5, 1, 1))
    assert_matches(on(one) * on(col), one * col)
    s = sample(())
    assert_matches(tc.sin(on(s)), np.sin(s))
    assert_matches(on(s) - on(row), s - row)
    assert_matches(2.0 ** on(s), ref("pow", 2.0, s))
    no_fallbacks()


def test_odd_sizes_split_rows_across_work_items() -> None:
    # > 4096 elements: several work-items, whose ranges start mid-row of the strided odometer
    a_np, b_np = sample((131, 67)), sample((67, 1, 5))
    a3 = sample((5, 67, 31))
    a, b = on(a_np), on(b_np)
    assert_matches(tc.permute_dims(a, (1, 0)) - 1.0, a_np.T - np.float32(1.0))
    assert_matches(a + tc.permute_dims(on(a_np.T.copy()), (1, 0)), a_np + a_np)
    assert_matches(b + tc.permute_dims(on(a3), (1, 2, 0)), b_np + a3.transpose(1, 2, 0))
    assert_matches(tc.multiply(on(a_np.ravel()[:4097]), 3), a_np.ravel()[:4097] * 3)
    no_fallbacks()


def test_strided_kernels_on_hand_made_views() -> None:
    """Views built directly (offset, permuted and zero strides), independent of the movement ops."""
    base_np = sample((40,))
    base = on(base_np)
    data = base._data
    cases = [((4, 3), (1, 4), 2), ((3, 5), (0, 2), 5), ((2, 2, 3), (12, 1, 4), 1)]
    for shape, strides, offset in cases:
        view = wrap(data.view(shape, strides, offset), base.device)
        view_np = np.lib.stride_tricks.as_strided(base_np[offset:], shape, [s * 4 for s in strides])
        assert_matches(tc.tanh(view), np.tanh(view_np), rtol=1e-5)
        assert_matches(view * view, view_np * view_np)
        assert_matches(tc.where(view > 0, view, -1.0), np.where(view_np > 0, view_np, np.float32(-1)))
    no_fallbacks()


def test_large_array_over_2_to_the_24() -> None:
    n = (1 << 24) + 3
    a_np = np.arange(n, dtype=np.float32)
    a = on(a_np)
    out = (a + a).numpy()
    assert out.shape == (n,) and out[-1] == 2 * a_np[-1] and out[12345] == 24690.0
    m = n - n % 3
    out = tc.multiply(a[:m].reshape((-1, 3)), on(np.array([1.0, 0.0, -1.0], np.float32))).numpy()  # broadcast row
    assert out.shape == (m // 3, 3) and out[-1, 0] == a_np[m - 3] and out[-1, 2] == -a_np[m - 1] and out[-1, 1] == 0.0
    no_fallbacks()


def test_every_elementwise_op_has_an_opencl_kernel() -> None:
    required = set(FLOAT_UNARY) | set(FLOAT_BINARY) | set(INT_BINARY) | {
        "bitwise_invert", "where", "clip", "astype", "gelu", "relu_backward", "sigmoid_backward", "gelu_backward"}
    assert required - set(native_ops("opencl")) == set()


def test_inputs_without_kernels_fall_back_visibly() -> None:
    h = np.arange(4, dtype=np.float16)
    i = np.arange(1, 5, dtype=np.int32)
    u = np.arange(4, dtype=np.uint8)
    assert_matches(on(h) + on(h), h + h)  # float16: no kernels
    assert_matches(on(i) ** on(i), i**i)  # signed integer exponents may be negative (NumPy raises)
    assert_matches(on(u) < 300, u < 300)  # an int beyond uint8: NumPy's special case decides
    fallbacks = tc.placement_stats()["fallbacks"]
    assert {"add@opencl:0", "pow@opencl:0", "less@opencl:0"} <= set(fallbacks)


@pytest.mark.parametrize("name", ["exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "sin", "cos", "tan",
                                  "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_math_is_right_for_small_values_beside_huge_ones_in_one_vector(name: str, dtype: type) -> None:
    """The vector math path computes 16 floats at once: one huge lane must not spoil the others
    (PoCL's float32 vector sin/cos/tan did: sin(1e-8) beside 1e10 came out 0.0105)."""
    numpy_name = {"asin": "arcsin", "acos": "arccos", "atan": "arctan", "asinh": "arcsinh",
                  "acosh": "arccosh", "atanh": "arctanh"}.get(name, name)
    for small in (1e-8, 1e-4, 0.3):
        for big in (1e10, 1e30, np.inf, np.nan):
            host = np.full(33, small, dtype)
            host[5] = big
            with np.errstate(all="ignore"):
                expected = getattr(np, numpy_name)(host)
            got = getattr(tc, name)(tc.asarray(host, device="opencl")).numpy()
            np.testing.assert_allclose(got, expected, rtol=2e-6 if dtype == np.float32 else 1e-12, equal_nan=True,
                                       err_msg=f"{name}({small}) beside {big}")
