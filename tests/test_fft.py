"""``tc.fft``, the Array API Fourier transform extension, against NumPy on every device.

Values, shapes and dtypes of every function (with ``n``/``s`` cropping and padding, axes other
than the last, every ``norm``), graph mode through ``support.check_op``, the fallback to ``cpu``
off ``cpu`` (counted under soft placement, refused under strict), and the errors for bad
arguments. Gradients are ``tests/test_fft_grad.py``'s.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import tensorcore as tc
from tensorcore import placement

from support import check_op

NORMS = ["backward", "ortho", "forward"]
RNG = np.random.default_rng(0)
REAL = RNG.standard_normal((3, 4, 5))
CPLX = REAL + 1j * RNG.standard_normal((3, 4, 5))
# (complex dtype, its real dtype, tolerances): results keep the input's precision
PRECISIONS = [(np.complex64, np.float32, 2e-4, 2e-4), (np.complex128, np.float64, 1e-10, 1e-10)]


def _np_fn(name: str, out_dtype: type) -> Callable:
    """NumPy's function, its result cast to the precision the spec asks for."""
    return lambda a, **kw: getattr(np.fft, name)(a, **kw).astype(out_dtype)


ONE_D = [  # name, input kind, output kind
    ("fft", "c", "c"), ("ifft", "c", "c"), ("rfft", "r", "c"), ("irfft", "c", "r"), ("hfft", "c", "r"),
    ("ihfft", "r", "c"),
]
N_D = [("fftn", "c", "c"), ("ifftn", "c", "c"), ("rfftn", "r", "c"), ("irfftn", "c", "r")]


def _case(kind_in: str, kind_out: str, precision: tuple) -> tuple[np.ndarray, type]:
    cdt, rdt = precision[:2]
    x = CPLX.astype(cdt) if kind_in == "c" else REAL.astype(rdt)
    return x, cdt if kind_out == "c" else rdt


ARGUMENTS = {  # by dimensions (1-D or n-D): crop, pad, one point, axes other than the last
    1: [{}, {"axis": 0}, {"axis": 1, "n": 3}, {"axis": -1, "n": 8}, {"n": 1}],
    2: [{}, {"axes": (0,)}, {"axes": (2, 0)}, {"axes": (-1, 1), "s": (6, 3)}, {"axes": (0, 1, 2), "s": (2, 5, 7)}],
}


@pytest.mark.parametrize("precision", PRECISIONS, ids=["single", "double"])
@pytest.mark.parametrize("name,kind_in,kind_out", ONE_D + N_D, ids=[c[0] for c in ONE_D + N_D])
def test_transforms_match_numpy(name: str, kind_in: str, kind_out: str, precision: tuple, device: str) -> None:
    x, out_dtype = _case(kind_in, kind_out, precision)
    fn, ref = getattr(tc.fft, name), _np_fn(name, out_dtype)
    for kwargs in ARGUMENTS[2 if (name, kind_in, kind_out) in N_D else 1]:
        for norm in NORMS:
            check_op(fn, ref, [x], device, rtol=precision[2], atol=precision[3], norm=norm, **kwargs)


@pytest.mark.parametrize("name", [c[0] for c in N_D])
def test_minus_one_in_s_is_the_default_length(name: str, device: str) -> None:
    x = tc.asarray(REAL if name == "rfftn" else CPLX, device=device)
    fn = getattr(tc.fft, name)
    expected = fn(x, axes=(0, 2), s=(3, 5 if name != "irfftn" else 8)).numpy()  # irfftn: 2 * (m - 1)
    np.testing.assert_array_equal(fn(x, axes=(0, 2), s=(-1, -1)).numpy(), expected)


@pytest.mark.parametrize("name,kind_in,kind_out", ONE_D + N_D, ids=[c[0] for c in ONE_D + N_D])
def test_dtypes_keep_the_precision(name: str, kind_in: str, kind_out: str) -> None:
    for precision in PRECISIONS:
        x, out_dtype = _case(kind_in, kind_out, precision)
        assert getattr(tc.fft, name)(tc.asarray(x)).dtype == out_dtype
    if kind_in == "r":  # float16 is no spec dtype; it is computed at single precision
        assert getattr(tc.fft, name)(tc.asarray(REAL.astype(np.float16))).dtype == np.complex64


