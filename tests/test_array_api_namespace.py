"""The tensorcore module is an Array API (2023.12) namespace: names, inspection, dtype rules.

The list of names comes from ``array_api_strict``, the standard's reference namespace, less
what tensorcore leaves out on purpose: the ``linalg``/``fft`` extensions (separate modules,
checked by ``test_extensions_are_namespaces``) and array_api_strict's own utilities. The dtype
tables include complex64 and complex128 (``test_complex.py`` checks the rest of complex support).
"""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc

xp = pytest.importorskip("array_api_strict")

NOT_STANDARD = {  # array_api_strict's own helpers, not part of the standard's namespace
    "ArrayAPIStrictFlags", "set_array_api_strict_flags", "get_array_api_strict_flags",
    "reset_array_api_strict_flags", "Device", "__version__", "ModuleType",
}
OUT_OF_SCOPE = {"linalg", "fft"}  # extensions live elsewhere
# Names added by later revisions of the standard (tensorcore targets 2023.12 and provides most of them).
LATER_REVISIONS = {
    "nextafter": "2024.12", "reciprocal": "2024.12", "take_along_axis": "2024.12", "count_nonzero": "2024.12",
    "cumulative_prod": "2024.12", "diff": "2024.12", "broadcast_shapes": "2025.12", "isin": "2025.12",
}
NAMES = sorted(set(xp.__all__) - NOT_STANDARD - OUT_OF_SCOPE)


@pytest.mark.parametrize("name", [n for n in NAMES if n not in LATER_REVISIONS])
def test_every_2023_12_name_exists(name: str) -> None:
    assert hasattr(tc, name), f"tensorcore lacks the Array API name {name!r}"


@pytest.mark.parametrize("name", sorted(OUT_OF_SCOPE))
def test_extensions_are_namespaces(name: str) -> None:
    # The standard: a supported extension is an attribute of the namespace holding all of its functions.
    missing = sorted(set(getattr(xp, name).__all__) - set(dir(getattr(tc, name))))
    assert not missing, f"tc.{name} lacks {missing}"


@pytest.mark.parametrize("name", sorted(LATER_REVISIONS))
def test_later_revision_names(name: str) -> None:
    assert hasattr(tc, name), f"tensorcore lacks {name!r} ({LATER_REVISIONS[name]})"


def test_namespace_version_and_constants(device: str) -> None:
    assert tc.__array_api_version__ == "2023.12"
    x = tc.ones((2,), device=device)
    assert x.__array_namespace__() is tc
    assert x.__array_namespace__(api_version="2023.12") is tc
    with pytest.raises(ValueError, match="unsupported Array API version"):
        x.__array_namespace__(api_version="2021.01")
    assert tc.e == np.e and tc.pi == np.pi and tc.inf == np.inf and np.isnan(tc.nan) and tc.newaxis is None


def test_namespace_info() -> None:
    info = tc.__array_namespace_info__()
    caps = info.capabilities()
    assert caps["boolean indexing"] is True and caps["data-dependent shapes"] is True
    assert info.default_device() in info.devices()
    defaults = info.default_dtypes()
    assert set(defaults) == {"real floating", "complex floating", "integral", "indexing"}
    assert defaults["integral"] == tc.int64 and defaults["indexing"] == tc.int64
    assert tc.isdtype(defaults["real floating"], "real floating")
    everything = info.dtypes()
    assert set(everything) == {d.name for d in tc.dtypes.ALL} - {"float16"}  # not a spec dtype
    assert set(info.dtypes(kind="integral")) == {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}
    assert set(info.dtypes(kind=("bool", "real floating"))) == {"bool", "float32", "float64"}
    assert set(info.dtypes(kind="complex floating")) == {"complex64", "complex128"}
    assert defaults["complex floating"] == tc.complex64 and "complex64" in everything
    assert info.dtypes(kind=tc.float16) == {"float16": tc.float16}  # asked for by name: there
    assert set(info.dtypes(kind=(tc.float16, "bool"))) == {"float16", "bool"}


SHARED = [d.name for d in tc.dtypes.ALL if hasattr(xp, d.name)]  # float16 is not in the standard


@pytest.mark.parametrize("a", SHARED)
def test_result_type_matches_the_standard(a: str) -> None:
    for b in SHARED:
        try:
            expected = xp.result_type(getattr(xp, a), getattr(xp, b))
        except TypeError:
            with pytest.raises(TypeError, match="no Array API type promotion"):
                tc.result_type(getattr(tc, a), getattr(tc, b))
            continue
        assert tc.result_type(getattr(tc, a), getattr(tc, b)).name == str(expected).rsplit(".", 1)[-1], (a, b)


