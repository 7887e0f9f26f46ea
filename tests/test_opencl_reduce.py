"""The OpenCL reductions, cumulative sums and softmax family against NumPy: strided views (permuted, sliced,
flipped, broadcast), any set of axes, keepdims, empty and size-1 dimensions, odd sizes, chunked
multi-pass launches, dtypes, NaN and ties, float32 accuracy at 2**24 elements, and no fallback."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorcore as tc
from tensorcore.dispatch import wrap

if "opencl:0" not in [str(d.device) for d in tc.devices()]:
    pytest.skip("no OpenCL device opencl:0 here (install an OpenCL driver, e.g. Debian's pocl-opencl-icd)",
                allow_module_level=True)

from support import assert_matches  # noqa: E402

DEV = tc.Device("opencl:0")
F = tc.nn.functional
rng = np.random.default_rng(7)


def on_device(view: np.ndarray) -> tc.Tensor:
    """``view`` (any NumPy view of a C-contiguous base) as the same strided view of a device buffer."""
    base = view
    while base.base is not None and isinstance(base.base, np.ndarray):
        base = base.base
    assert base.flags.c_contiguous
    t = tc.asarray(base, device=DEV)
    item = view.itemsize
    offset = (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // item
    data = t._data.view(view.shape, tuple(s // item for s in view.strides), offset)
    return wrap(data, t.device)


def views(x: np.ndarray) -> dict[str, np.ndarray]:
    """Strided views of a 3-D array (and of a bigger base it is cut from)."""
    big = np.repeat(np.repeat(x, 2, axis=0), 3, axis=2)
    return {
        "contiguous": x,
        "permuted": x.transpose(2, 0, 1),
        "sliced": big[1::2, 1:, ::3],
        "flipped": x[::-1, :, ::-1],
        "broadcast": np.broadcast_to(x[:, :1, :], x.shape),
    }


AXES = [None, 0, 1, 2, (0, 2), (0, 1), (1, 2), ()]
REDUCTIONS = {
    "sum": (tc.sum, np.sum), "prod": (tc.prod, np.prod), "mean": (tc.mean, np.mean), "var": (tc.var, np.var),
    "max": (tc.max, np.max), "min": (tc.min, np.min), "all": (tc.all, np.all), "any": (tc.any, np.any),
    "count_nonzero": (tc.count_nonzero, lambda a, axis, keepdims: np.asarray(
        np.count_nonzero(a, axis=axis, keepdims=keepdims), dtype=np.int64)),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reductions_on_views_over_every_axis_set(name: str) -> None:
    fn, ref = REDUCTIONS[name]
    x = rng.uniform(0.5, 1.5, (5, 7, 33)).astype(np.float32) * rng.choice([-1, 0, 1], (5, 7, 33))
    for kind, view in views(x).items():
        t = on_device(view)
        for axis in AXES:
            for keepdims in (False, True):
                got = fn(t, axis=axis, keepdims=keepdims)
                assert_matches(got, ref(view, axis=axis, keepdims=keepdims), rtol=2e-5, atol=1e-5), (kind, axis)


def test_reduced_axes_on_both_sides_of_a_kept_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """A conv bias gradient's reduction (N, H, W of NCHW) runs in two passes, the trailing axes
    first: the same results as NumPy for every reduction, NaN, a wider integer accumulator,
    keepdims, size-1 trailing axes (read in place then) and a flipped view (copied then)."""
    from tensorcore.backends.opencl_ops import reduce_core

    passes = []
    original = reduce_core._trailing_first
    monkeypatch.setattr(reduce_core, "_trailing_first", lambda x, axes: passes.append(original(x, axes)) or passes[-1])
    reduce_core._plan.cache_clear()  # _trailing_first runs while a launch plan is recorded: record again
    x = rng.uniform(-1.5, 1.5, (6, 5, 7, 9)).astype(np.float32)
    x[2, 1, 3, 4] = np.nan
    for name, (fn, ref) in REDUCTIONS.items():
        for keepdims in (False, True):
            assert_matches(fn(on_device(x), axis=(0, 2, 3), keepdims=keepdims),
                           ref(x, axis=(0, 2, 3), keepdims=keepdims), rtol=2e-5, atol=1e-5), name
    assert passes and all(p is not None for p in passes)  # every one took the two passes
    ints = rng.integers(0, 200, (4, 3, 5, 6)).astype(np.uint8)
    assert_matches(tc.sum(on_device(ints), axis=(0, 2, 3)), np.sum(ints, axis=(0, 2, 3)))  # uint64: no wrap at 255
    passes.clear()
    one = x[:, :, :1, :1]  # the trailing axes reduce one element each: no second pass
    assert_matches(tc.sum(on_device(one), axis=(0, 2, 3)), np.sum(one, axis=(0, 2, 3)), rtol=2e-5, atol=1e-5)
    flipped = x[::-1, :, :, ::-1]
    assert_matches(tc.sum(on_device(flipped), axis=(0, 2, 3)), np.sum(flipped, axis=(0, 2, 3)), rtol=2e-5, atol=1e-5)
    assert passes == [None]  # the flipped view: copied once, as before


@pytest.mark.parametrize("shape,axis", [
    ((3, 200_001), 1),      # long rows: several chunks per row, a second pass
    ((1, 300_007), None),   # one long row
    ((3001, 41), 0),        # columns: chunks of rows, passes over the partial rows
    ((70_001, 3), 0),       # narrow columns
    ((5, 4099, 17), (0, 1)),
    ((2, 9, 5000), 1),      # strips of columns wider than a work-item's
])
def test_chunked_reductions(shape: tuple, axis: object) -> None:
    x = rng.standard_normal(shape).astype(np.float32)
    t = tc.asarray(x, device=DEV)
    assert_matches(tc.sum(t, axis=axis), np.sum(x.astype(np.float64), axis=axis).astype(np.float32), rtol=1e-4, atol=1e-3)
    assert_matches(tc.max(t, axis=axis), np.max(x, axis=axis))
    assert_matches(tc.var(t, axis=axis), np.var(x.astype(np.float64), axis=axis).astype(np.float32), rtol=1e-4)
    assert_matches(tc.argmin(t, axis=None if axis is None or isinstance(axis, tuple) else axis),
                   np.argmin(x, axis=None if axis is None or isinstance(axis, tuple) else axis))


def test_dtypes_follow_numpy() -> None:
    for dtype in (np.uint8, np.int32, np.int64, np.bool_, np.float64):
        x = rng.integers(-3, 4, (4, 6, 5)).astype(dtype)
        for kind, view in views(x).items():
            t = on_device(view)
            for axis in (None, 1, (0, 2)):
                assert_matches(tc.sum(t, axis=axis), np.sum(view, axis=axis, dtype=np.sum(view[:1, :1, :1]).dtype))
                assert_matches(tc.prod(t, axis=axis), np.prod(view, axis=axis, dtype=np.prod(view[:1, :1, :1]).dtype))
                for fn, ref in ((tc.max, np.max), (tc.min, np.min), (tc.all, np.all), (tc.any, np.any)):
                    assert_matches(fn(t, axis=axis), ref(view, axis=axis)), (dtype, kind, axis)
            for axis in (None, 0, 2):
                assert_matches(tc.argmax(t, axis=axis), np.argmax(view, axis=axis))
                assert_matches(tc.argmin(t, axis=axis, keepdims=True), np.argmin(view, axis=axis, keepdims=True))
    x = rng.standard_normal((4, 5))
    assert_matches(tc.sum(tc.asarray(x.astype(np.float32), device=DEV), dtype=tc.float64), np.sum(x.astype(np.float32), dtype=np.float64))
    assert_matches(tc.var(tc.asarray(x, device=DEV), axis=0, correction=1), np.var(x, axis=0, ddof=1))


def test_empty_and_size_one_dimensions() -> None:
    e = np.zeros((0, 3, 1), np.float32)
    t = tc.asarray(e, device=DEV)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy warns on the mean of nothing
        for axis in (0, (0, 2), 1, None):
            for name, (fn, ref) in REDUCTIONS.items():
                if name in ("max", "min") and axis in (0, (0, 2), None):
                    continue  # rejected before any kernel: no identity
                assert_matches(fn(t, axis=axis, keepdims=axis == 1), ref(e, axis=axis, keepdims=axis == 1))
    ones = rng.standard_normal((1, 4, 1)).astype(np.float32)
    for axis in (0, 2, (0, 2), 1):
        assert_matches(tc.sum(tc.asarray(ones, device=DEV), axis=axis), np.sum(ones, axis=axis))
        assert_matches(tc.argmax(tc.asarray(ones, device=DEV), axis=axis if isinstance(axis, int) else 0),
                       np.argmax(ones, axis=axis if isinstance(axis, int) else 0))
    s = tc.asarray(np.float32(2.5), device=DEV)
    assert_matches(tc.sum(s), np.float32(2.5))
    assert_matches(tc.argmax(s), np.int64(0))


def test_nan_wins_and_ties_go_to_the_first() -> None:
    x = np.array([[1.0, np.nan, 3.0, np.nan], [2.0, 5.0, 5.0, -1.0], [7.0, 7.0, 7.0, 7.0]], np.float32)
    t = tc.asarray(x, device=DEV)
    for fn, ref in ((tc.max, np.max), (tc.min, np.min), (tc.argmax, np.argmax), (tc.argmin, np.argmin)):
        assert_matches(fn(t, axis=1), ref(x, axis=1))
        assert_matches(fn(t, axis=0), ref(x, axis=0))
    long = np.zeros(1000, np.float32)
    long[[17, 500, 999]] = 3.0
    long[[3, 700]] = -2.0
    assert_matches(tc.argmax(tc.asarray(long, device=DEV)), np.int64(17))
    assert_matches(tc.argmin(tc.asarray(long, device=DEV)), np.int64(3))
    long[600] = np.nan
    assert_matches(tc.argmax(tc.asarray(long, device=DEV)), np.int64(600))


def test_float32_sum_of_2_pow_24_elements_is_accurate() -> None:
    n = (1 << 24) + 5
    x = rng.random(n, dtype=np.float32)
    exact = np.sum(x, dtype=np.float64)
    got = float(tc.sum(tc.asarray(x, device=DEV)).numpy())
    assert abs(got - exact) / exact < 1e-6, f"relative error {abs(got - exact) / exact:.2e}"
    # (A serial float32 loop would be far off: its running total passes 2**23, where an ulp is 1.)
    got = float(tc.mean(tc.asarray(x, device=DEV)).numpy())
    assert abs(got - exact / n) / (exact / n) < 1e-6


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    z = np.exp(x - x.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("shape,axis", [((4, 5, 33), -1), ((4, 5, 33), 0), ((4, 5, 33), 1), ((3, 70_001), 1),
                                        ((37, 1), 1), ((0, 5), 1)])
def test_softmax_family(shape: tuple, axis: int) -> None:
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    for view, gv in ((x, g), (x[..., ::-1], g[..., ::-1])):
        t, tg = on_device(view), on_device(gv)
        y, logy = _softmax(view.astype(np.float64), axis), np.log(_softmax(view.astype(np.float64), axis))
        assert_matches(F.softmax(t, axis=axis), y.astype(np.float32), atol=1e-6)
        assert_matches(F.log_softmax(t, axis=axis), logy.astype(np.float32), rtol=1e-5, atol=1e-5)
        ty, tlogy = tc.asarray(y.astype(np.float32), device=DEV), tc.asarray(logy.astype(np.float32), device=DEV)
        from tensorcore.dispatch import apply
        from tensorcore.ops.registry import OPS

        back = apply(OPS["softmax_backward"], (tg, ty), {"axis": axis % len(shape)})
        want = gv * y - y * np.sum(gv * y, axis=axis, keepdims=True)
        assert_matches(back, want.astype(np.float32), atol=1e-5)
        back = apply(OPS["log_softmax_backward"], (tg, tlogy), {"axis": axis % len(shape)})
        want = gv - y * np.sum(gv, axis=axis, keepdims=True)
        assert_matches(back, want.astype(np.float32), rtol=1e-4, atol=1e-4)


def test_cross_entropy_and_its_backward() -> None:
    from tensorcore.dispatch import apply
    from tensorcore.ops.registry import OPS

    for n, c in ((7, 10), (64, 1000), (5, 1)):
        logits = (rng.standard_normal((n, c)) * 3).astype(np.float32)
        labels = rng.integers(0, c, n)
        z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
        probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        losses = -np.log(probs[np.arange(n), labels])
        strided = np.repeat(labels.astype(np.int32), 2)[::2]  # a view with stride 2
        for tlab in (tc.asarray(labels, device=DEV), on_device(strided)):
            tl = tc.asarray(logits, device=DEV)
            for reduction, want in (("none", losses), ("sum", losses.sum()), ("mean", losses.mean())):
                loss, p = apply(OPS["cross_entropy"], (tl, tlab), {"reduction": reduction})
                assert_matches(loss, np.asarray(want, np.float32), rtol=1e-5, atol=1e-5)
                assert_matches(p, probs.astype(np.float32), atol=1e-6)
                g = rng.standard_normal(n if reduction == "none" else ()).astype(np.float32)
                grad = apply(OPS["cross_entropy_backward"], (tc.asarray(g, device=DEV), tl, p, tlab), {"reduction": reduction})
                onehot = np.eye(c)[labels]
                scale = g.reshape(n, 1) if reduction == "none" else g / (n if reduction == "mean" else 1)
                assert_matches(grad, ((probs - onehot) * scale).astype(np.float32), atol=1e-5)
    # Checked in the kernel: reported at the next read, and nothing is read out of bounds.
    loss = F.cross_entropy(tc.asarray(np.zeros((2, 3), np.float32), device=DEV), tc.asarray(np.array([0, 3]), device=DEV))
    with pytest.raises(tc.OpError, match=r"cross_entropy: label 3 is out of range for 3 classes \(at position 1\); "
                                         r"expected 0 <= label < 3"):
        loss.numpy()
    tc.ones((2,), device=DEV).numpy()  # the error was reported once; the device goes on


def test_linear_backward_bias_is_a_column_sum() -> None:
    from tensorcore.dispatch import apply
    from tensorcore.ops.registry import OPS

    for shape in ((6, 3), (2, 3, 5), (4097, 130), (9,)):
        g = rng.standard_normal(shape).astype(np.float32)
        want = g.reshape(-1, shape[-1]).astype(np.float64).sum(axis=0).astype(np.float32)
        assert_matches(apply(OPS["linear_backward_bias"], (tc.asarray(g, device=DEV),)), want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("shape,axis", [((5, 7, 9), 0), ((5, 7, 9), 2), ((3, 20_001), 1), ((20_001, 3), 0),
                                        ((100_001,), 0), ((3, 0, 4), 1), ((4, 600), 0)])
def test_cumulative_sum(shape: tuple, axis: int) -> None:
    for dtype in (np.float32, np.int32, np.bool_):
        x = (rng.standard_normal(shape) * 3).astype(dtype)
        views_ = [x] if len(shape) == 1 else [x, np.flip(x, axis=0)]
        for view in views_:
            for include_initial in (False, True):
                got = tc.cumulative_sum(on_device(view), axis=axis, include_initial=include_initial)
                want = np.cumsum(view, axis=axis, dtype=np.float64 if dtype == np.float32 else np.int64)
                if include_initial:
                    want = np.concatenate([np.zeros_like(np.take(want, [0], axis=axis) if want.shape[axis] else
                                                         want.sum(axis=axis, keepdims=True)), want], axis=axis)
                want = want.astype(np.float32 if dtype == np.float32 else np.int64)
                assert_matches(got, want, rtol=1e-5, atol=1e-3)


def test_no_float32_fallbacks() -> None:
    tc.reset_placement_stats()
    test_reductions_on_views_over_every_axis_set("sum")
    for name in ("mean", "var", "max", "count_nonzero"):
        test_reductions_on_views_over_every_axis_set(name)
    test_softmax_family((4, 5, 33), 1)
    test_cross_entropy_and_its_backward()
    test_linear_backward_bias_is_a_column_sum()
    test_cumulative_sum((5, 7, 9), 2)
    ours = {"cumulative_sum", "sum", "prod", "mean", "var", "max", "min", "all", "any", "count_nonzero", "argmax", "argmin",
            "softmax", "log_softmax", "softmax_backward", "log_softmax_backward", "cross_entropy",
            "cross_entropy_backward", "linear_backward_bias"}
    fallbacks = {k for k in tc.placement_stats()["fallbacks"] if k.split("@")[0] in ours}
    assert not fallbacks, f"fell back to cpu: {fallbacks}"


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "uint64", "int8", "int32"])
def test_sums_of_negative_floats_to_an_integer_dtype_convert_as_numpy(dtype: str) -> None:
    # float -> unsigned of a negative value is undefined in C; NumPy on x86 wraps (-1.0 to
    # uint32 is 4294967295). The reduction's own cast gave 0 on an AVX-512 CPU, where the
    # array-API differential test caught it.
    a = np.array([[-1.0, -2.75, 3.5], [-0.5, 300.0, -200.0]], np.float32)
    x = tc.asarray(a, device=DEV)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy warns about the out-of-range casts
        for axis in (None, 0, 1):
            np.testing.assert_array_equal(tc.sum(x, axis=axis, dtype=getattr(tc, dtype)).numpy(),
                                          np.sum(a, axis=axis, dtype=dtype))
            if axis is not None:  # the running sums convert as the sum does
                np.testing.assert_array_equal(tc.cumulative_sum(x, axis=axis, dtype=getattr(tc, dtype)).numpy(),
                                              np.cumsum(a, axis=axis, dtype=dtype))
            np.testing.assert_array_equal(tc.prod(x, axis=axis, dtype=getattr(tc, dtype)).numpy(),
                                          np.prod(a, axis=axis, dtype=dtype))