def test_round_trips() -> None:
    x = tc.asarray(CPLX)
    np.testing.assert_allclose(tc.fft.ifft(tc.fft.fft(x, axis=1), axis=1).numpy(), CPLX, atol=1e-12)
    np.testing.assert_allclose(tc.fft.ifftn(tc.fft.fftn(x, norm="ortho"), norm="ortho").numpy(), CPLX, atol=1e-12)
    r = tc.asarray(REAL)
    np.testing.assert_allclose(tc.fft.irfftn(tc.fft.rfftn(r), s=REAL.shape, axes=(0, 1, 2)).numpy(), REAL, atol=1e-12)
    np.testing.assert_allclose(tc.fft.irfft(tc.fft.rfft(r, axis=0), n=3, axis=0).numpy(), REAL, atol=1e-12)
    np.testing.assert_allclose(tc.fft.hfft(tc.fft.ihfft(r), n=5).numpy(), REAL, atol=1e-12)


@pytest.mark.parametrize("name", ["fftfreq", "rfftfreq"])
def test_frequencies(name: str, device: str) -> None:
    fn, ref = getattr(tc.fft, name), getattr(np.fft, name)
    for n, d in [(1, 1.0), (8, 1.0), (7, 0.25), (10, 3)]:
        out = fn(n, d=d, device=device)
        assert out.dtype == tc.float32 and str(out.device) == str(tc.Device(device))  # the default float dtype
        np.testing.assert_allclose(out.numpy(), ref(n, d=d).astype(np.float32))
        wide = fn(n, d=d, dtype=tc.float64, device=device)
        assert wide.dtype == tc.float64
        np.testing.assert_array_equal(wide.numpy(), ref(n, d=d))
    with pytest.raises(tc.OpError, match="real floating-point dtype"):
        fn(4, dtype=tc.complex64)
    with pytest.raises(tc.OpError, match="real floating-point dtype"):
        fn(4, dtype=tc.int32)
    with pytest.raises(tc.OpError, match="n must be a positive int"):
        fn(0)
    with pytest.raises(tc.OpError, match="d must be a non-zero real number"):
        fn(4, d=0.0)


@pytest.mark.parametrize("name", ["fftshift", "ifftshift"])
def test_shifts_match_numpy(name: str, device: str) -> None:
    fn, ref = getattr(tc.fft, name), getattr(np.fft, name)
    for x in [REAL, CPLX, REAL[0, 0], REAL.astype(np.float32)]:  # odd and even lengths
        for axes in [None, 0, -1, (0, 2), [1]]:
            if x.ndim == 1 and axes not in (None, 0, -1):
                continue
            check_op(fn, lambda a, **kw: ref(a, **kw), [x], device, axes=axes)
    assert tc.fft.fftshift(tc.asarray(2.0, device=device)).numpy() == 2.0  # 0-D: nothing to shift
    with pytest.raises(tc.OpError, match="repeated axis"):
        fn(tc.asarray(REAL, device=device), axes=(0, -3))
    with pytest.raises(tc.OpError, match="out of range"):
        fn(tc.asarray(REAL, device=device), axes=3)


def test_shifts_are_inverses() -> None:
    x = tc.asarray(REAL)
    for axes in [None, (1,), (0, 2)]:
        np.testing.assert_array_equal(tc.fft.ifftshift(tc.fft.fftshift(x, axes=axes), axes=axes).numpy(), REAL)


# --- devices --------------------------------------------------------------------------------


@pytest.mark.parametrize("name,x,op", [("rfft", REAL.astype(np.float32), "fft.rfftn"),
                                       ("fft", CPLX.astype(np.complex64), "fft.fftn"),
                                       ("irfftn", CPLX, "fft.irfftn")])
def test_off_cpu_the_transforms_fall_back_counted_or_refuse(name: str, x: np.ndarray, op: str, device: str) -> None:
    if device.startswith("cpu"):
        pytest.skip("cpu has the kernels")
    fn = getattr(tc.fft, name)
    t = tc.asarray(x, device=device)
    tc.reset_placement_stats()
    out = fn(t)
    assert str(out.device) == str(t.device)
    np.testing.assert_allclose(out.numpy(), fn(tc.asarray(x)).numpy(), rtol=1e-6, atol=1e-6)
    assert tc.placement_stats()["fallbacks"].get(f"{op}@{t.device}") == 1
    placement.set_policy("strict")
    with pytest.raises(tc.PlacementError, match=op):
        fn(t)


