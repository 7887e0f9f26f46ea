"""The CUDA backend: how it reports itself where it cannot start (here: no GPU), the pieces
that run without one (start-up errors, kernel source loading, launch planning), and, where a
GPU exists, the key ops against NumPy under strict placement (so a fallback to cpu fails).

With a GPU and CuPy, ``cuda:0`` also joins the whole suite's device matrix (tests/conftest.py).
"""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import pytest
from tensorcore.backends import cuda as cuda_backend
from tensorcore.backends.cuda_ops import matmul as cuda_matmul
from tensorcore.backends.cuda_ops import reduce as cuda_reduce

import tensorcore as tc
from tensorcore.errors import KernelUnsupported

CUDA = "cuda:0"
HAVE_CUDA = CUDA in [str(d.device) for d in tc.devices()]
needs_gpu = pytest.mark.skipif(not HAVE_CUDA, reason="no CUDA device")


# --- without a GPU ------------------------------------------------------------------------------


def test_unavailable_cuda_is_listed_with_what_is_missing() -> None:
    if HAVE_CUDA:
        pytest.skip("a CUDA device is available here")
    entries = [d for d in tc.devices(all=True) if d.backend == "cuda"]
    assert len(entries) == 1 and not entries[0].available
    reason = entries[0].reason or ""
    assert "CuPy is not installed: pip install 'tensorcore[cuda]'" in reason or "no CUDA driver or GPU:" in reason, reason


