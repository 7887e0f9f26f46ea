"""New tensors are made on their device (``Backend.full``/``arange``/``eye``): NumPy's values bit
for bit on every device, ``tc.OutOfMemoryError`` naming the device for a tensor too big for it
(with no host array of that size where the backend fills on the device), the contract's
default for a backend that does not fill on its device, and traced functions as before."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc

DTYPES = [np.bool_, np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64, np.float16, np.float32, np.float64]


def same(t: tc.Tensor, want: np.ndarray, device: str) -> None:
    """``t`` lives on ``device`` and holds exactly ``want``: dtype, shape and bits (-0.0, NaN)."""
    assert str(t.device) == str(tc.Device(device)), f"made on {t.device}, expected {device}"
    got = t.numpy()
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
    assert got.tobytes() == want.tobytes(), f"{got!r} != {want!r}"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_filled_tensors_match_numpy(device: str, dtype: type) -> None:
    same(tc.zeros((3, 5), dtype=dtype, device=device), np.zeros((3, 5), dtype), device)
    same(tc.ones((7,), dtype=dtype, device=device), np.ones(7, dtype), device)
    same(tc.empty((2, 0, 3), dtype=dtype, device=device), np.zeros((2, 0, 3), dtype), device)
    same(tc.full((), 3, dtype=dtype, device=device), np.full((), 3, dtype), device)
    same(tc.full((1000, 3), 1, dtype=dtype, device=device), np.full((1000, 3), 1, dtype), device)
    for k in (-2, 0, 1, 4):
        same(tc.eye(4, 3, k=k, dtype=dtype, device=device), np.eye(4, 3, k=k, dtype=dtype), device)
    same(tc.eye(3, dtype=dtype, device=device), np.eye(3, dtype=dtype), device)


@pytest.mark.parametrize("value,dtype", [
    (-0.0, np.float32), (float("nan"), np.float64), (float("-inf"), np.float32), (1e-45, np.float32),
    (2.9, np.int32), (-2.9, np.int8), (True, np.float64), (0.5, np.bool_), (2**63 - 1, np.int64),
    (2**64 - 1, np.uint64), (np.float16(0.1), np.float16), (65504.0, np.float16),
])
def test_full_casts_its_value_as_numpy_does(device: str, value: object, dtype: type) -> None:
    same(tc.full((3, 2), value, dtype=dtype, device=device), np.full((3, 2), value, dtype), device)


def test_full_infers_its_dtype_and_refuses_what_numpy_refuses(device: str) -> None:
    same(tc.full((2,), 7, device=device), np.full(2, 7, np.int64), device)
    same(tc.full((2,), 1.5, device=device), np.full(2, 1.5, np.float32), device)
    same(tc.full((2,), False, device=device), np.full(2, False), device)
    same(tc.full((2,), np.float64(0.1), device=device), np.full(2, 0.1), device)
    with pytest.raises(OverflowError):
        tc.full((2,), 300, dtype=tc.int8, device=device)


ARANGES = [
    ((5,), None), ((0,), None), ((-3,), None), ((1.0, 2.0, 0.25), None), ((0.1, 10, 0.3), np.float32),
    ((0.1, 10, 0.3), np.float64), ((10, -3, -2), np.int8), ((-128, 127, 5), np.int8), ((0, 255, 3), np.uint8),
    ((0, 2**20, 1), np.float32), ((16777200.0, 16777300.0, 1.0), np.float32), ((1e7, 1e7 + 3000, 0.7), np.float32),
    ((3, 4, 10), np.int64), ((3, 13, 5), np.uint64), ((np.float32(0.1), np.float32(3.3), np.float32(0.7)), None),
    ((0, 40000, 1), np.int16), ((2**62, 2**63 - 1, 2**60), np.int64), ((0, 3, 1), np.float16), ((0, 2, 1), np.bool_),
]


@pytest.mark.parametrize("args,dtype", ARANGES, ids=[f"{a}-{np.dtype(d).name if d else 'default'}" for a, d in ARANGES])
def test_arange_matches_numpy_bit_for_bit(device: str, args: tuple, dtype: type | None) -> None:
    default = np.float32 if any(isinstance(a, float) for a in args) else np.int64
    want = np.arange(*args, dtype=dtype or (args[0].dtype if isinstance(args[0], np.generic) else default))
    same(tc.arange(*args, dtype=dtype or want.dtype, device=device), want, device)


def test_arange_raises_what_numpy_raises(device: str) -> None:
    with pytest.raises(OverflowError):
        tc.arange(250, 300, 7, dtype=tc.uint8, device=device)  # its second value, 257, does not fit
    with pytest.raises(tc.OpError, match="step must not be zero"):
        tc.arange(0, 5, 0, device=device)
    with pytest.raises(ValueError):
        tc.arange(0, float("nan"), 1.0, device=device)


def test_eye_takes_ints_only(device: str) -> None:
    with pytest.raises(tc.OpError, match=r"eye: n_cols must be an int, got 2.0"):
        tc.eye(3, 2.0, device=device)
    with pytest.raises(tc.OpError, match=r"negative dimensions are not allowed: shape \(-1, -1\)"):
        tc.eye(-1, device=device)


def test_like_functions_and_the_default_device(device: str) -> None:
    x = tc.asarray(np.arange(6, dtype=np.int16).reshape(2, 3), device=device)
    same(tc.zeros_like(x), np.zeros((2, 3), np.int16), device)
    same(tc.ones_like(x, dtype=tc.float64), np.ones((2, 3)), device)
    same(tc.full_like(x, -4), np.full((2, 3), -4, np.int16), device)
    same(tc.empty_like(x, dtype=tc.bool), np.zeros((2, 3), bool), device)
    same(tc.zeros_like(x, device="cpu"), np.zeros((2, 3), np.int16), "cpu")
    with tc.device(device):
        same(tc.ones(3), np.ones(3, np.float32), device)
        same(tc.arange(4), np.arange(4), device)
        same(tc.eye(2), np.eye(2, dtype=np.float32), device)


HUGE = 2**40  # 4 TiB of float32: more than any device or host here


@pytest.mark.parametrize("make", [
    lambda d: tc.zeros((HUGE,), device=d), lambda d: tc.ones((2**20, 2**20), device=d),
    lambda d: tc.full((HUGE,), 2.5, device=d), lambda d: tc.empty((HUGE,), device=d),
    lambda d: tc.arange(HUGE, dtype=tc.float32, device=d), lambda d: tc.eye(2**20, device=d),
], ids=["zeros", "ones", "full", "empty", "arange", "eye"])
def test_a_tensor_too_big_raises_out_of_memory_naming_the_device(device: str, make: object) -> None:
    with pytest.raises(tc.OutOfMemoryError) as info:
        make(device)
    msg = str(info.value)
    assert str(tc.Device(device)) in msg and f"{HUGE * 4:,} bytes" in msg, msg
    if not device.startswith("cpu"):  # allocated on the device: no host array of that size was tried
        assert "host memory" not in msg and "Unable to allocate" not in msg, msg
    same(tc.ones((2,), device=device), np.ones(2, np.float32), device)  # and the device still works


def test_made_tensors_in_a_traced_function_are_new_in_each_call(device: str) -> None:
    @tc.function
    def f(x: tc.Tensor) -> tc.Tensor:
        z = tc.zeros((3,), device=device)
        z[0] = x[1]  # written in place: the next call must start from zeros again
        return z + tc.arange(3, dtype=tc.float32, device=device) + tc.eye(3, device=device)[2] + tc.full((3,), 0.5,
                                                                                                      device=device)

    x = tc.asarray(np.array([1.0, 2.0, 3.0], np.float32), device=device)
    want = np.array([2.0, 1.0, 2.0], np.float32) + np.array([0.5, 0.5, 1.5], np.float32)
    first, second = f(x).numpy().copy(), f(x).numpy().copy()
    np.testing.assert_array_equal(first, want)
    np.testing.assert_array_equal(second, want)


def test_a_backend_without_creation_methods_gets_the_hosts_default(sim_backend: object) -> None:
    from tc_sim_backend import SimArray

    for t, want in [(tc.zeros((2, 3), device="sim:0"), np.zeros((2, 3), np.float32)),
                    (tc.full((2,), 7, dtype=tc.int8, device="sim:1"), np.full(2, 7, np.int8)),
                    (tc.arange(0.5, 3, 0.5, device="sim:0"), np.arange(0.5, 3, 0.5, dtype=np.float32)),
                    (tc.eye(3, k=-1, device="sim:0"), np.eye(3, k=-1, dtype=np.float32))]:
        assert isinstance(t._data, SimArray)
        np.testing.assert_array_equal(t.numpy(), want)
        assert t.numpy().dtype == want.dtype
    with pytest.raises(tc.OutOfMemoryError, match=r"out of memory on sim:0: .*host memory, where the sim backend"):
        tc.zeros((HUGE,), device="sim:0")
