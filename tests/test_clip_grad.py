"""Global norms and gradient clipping: the ``norm_partial`` op (one pass over many tensors) and
``tc.nn.utils.clip_grad_norm`` / ``global_norm``, on every device against NumPy, eager and traced."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tensorcore as tc
from tensorcore.nn.utils import clip_grad_norm, global_norm
from tensorcore.ops.global_norm import NORM_PARTIAL, norm_partial

from support import check_grad, check_op

rng = np.random.default_rng(3)
NORMS = [2.0, 1.0, 3.0, math.inf]


def _partial_ref(*xs: np.ndarray, norm_type: float) -> np.ndarray:
    dtype = np.result_type(*xs)
    flat = np.concatenate([x.ravel() for x in xs]).astype(np.float64)
    if norm_type == math.inf:
        return np.asarray(np.abs(flat).max() if flat.size else 0.0, dtype)
    return np.asarray((np.abs(flat) ** norm_type).sum(), dtype)


def _norm_ref(arrays: list[np.ndarray], norm_type: float) -> float:
    flat = np.concatenate([a.ravel().astype(np.float64) for a in arrays])
    return float(np.abs(flat).max()) if norm_type == math.inf else float((np.abs(flat) ** norm_type).sum() ** (1 / norm_type))


def _shapes(n: int) -> list[tuple[int, ...]]:
    return [(3, 4), (7,), (0, 3), (2, 3, 2), (1,)] + [(5,)] * (n - 5)


@pytest.mark.parametrize("norm_type", NORMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_norm_partial_reads_many_tensors_as_one_vector(device: str, norm_type: float, dtype: type) -> None:
    arrays = [rng.standard_normal(s).astype(dtype) for s in _shapes(21)]  # 21: two groups of the OpenCL kernel
    arrays[3][1, 2, 0] = -4.5  # the largest magnitude
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    check_op(lambda *xs: norm_partial(*xs, norm_type=norm_type), lambda *xs: _partial_ref(*xs, norm_type=norm_type),
             arrays, device, rtol=rtol)


@pytest.mark.parametrize("norm_type", [2.0, math.inf])
def test_norm_partial_of_large_tensors_and_strided_views(device: str, norm_type: float) -> None:
    big = rng.standard_normal(300_007).astype(np.float32)  # many chunks per tensor, and a tail
    wide = rng.standard_normal((40, 3000)).astype(np.float32)
    big[123_456] = 9.0
    on = [tc.asarray(big, device=device), tc.asarray(wide, device=device).T, tc.asarray(wide, device=device)[:, ::7]]
    expected = _partial_ref(big, wide.T, wide[:, ::7], norm_type=norm_type)
    np.testing.assert_allclose(norm_partial(*on, norm_type=norm_type).numpy(), expected, rtol=2e-5)
    assert not tc.placement_stats()["fallbacks"], "norm_partial fell back to cpu"


@pytest.mark.parametrize("norm_type", NORMS)
def test_norm_partial_gradient_matches_finite_differences(device: str, norm_type: float) -> None:
    arrays = [rng.uniform(0.2, 1.0, (2, 3)) * rng.choice([-1, 1], (2, 3)), np.array([1.7, -0.4, 0.9])]
    check_grad(lambda a, b: norm_partial(a, b, norm_type=norm_type), arrays, device)


@pytest.mark.parametrize("norm_type", NORMS)
def test_norm_partial_composite_matches_the_reference(device: str, norm_type: float) -> None:
    """The form a backend without the kernel runs (on its own device)."""
    arrays = [rng.standard_normal(s) for s in [(3, 2), (0,), (4,)]]
    check_op(lambda *xs: NORM_PARTIAL.composite(*xs, norm_type=norm_type),
             lambda *xs: _partial_ref(*xs, norm_type=norm_type), arrays, device, rtol=1e-12)


def test_norm_partial_of_non_finite_values(device: str) -> None:
    for bad, expected in ((np.nan, (math.nan, math.nan)), (np.inf, (math.inf, math.inf))):
        a = np.ones(50_000, np.float32)
        a[777] = bad
        x = tc.asarray(a, device=device)
        got = (float(norm_partial(x).numpy()), float(norm_partial(x, norm_type=math.inf).numpy()))
        np.testing.assert_array_equal(got, expected)


def test_the_global_norm_of_a_device_costs_one_op_there(device: str) -> None:
    grads = [tc.asarray(rng.standard_normal(s).astype(np.float32), device=device) for s in _shapes(20)]
    tc.reset_placement_stats()
    norm = global_norm(grads)
    assert tc.placement_stats()["ops_per_device"] == {str(tc.Device(device)): 2}  # norm_partial, then sqrt
    np.testing.assert_allclose(float(norm.numpy()), _norm_ref([g.numpy() for g in grads], 2.0), rtol=1e-5)


def test_opencl_reads_twenty_gradients_in_three_launches(monkeypatch: pytest.MonkeyPatch) -> None:
    if not any(str(i.device).startswith("opencl") for i in tc.devices()):
        pytest.skip("no OpenCL device")
    from tensorcore import registry

    dev = registry.get_backend("opencl").device(0)
    grads = [tc.asarray(rng.standard_normal(s).astype(np.float32), device="opencl:0") for s in _shapes(20)]
    launches = []
    original = dev.launch
    monkeypatch.setattr(dev, "launch", lambda kernel, *args: (launches.append(kernel.function_name), original(kernel, *args)))
    norm_partial(*grads)
    monkeypatch.undo()
    assert launches == ["norm_partial", "norm_partial", "reduce_rows"]  # 16 + 4 tensors, then the partials


# --- clip_grad_norm ---------------------------------------------------------------------------------


@pytest.mark.parametrize("norm_type", NORMS)
def test_clip_grad_norm_scales_every_gradient_by_one_coefficient(device: str, norm_type: float) -> None:
    arrays = [rng.standard_normal(s).astype(np.float32) for s in [(4, 3), (3,), (2, 2, 2)]]
    grads = [tc.asarray(arrays[0], device=device), None, tc.asarray(arrays[1], device=device),
             tc.asarray(arrays[2], device=device), None]
    total = _norm_ref(arrays, norm_type)
    clipped, norm = clip_grad_norm(grads, max_norm=0.5, norm_type=norm_type)
    assert clipped[1] is None and clipped[4] is None and len(clipped) == 5
    np.testing.assert_allclose(float(norm.numpy()), total, rtol=1e-5)
    assert norm.device == tc.Device(device)
    coef = 0.5 / (total + 1e-6)
    for got, a in zip([clipped[0], clipped[2], clipped[3]], arrays):
        assert got.device == tc.Device(device) and got.dtype == np.float32
        np.testing.assert_allclose(got.numpy(), a * coef, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(_norm_ref([c.numpy() for c in clipped if c is not None], norm_type), 0.5, rtol=1e-4)
    same, _ = clip_grad_norm(grads, max_norm=total * 2, norm_type=norm_type)  # under the limit: unchanged
    for got, a in zip([same[0], same[2], same[3]], arrays):
        np.testing.assert_array_equal(got.numpy(), a)


def test_clip_grad_norm_gradient_flows_through_the_coefficient(device: str) -> None:
    """The clipped gradients are differentiable functions of the gradients (second-order use)."""
    def clipped_sum(a: tc.Tensor, b: tc.Tensor) -> tuple:
        return tuple(clip_grad_norm([a, b], max_norm=1.0)[0])
    check_grad(clipped_sum, [rng.standard_normal((2, 3)), rng.standard_normal(4)], device)


def test_non_finite_gradients_poison_every_clipped_gradient_or_raise(device: str) -> None:
    for bad in (np.inf, np.nan):
        a = np.ones((3,), np.float32)
        a[1] = bad
        grads = [tc.asarray(a, device=device), tc.ones((2,), device=device)]
        clipped, norm = clip_grad_norm(grads, max_norm=1.0)
        assert not math.isfinite(float(norm.numpy()))
        assert all(np.isnan(c.numpy()).all() for c in clipped)
        with pytest.raises(FloatingPointError, match="total norm of order 2.0 of the gradients is (inf|nan)"):
            clip_grad_norm(grads, max_norm=1.0, error_if_nonfinite=True)


def test_clip_grad_norm_inside_tc_function_matches_eager(device: str) -> None:
    tc.random.seed(0)
    model = tc.nn.Sequential(tc.nn.Linear(6, 8, device=device), tc.nn.GELU(), tc.nn.Linear(8, 3, device=device))
    x = tc.asarray(rng.standard_normal((16, 6)).astype(np.float32) * 5, device=device)
    y = tc.asarray(rng.integers(0, 3, 16), device=device)

    def grads_and_norm(x: tc.Tensor, y: tc.Tensor) -> tuple:
        with tc.GradientTape() as tape:
            loss = tc.nn.CrossEntropyLoss()(model(x), y)
        clipped, norm = clip_grad_norm(tape.gradient(loss, model.parameters()), max_norm=0.1)
        return tuple(clipped) + (norm,)

    eager = grads_and_norm(x, y)
    traced = tc.function(grads_and_norm)
    for _ in range(2):
        graph = traced(x, y)
    assert traced.trace_count == 1  # no value was read while tracing: no host round trip
    assert float(eager[-1].numpy()) > 0.1  # the clip is active
    for g, e in zip(graph, eager):
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-5, atol=1e-7)


def test_clip_grad_norm_combines_devices_and_dtypes() -> None:
    devices = [str(i.device) for i in tc.devices()]
    other = next((d for d in devices if not d.startswith("cpu")), "cpu:0")
    arrays = [rng.standard_normal((3, 2)).astype(np.float32), rng.standard_normal(4), rng.standard_normal(5).astype(np.float32)]
    grads = [tc.asarray(arrays[0], device=other), tc.asarray(arrays[1], device="cpu"), tc.asarray(arrays[2], device=other)]
    clipped, norm = clip_grad_norm(grads, max_norm=1.0, norm_type=3.0)
    assert norm.device == tc.Device(other) and norm.dtype == np.float64  # the first gradient's device
    total = _norm_ref(arrays, 3.0)
    np.testing.assert_allclose(float(norm.numpy()), total, rtol=1e-6)
    for c, g, a in zip(clipped, grads, arrays):
        assert c.device == g.device and c.dtype == g.dtype
        np.testing.assert_allclose(c.numpy(), a / (total + 1e-6), rtol=1e-5)


@pytest.mark.parametrize("call, match", [
    (lambda g: clip_grad_norm(g, max_norm=-1.0), "max_norm must be a finite number >= 0"),
    (lambda g: clip_grad_norm(g, max_norm=1.0, norm_type=0), "norm_type must be a positive number or inf"),
    (lambda g: clip_grad_norm(g, max_norm=1.0, norm_type="fro"), "norm_type must be a positive number or inf"),
    (lambda g: clip_grad_norm(g[0], max_norm=1.0), "got one tensor; wrap it in a list"),
    (lambda g: clip_grad_norm([g[0], 3.0], max_norm=1.0), "entry 1 must be a tensor or None, got float"),
    (lambda g: clip_grad_norm([tc.asarray([1, 2])], max_norm=1.0), "entry 0 must be floating point, got int64"),
    (lambda g: global_norm([None]), "needs at least one tensor"),
])
def test_bad_arguments_are_named(call, match: str) -> None:
    with pytest.raises(tc.OpError, match=match):
        call([tc.ones((2,))])


def test_nothing_to_clip_gives_a_zero_norm() -> None:
    clipped, norm = clip_grad_norm([None, None], max_norm=1.0)
    assert clipped == [None, None] and float(norm.numpy()) == 0.0


# --- the CUDA launcher, without a GPU (tests/test_cuda_backend.py's checking device) -----------------

try:
    from test_cuda_backend import CheckingDevice, _fake, needs_cpp
except ImportError:  # pragma: no cover - the harness moved
    CheckingDevice, _fake, needs_cpp = None, None, pytest.mark.skip(reason="tests/test_cuda_backend.py's harness")


def _emulate_chunks(table: np.ndarray, count: int, chunk: int, dtype: np.dtype, norm_type: float) -> np.ndarray:
    """What norm_partial_chunks computes per block, read through the table's pointers as the kernel does."""
    import ctypes

    ptrs, sizes, ends = table[:count], table[count:2 * count], table[2 * count:3 * count]
    ctype = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    parts = []
    for w in range(int(ends[-1])):
        i = int(np.searchsorted(ends, w, side="right"))
        start = (w - (int(ends[i - 1]) if i else 0)) * chunk
        values = np.ctypeslib.as_array(ctypes.cast(int(ptrs[i]), ctypes.POINTER(ctype)), shape=(int(sizes[i]),))
        part = np.abs(values[start:start + min(chunk, int(sizes[i]) - start)].astype(np.float64))
        parts.append(part.max(initial=0) if norm_type == math.inf else (part ** norm_type).sum())
    return np.array(parts)