def test_missing_cupy_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` raises ModuleNotFoundError
    with pytest.raises(RuntimeError, match=r"CuPy is not installed: pip install 'tensorcore\[cuda\]'"):
        cuda_backend.CUDABackend()


def test_missing_driver_or_gpu_passes_on_cupys_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_driver() -> int:
        raise RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version")

    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_driver))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with pytest.raises(RuntimeError, match="no CUDA driver or GPU: cudaErrorInsufficientDriver"):
        cuda_backend.CUDABackend()
    fake.cuda.runtime.getDeviceCount = lambda: 0
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(RuntimeError, match="no CUDA driver or GPU: the driver reports no device .CUDA_VISIBLE_DEVICES=''."):
        cuda_backend.CUDABackend()


def test_kernel_sources_are_loaded_with_their_headers_inlined() -> None:
    text = cuda_backend.kernel_source("reduce.cu")
    assert '#include "common.cuh"' not in text
    assert "tc_max_nan" in text and "__shfl_down_sync" in text
    assert text.count("#define TENSORCORE_COMMON_CUH") == 1


def test_reduction_plans_read_adjacent_axes_as_a_n_b() -> None:
    assert cuda_reduce.plan((4, 5, 6), (2,)) == (20, 6, 1)
    assert cuda_reduce.plan((4, 5, 6), (0,)) == (1, 4, 30)
    assert cuda_reduce.plan((4, 5, 6), (1,)) == (4, 5, 6)
    assert cuda_reduce.plan((4, 5, 6), (0, 1, 2)) == (1, 120, 1)
    assert cuda_reduce.plan((4, 1, 6), (0, 1)) == (1, 4, 6)
    assert cuda_reduce.plan((4, 5, 6), ()) == (120, 1, 1)
    with pytest.raises(KernelUnsupported):
        cuda_reduce.plan((4, 5, 6), (0, 2))


def test_batch_dimensions_merge_into_one_grid_axis_or_are_declined() -> None:
    # (2, 3) batch, contiguous A (M*K = 12 per matrix), B broadcast, C contiguous (M*N = 8)
    assert cuda_matmul.merge_batch((2, 3), [(36, 12), (0, 0), (24, 8)]) == (6, [12, 0, 8])
    assert cuda_matmul.merge_batch((1, 5), [(0, 7), (9, 9)]) == (5, [7, 9])
    assert cuda_matmul.merge_batch((), [(), ()]) == (1, [0, 0])
    with pytest.raises(KernelUnsupported):
        cuda_matmul.merge_batch((2, 3), [(0, 12), (3, 1)])  # A broadcast along one batch dim only


# --- with a GPU: the key ops against NumPy --------------------------------------------------------


def _on(x: np.ndarray) -> tc.Tensor:
    return tc.asarray(x, device=CUDA)


rng = np.random.default_rng(0)


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shapes", [((130, 70), (70, 257)), ((1, 1), (1, 1)), ((3, 129, 8), (8, 5)), ((2, 1, 4, 6), (3, 6, 7)),
                                    ((5,), (5, 9)), ((9, 5), (5,))])
def test_matmul_matches_numpy(shapes: tuple, dtype: type) -> None:
    a = rng.standard_normal(shapes[0]).astype(dtype)
    b = rng.standard_normal(shapes[1]).astype(dtype)
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    with tc.placement_policy("strict"):
        np.testing.assert_allclose(tc.matmul(_on(a), _on(b)).numpy(), a @ b, rtol=rtol, atol=rtol)
        if a.ndim == 2 and b.ndim == 2:  # transposed views, read through strides
            at, bt = _on(a.T.copy()), _on(b.T.copy())
            got = tc.matmul(tc.permute_dims(at, (1, 0)), tc.permute_dims(bt, (1, 0))).numpy()
            np.testing.assert_allclose(got, a @ b, rtol=rtol, atol=rtol)


@needs_gpu
def test_linear_and_its_weight_gradient_match_numpy() -> None:
    x, w, bias = (rng.standard_normal(s).astype(np.float32) for s in ((33, 20), (17, 20), (17,)))
    g = rng.standard_normal((33, 17)).astype(np.float32)
    from tensorcore.dispatch import apply
    from tensorcore.ops.registry import OPS

    with tc.placement_policy("strict"):
        np.testing.assert_allclose(tc.nn.functional.linear(_on(x), _on(w), _on(bias)).numpy(), x @ w.T + bias,
                                   rtol=1e-4, atol=1e-5)
        got = apply(OPS["linear_backward_weight"], (_on(g), _on(x)), {}).numpy()
        np.testing.assert_allclose(got, g.T @ x, rtol=1e-4, atol=1e-5)


@needs_gpu
def test_add_broadcasts_tensors_views_and_scalars() -> None:
    a = rng.standard_normal((4, 5, 6)).astype(np.float32)
    b = rng.standard_normal((5, 1)).astype(np.float32)
    with tc.placement_policy("strict"):
        np.testing.assert_array_equal(tc.add(_on(a), _on(a)).numpy(), a + a)
        np.testing.assert_array_equal(tc.add(_on(a), _on(b)).numpy(), a + b)
        np.testing.assert_array_equal(tc.add(_on(a), 2.5).numpy(), a + np.float32(2.5))
        np.testing.assert_array_equal(tc.add(tc.permute_dims(_on(a), (2, 0, 1)), 1.0).numpy(), a.transpose(2, 0, 1) + 1)
        np.testing.assert_array_equal(tc.less(_on(a), 0.0).numpy(), a < 0)


@needs_gpu
@pytest.mark.parametrize("shape,axis", [((1000,), None), ((37, 3000), (1,)), ((3000, 37), (0,)), ((4, 5, 6), (1,)),
                                        ((2, 300_000), (1,)), ((0, 4), (0,))])
def test_sum_mean_max_match_numpy(shape: tuple, axis: tuple | None) -> None:
    x = rng.standard_normal(shape).astype(np.float32)
    t = _on(x)
    with tc.placement_policy("strict"):
        np.testing.assert_allclose(tc.sum(t, axis=axis).numpy(), x.sum(axis=axis), rtol=1e-5, atol=1e-4)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the mean of an empty axis is NaN
            want = x.mean(axis=axis)
        np.testing.assert_allclose(tc.mean(t, axis=axis).numpy(), want, rtol=1e-5, atol=1e-6)
        if x.size:
            np.testing.assert_array_equal(tc.max(t, axis=axis).numpy(), x.max(axis=axis))


@needs_gpu
@pytest.mark.parametrize("shape", [(4, 10), (3, 1000), (2, 70_001), (5, 1)])
def test_softmax_log_softmax_and_cross_entropy_match_numpy(shape: tuple) -> None:
    from tensorcore.dispatch import apply
    from tensorcore.ops.registry import OPS

    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    z = x.astype(np.float64) - x.max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    labels = rng.integers(0, shape[1], shape[0])
    with tc.placement_policy("strict"):
        np.testing.assert_allclose(tc.nn.functional.softmax(_on(x), axis=-1).numpy(), probs, atol=1e-6)
        np.testing.assert_allclose(tc.nn.functional.log_softmax(_on(x), axis=-1).numpy(), np.log(probs),
                                   rtol=1e-5, atol=1e-5)
        loss, p = apply(OPS["cross_entropy"], (_on(x), _on(labels)), {"reduction": "mean"})
        np.testing.assert_allclose(loss.numpy(), -np.log(probs[np.arange(shape[0]), labels]).mean(), rtol=1e-5)
        g = apply(OPS["cross_entropy_backward"], (_on(np.float32(1.0)), _on(x), p, _on(labels)), {"reduction": "mean"})
        onehot = np.zeros(shape)
        onehot[np.arange(shape[0]), labels] = 1.0
        want = (probs - onehot) / shape[0]
        np.testing.assert_allclose(g.numpy(), want, atol=1e-6)


@needs_gpu
def test_out_of_range_label_is_reported_at_the_next_read() -> None:
    from tensorcore.dispatch import apply
    from tensorcore.ops.registry import OPS

    loss, _ = apply(OPS["cross_entropy"], (_on(np.zeros((2, 3), np.float32)), _on(np.array([0, 3]))), {"reduction": "sum"})
    with pytest.raises(tc.errors.OpError, match="out of range for 3 classes"):
        loss.numpy()


def _optimizer_run(cls: type, device: str, dtype: type, **kwargs: object) -> np.ndarray:
    from tensorcore import optim

    p = tc.Variable(np.random.default_rng(1).standard_normal((5, 3)).astype(dtype), device=device)
    opt = getattr(optim, cls)([p], **kwargs)
    for k in range(4):
        opt.step([tc.asarray(np.random.default_rng(10 + k).standard_normal((5, 3)).astype(dtype), device=device)])
    return p.numpy()


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls,kwargs", [
    ("SGD", {"lr": 0.1}), ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("Adam", {"lr": 0.01}), ("Adam", {"lr": 0.01, "weight_decay": 0.1}), ("AdamW", {"lr": 0.02, "weight_decay": 0.1}),
])
def test_fused_sgd_and_adam_steps_match_the_cpu(cls: str, kwargs: dict, dtype: type) -> None:
    want = _optimizer_run(cls, "cpu", dtype, **kwargs)
    with tc.placement_policy("strict"):
        got = _optimizer_run(cls, CUDA, dtype, **kwargs)
    np.testing.assert_allclose(got, want, rtol=2e-6 if dtype == np.float32 else 1e-14, atol=1e-7)


@needs_gpu
def test_memory_stats_and_out_of_memory() -> None:
    before = tc.memory_stats(CUDA)
    x = tc.zeros((1 << 20,), device=CUDA)
    during = tc.memory_stats(CUDA)
    assert during["in_use"] >= before["in_use"] + 4 * (1 << 20) and during["peak"] >= during["in_use"]
    del x
    huge = 1 << 50  # a petabyte: fails even after the pool is emptied
    with pytest.raises(tc.OutOfMemoryError) as info:
        from tensorcore import registry

        dev = registry.get_backend("cuda").device(0)
        with dev.activate():
            dev.empty((huge,), np.uint8)
    assert "cuda:0" in str(info.value) and f"{huge:,} bytes" in str(info.value)
