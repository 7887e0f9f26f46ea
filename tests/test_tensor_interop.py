"""Tensors as Array API arrays: conversions, 0-d results, DLPack, copy semantics, scalars."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc


def test_zero_d_results_convert_like_arrays(device: str) -> None:
    s = tc.sum(tc.asarray([1.0, 2.0, 3.0], device=device))
    a = np.asarray(s)
    assert isinstance(a, np.ndarray) and a.shape == () and a == 6.0
    assert isinstance(s.numpy(), np.ndarray)
    assert float(s) == 6.0 and int(s) == 6 and bool(s) is True and s.item() == 6.0
    i = tc.sum(tc.asarray([1, 2], device=device))
    assert [10, 20, 30, 40][i] == 40  # __index__
    np.testing.assert_array_equal(np.from_dlpack(s, device="cpu"), 6.0)  # a host copy where not on cpu
    with pytest.raises(TypeError, match="one element"):
        bool(tc.ones((2,), device=device))


def test_dlpack_round_trip(device: str) -> None:
    x = tc.asarray(np.arange(6.0).reshape(2, 3), device=device)
    np.testing.assert_array_equal(np.from_dlpack(x, device="cpu"), np.arange(6.0).reshape(2, 3))
    y = tc.from_dlpack(np.arange(4, dtype=np.int32), device=device)
    assert y.dtype == tc.int32 and y.device == tc.Device(device)


def test_asarray_dtypes_and_copy_semantics() -> None:
    assert tc.asarray([1.0, 2.0]).dtype == tc.float32  # Python floats: the default float
    assert tc.asarray(np.ones(2)).dtype == tc.float64  # arrays keep their dtype
    f64 = tc.asarray(np.ones(2))
    assert tc.asarray([f64, f64]).dtype == tc.float64  # no silent downcast of tensors in a list
    host = np.zeros(3, np.float32)
    shared, copied = tc.asarray(host), tc.asarray(host, copy=True)
    host[0] = 5
    assert shared.numpy()[0] == 5 and copied.numpy()[0] == 0
    with pytest.raises(ValueError, match="copy=False"):
        tc.asarray(host, dtype=tc.float64, copy=False)
    with pytest.raises(ValueError, match="copy=False"):
        tc.asarray(f64, dtype=tc.float32, copy=False)
    b = tc.asarray([True, False])
    assert tc.asarray(b, copy=True).dtype == tc.bool
    assert tc.Variable(b, trainable=False).dtype == tc.bool
    assert tc.full(2, np.int32(3)).dtype == tc.int32
    with pytest.raises(tc.OpError, match="beyond the int64/uint64 range"):
        tc.asarray(2**70)


def test_reshape_copy_argument() -> None:
    a = tc.asarray(np.arange(4.0))
    b = tc.reshape(a, (2, 2), copy=True)
    b[0, 0] = 99.0
    assert a.numpy()[0] == 0.0
    with pytest.raises(ValueError, match="cannot be viewed"):
        tc.reshape(tc.permute_dims(tc.reshape(a, (2, 2)), (1, 0)), (4,), copy=False)


def test_clip_without_bounds_keeps_the_dtype() -> None:
    assert tc.clip(tc.asarray([True])).dtype == tc.bool


def test_memory_stats_and_synchronize_on_cpu() -> None:
    assert tc.memory_stats("cpu") == {}  # the NumPy backend does not track allocations
    tc.synchronize("cpu")
    tc.synchronize()