@needs_cpp
@pytest.mark.parametrize("norm_type", NORMS)
def test_cuda_launcher_builds_a_table_the_kernel_reads_correctly(norm_type: float) -> None:
    from tensorcore.backends.cuda_ops import KERNELS

    from tensorcore.errors import KernelUnsupported

    class Recording(CheckingDevice):
        def launch(self, source: str, name: str, defines: tuple, grid: tuple, block: tuple, args: tuple) -> None:
            super().launch(source, name, defines, grid, block, args)
            self.calls = getattr(self, "calls", []) + [(name, dict(defines), grid, [np.array(a) for a in args])]

    arrays = [rng.standard_normal(s) for s in [(3, 4), (0,), (20_000,), (1,), (90, 100)]]
    fakes = [_fake(a) for a in arrays]  # kept alive: the emulation reads them through the table's pointers
    dev = Recording()
    out = KERNELS["norm_partial"](dev, *fakes, norm_type=norm_type)
    assert out.shape == () and out.dtype == np.float64
    (name, defines, grid, (partials, table, count, chunk, p)), *rest = dev.calls
    assert name == "norm_partial_chunks" and defines["MODE"] == str(0 if norm_type == 2 else 1 if norm_type == math.inf else 2)
    assert count == 4 and chunk == 8192 and list(table[4:]) == [12, 20_000, 1, 9000, 1, 4, 5, 7] and grid == (7,)
    assert [n for n, *_ in rest] in (["reduce_rows"], ["reduce_rows_warp"])  # the 7 partials, in one more launch
    per_block = _emulate_chunks(table, int(count), int(chunk), np.dtype(np.float64), norm_type)
    np.testing.assert_allclose(per_block.max() if norm_type == math.inf else per_block.sum(),
                               _partial_ref(*arrays, norm_type=norm_type), rtol=1e-12)
    assert list(dev.calls[0][3][1][:4]) == [f.data.ptr for f in fakes if f.size]
    view = Recording()
    KERNELS["norm_partial"](view, fakes[4].T, norm_type=norm_type)  # a strided view: gathered first, then read
    assert [n for n, *_ in view.calls][-2:] in (["norm_partial_chunks", "reduce_rows"], ["norm_partial_chunks", "reduce_rows_warp"])
    assert list(view.calls[-2][3][1][1:]) == [9000, 2]
    one = Recording()
    KERNELS["norm_partial"](one, _fake(np.ones(5, np.float32)), norm_type=norm_type)
    assert [n for n, *_ in one.calls] == ["norm_partial_chunks"]  # a single chunk writes the result itself
    with pytest.raises(KernelUnsupported, match="norm_partial"):
        KERNELS["norm_partial"](Recording(), _fake(np.ones(2, np.float32)), _fake(np.ones(2)), norm_type=2.0)