def test_on_cpu_nothing_falls_back() -> None:
    tc.reset_placement_stats()
    tc.fft.rfft(tc.asarray(REAL))
    tc.fft.fftn(tc.asarray(CPLX))
    assert not tc.placement_stats()["fallbacks"]


# --- errors ---------------------------------------------------------------------------------

TRANSFORMS = [c[0] for c in ONE_D + N_D]


@pytest.mark.parametrize("name,kind_in,kind_out", ONE_D + N_D, ids=TRANSFORMS)
def test_wrong_kinds_raise_type_errors_naming_the_function(name: str, kind_in: str, kind_out: str) -> None:
    fn = getattr(tc.fft, name)
    wrong = [REAL, REAL.astype(np.float32)] if kind_in == "c" else [CPLX, CPLX.astype(np.complex64)]
    for x in wrong + [np.arange(6), np.ones(4, bool)]:
        with pytest.raises(TypeError, match=rf"fft\.{name}: x has dtype {np.dtype(x.dtype)}"):
            fn(tc.asarray(x))


@pytest.mark.parametrize("name", TRANSFORMS)
def test_bad_norms(name: str) -> None:
    x = tc.asarray(CPLX if name in ("fft", "ifft", "irfft", "hfft", "fftn", "ifftn", "irfftn") else REAL)
    for norm in ["Ortho", None, "unitary", 1]:
        with pytest.raises(tc.OpError, match=rf"fft\.{name}: norm must be 'backward', 'ortho' or 'forward'"):
            getattr(tc.fft, name)(x, norm=norm)


@pytest.mark.parametrize("name", ["fft", "rfft", "irfft", "ihfft"])
def test_bad_axis_and_length(name: str) -> None:
    fn = getattr(tc.fft, name)
    x = tc.asarray(REAL if name in ("rfft", "ihfft") else CPLX)
    with pytest.raises(tc.OpError, match="axis 3 is out of range for a 3-D tensor"):
        fn(x, axis=3)
    for n in [0, -1, -2, 2.5, True]:
        with pytest.raises(tc.OpError, match="n must be a positive int"):
            fn(x, n=n)
    with pytest.raises(tc.OpError, match="0-D"):
        fn(tc.asarray(REAL[0, 0, 0] if name in ("rfft", "ihfft") else CPLX[0, 0, 0]))


def test_irfft_of_one_bin_needs_n() -> None:
    x = tc.asarray(CPLX[:, :, :1])
    with pytest.raises(tc.OpError, match="n must be a positive int"):
        tc.fft.irfft(x)  # 2 * (1 - 1) = 0 points
    assert tc.fft.irfft(x, n=1).shape == (3, 4, 1)


@pytest.mark.parametrize("name", ["fftn", "ifftn", "rfftn", "irfftn"])
def test_bad_axes_and_shapes(name: str) -> None:
    fn = getattr(tc.fft, name)
    x = tc.asarray(REAL if name == "rfftn" else CPLX)
    with pytest.raises(tc.OpError, match="repeated axis in axes"):
        fn(x, axes=(0, 1, -3))
    with pytest.raises(tc.OpError, match="axis -4 is out of range"):
        fn(x, axes=(-4,))
    with pytest.raises(tc.OpError, match="s is given but axes is not"):
        fn(x, s=(2, 2))
    with pytest.raises(tc.OpError, match="one length per axis"):
        fn(x, s=(2,), axes=(0, 1))
    with pytest.raises(tc.OpError, match="no axis to transform"):
        fn(x, axes=())
    with pytest.raises(tc.OpError, match="axes must be a sequence of ints"):
        fn(x, axes=1)
    with pytest.raises(tc.OpError, match=r"s\[1\] must be a positive int .*, got 0; axis 2 has length 5"):
        fn(x, s=(2, 0), axes=(1, 2))


# --- the namespace --------------------------------------------------------------------------


def test_the_extension_is_a_namespace_of_the_standards_functions() -> None:
    xp = pytest.importorskip("array_api_strict")
    assert hasattr(tc, "fft") and tc.fft is tc.__dict__["fft"]
    assert set(tc.fft.__all__) == set(xp.fft.__all__)
    assert all(callable(getattr(tc.fft, name)) and getattr(tc.fft, name).__doc__ for name in tc.fft.__all__)