def test_result_type_of_tensors_and_several_dtypes(device: str) -> None:
    x = tc.zeros((2,), dtype=tc.int8, device=device)
    assert tc.result_type(x, tc.uint8) == tc.int16
    assert tc.result_type(tc.int8, tc.int16, tc.int32) == tc.int32
    assert tc.result_type(tc.float16, tc.float32) == tc.float32
    with pytest.raises(TypeError):
        tc.result_type(tc.int64, tc.float32)


@pytest.mark.parametrize("a", SHARED)
def test_can_cast_within_a_kind_matches_the_standard(a: str) -> None:
    for b in SHARED:
        assert tc.can_cast(getattr(tc, a), getattr(tc, b)) == xp.can_cast(getattr(xp, a), getattr(xp, b)), (a, b)


def test_can_cast_across_kinds_is_false() -> None:
    """The spec's can_cast follows the type promotion rules, which do not join bool with a
    numeric dtype (nor integers with floats): array-api-strict, the reference, says False too."""
    assert not tc.can_cast(tc.int8, tc.float64)
    assert not tc.can_cast(tc.bool, tc.float64) and not xp.can_cast(xp.bool, xp.float64)


def test_isdtype_matches_the_standard() -> None:
    kinds = ["bool", "signed integer", "unsigned integer", "integral", "real floating", "complex floating", "numeric"]
    for name in SHARED:
        for kind in kinds:
            assert tc.isdtype(getattr(tc, name), kind) == xp.isdtype(getattr(xp, name), kind), (name, kind)
    assert tc.isdtype(tc.float32, ("integral", "real floating"))
    assert tc.isdtype(tc.int8, tc.int8) and not tc.isdtype(tc.int8, tc.int16)
    with pytest.raises(ValueError, match="unknown dtype kind"):
        tc.isdtype(tc.int8, "integer")


@pytest.mark.parametrize("name", ["float32", "float64"])
def test_finfo(name: str, device: str) -> None:
    """The spec's fields with the spec's types: ``bits`` an int, the limits Python floats
    (NumPy's finfo gives float32 scalars for float32), ``dtype`` the dtype."""
    mine, ref = tc.finfo(getattr(tc, name)), xp.finfo(getattr(xp, name))
    assert type(mine.bits) is int and mine.bits == ref.bits
    for field in ("eps", "max", "min", "smallest_normal"):
        assert type(getattr(mine, field)) is float and getattr(mine, field) == getattr(ref, field), field
    assert mine.dtype == getattr(tc, name)
    with pytest.raises(TypeError, match="finfo takes a floating-point dtype"):
        tc.finfo(tc.int32)
    assert tc.finfo(tc.zeros((1,), dtype=getattr(tc, name), device=device)).bits == ref.bits


@pytest.mark.parametrize("name", ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"])
def test_iinfo(name: str) -> None:
    mine, ref = tc.iinfo(getattr(tc, name)), xp.iinfo(getattr(xp, name))
    assert (mine.bits, mine.min, mine.max) == (ref.bits, ref.min, ref.max)
    assert mine.dtype == getattr(tc, name)


@pytest.mark.parametrize("name", ["uint8", "int8", "int16", "uint32"])
def test_vecdot_keeps_the_promoted_integer_dtype(name: str, device: str) -> None:
    """vecdot's result has the promoted dtype, wrapping as array-api-strict does (a sum alone
    widens small integers to 64 bits)."""
    values = [[200, 100, 7], [3, 4, 5]] if name.startswith("u") else [[100, -100, 7], [3, 4, 5]]
    a = tc.asarray(np.array(values, name), device=device)
    ref = xp.vecdot(xp.asarray(np.array(values, name)), xp.asarray(np.array(values, name)))
    out = tc.vecdot(a, a)
    assert out.dtype == getattr(tc, name)
    np.testing.assert_array_equal(out.numpy(), np.asarray(ref))


def test_from_dlpack_copies_an_empty_bool_tensor(device: str) -> None:
    x = tc.zeros((0,), dtype=tc.bool, device=device)
    y = tc.from_dlpack(x, copy=True)
    assert y.dtype == tc.bool and y.shape == (0,) and y is not x
    z = tc.from_dlpack(tc.asarray(np.array([True, False]), device=device), copy=True)
    np.testing.assert_array_equal(z.numpy(), [True, False])


def test_astype_without_copy_returns_the_input_itself_when_the_dtype_matches(device: str) -> None:
    x = tc.asarray(np.arange(4, dtype=np.float32), device=device)
    assert tc.astype(x, tc.float32, copy=False) is x  # the spec: the input array itself
    assert tc.astype(x, tc.float32, copy=False, device=x.device) is x
    copied = tc.astype(x, tc.float32)  # copy=True: a new tensor
    assert copied is not x and np.array_equal(copied.numpy(), x.numpy())
    other = tc.astype(x, tc.float64, copy=False)  # another dtype: cast, whatever copy says
    assert other is not x and other.dtype == tc.float64
