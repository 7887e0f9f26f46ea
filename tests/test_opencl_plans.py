"""Launch plans (``backends/opencl_ops/_plans.py``): the GEMM's and the reductions' launches,
worked out once per layout and replayed with each call's buffers, give exactly what the
unplanned launchers give, for every call of a layout (not the first call's data again), in
any thread; a launcher that needs the calling thread's device state cannot be recorded."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import tensorcore as tc

DEV = "opencl:0"
if DEV not in [str(info.device) for info in tc.devices()]:
    pytest.skip("opencl:0 is unavailable here (no OpenCL driver, e.g. PoCL, or the backend failed to start)",
                allow_module_level=True)

from tensorcore.backends.opencl_ops import matmul as mm  # noqa: E402
from tensorcore.backends.opencl_ops import reduce_core as core  # noqa: E402
from tensorcore.backends.opencl_ops._plans import Recorder, Slot, record  # noqa: E402

from tensorcore import registry  # noqa: E402

rng = np.random.default_rng(14)


def _dev():  # noqa: ANN202 - the backend's device object
    return registry.get_backend("opencl").device(tc.Device(DEV).index)


def _data(a: np.ndarray):  # noqa: ANN202 - a CLArray
    return tc.asarray(a, device=DEV)._data


def _read(x) -> np.ndarray:  # noqa: ANN001
    return registry.get_backend("opencl").to_numpy(x).copy()


# (x shape, weight shape, activation): a batch small enough that gemm packs the batch, one
# large enough that it packs the weight, an edge tile, and the relu epilogue.
LINEAR_CASES = [((5, 7), (3, 7), None), ((64, 33), (17, 33), "relu"), ((3, 100), (200, 100), None),
                ((130, 20), (9, 20), "relu")]


@pytest.mark.parametrize("xs,ws,activation", LINEAR_CASES)
def test_planned_linear_equals_the_unplanned_gemm_on_every_call(xs, ws, activation) -> None:  # noqa: ANN001
    dev = _dev()
    for call in range(3):  # the first call records the plan; the later ones replay it with new buffers
        x, w = rng.standard_normal(xs, dtype=np.float32), rng.standard_normal(ws, dtype=np.float32)
        b = rng.standard_normal(ws[:1], dtype=np.float32)
        xd, wd, bd = _data(x), _data(w), _data(b)
        planned = _read(mm.linear(dev, xd, wd, bd, activation))
        out = mm.new(dev, (xs[0], ws[0]), np.dtype(np.float32))
        mm._gemm(dev, np.dtype(np.float32), xs[0], ws[0], xs[1], (), mm.Mat(xd.buf, 0, xs[1], 1),
                 mm.Mat(wd.buf, 0, 1, xs[1]), mm.Mat(out.buf, 0, ws[0], 1), mm.Mat(bd.buf, 0, 0, 1), activation)
        np.testing.assert_array_equal(planned, _read(out), err_msg=f"call {call}")
        expected = x @ w.T + b
        if activation == "relu":
            expected = np.maximum(expected, 0)
        np.testing.assert_allclose(planned, expected, rtol=1e-4, atol=1e-4)


def test_planned_batched_matmul_with_a_broadcast_operand() -> None:
    for _ in range(2):
        a = rng.standard_normal((4, 1, 6, 5), dtype=np.float32)
        b = rng.standard_normal((3, 5, 7), dtype=np.float32)
        np.testing.assert_allclose((tc.asarray(a, device=DEV) @ tc.asarray(b, device=DEV)).numpy(), a @ b,
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape,axes,how", [((64, 300), (0,), "sum"), ((70000,), (0,), "sum"),
                                            ((5, 6, 7), (0, 2), "mean"), ((8, 9), (1,), "max")])
def test_planned_reductions_follow_each_calls_input(shape, axes, how) -> None:  # noqa: ANN001
    for _ in range(3):
        x = rng.standard_normal(shape, dtype=np.float32)
        t = tc.asarray(x, device=DEV)
        got = getattr(tc, how)(t, axis=axes).numpy()
        np.testing.assert_allclose(got, getattr(np, how)(x, axis=axes), rtol=1e-5, atol=1e-5)


def test_a_reduction_of_a_transposed_view_is_planned_with_its_copy() -> None:
    # Interleaved kept and reduced axes: the reduction copies its input first, and the copy
    # is part of the plan (its output is a temporary of each call, not of the first).
    for _ in range(2):
        x = rng.standard_normal((6, 5, 4), dtype=np.float32)
        t = tc.permute_dims(tc.asarray(x, device=DEV), (1, 0, 2))
        np.testing.assert_allclose(tc.sum(t, axis=(0, 2)).numpy(), x.transpose(1, 0, 2).sum(axis=(0, 2)),
                                   rtol=1e-5, atol=1e-5)


def test_a_plan_made_in_one_thread_is_replayed_right_in_another() -> None:
    dev = _dev()
    shape = (37, 11)
    x = rng.standard_normal(shape, dtype=np.float32)
    w = rng.standard_normal((13, 11), dtype=np.float32)
    mm.linear(dev, _data(x), _data(w))  # plan recorded here
    results: dict[str, np.ndarray] = {}

    def other() -> None:
        x2 = rng.standard_normal(shape, dtype=np.float32)
        results["got"] = _read(mm.linear(dev, _data(x2), _data(w)))
        results["want"] = x2 @ w.T

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(30)
    np.testing.assert_allclose(results["got"], results["want"], rtol=1e-4, atol=1e-4)


def test_a_recorder_refuses_the_calling_threads_device_state() -> None:
    # A plan may be replayed by another thread, so a launcher must not bake this thread's
    # error record (or an upload, or the queue) into it.
    recorder = Recorder(_dev())
    for name in ("error_guard", "error_flag", "upload", "queue"):
        with pytest.raises(AttributeError, match=name):
            getattr(recorder, name)
    assert recorder.kernel is not None and recorder.simd_bytes in (32, 64)


def test_record_keeps_launches_and_names_the_temporaries() -> None:
    dev = _dev()
    a = Slot("a")
    plan, out = record(dev, lambda rec: core._reduce(
        rec, mm.CLArray(rec, a, (64, 300), np.dtype(np.float32)), (0,), False, core.SUM, core.IDENTITY,
        np.float32, np.float32))
    assert plan.launches and out.buf in plan.temps  # the output is a temporary of the plan
    assert plan.temp_bytes[plan.temps.index(out.buf)] == 300 * 4
    used = {slot for *_, slots in plan.launches for _, slot in slots}
    assert a in used  # the input's stand-in is replaced at replay


def test_a_plan_follows_the_devices_simd_width(monkeypatch: pytest.MonkeyPatch) -> None:
    # The GEMM's tile and build follow simd_bytes (tests switch it to check the other tile):
    # a plan made for one width must not be replayed for the other.
    dev = _dev()
    x, w = _data(rng.standard_normal((9, 20), dtype=np.float32)), _data(rng.standard_normal((7, 20), dtype=np.float32))
    launched: list = []
    launch = dev.launch
    monkeypatch.setattr(dev, "launch", lambda kernel, *rest: launched.append(kernel) or launch(kernel, *rest))
    for simd in (dev.simd_bytes, 96 - dev.simd_bytes):  # 64 <-> 32
        monkeypatch.setattr(dev, "simd_bytes", simd)
        mm.linear(dev, x, w)
        assert launched[-1] is dev.kernel("matmul.cl", "gemm", mm.defines(dev, np.dtype(np.float32)) +
                                          (("KBLOCK", "0"), ("ACT", "0"))), simd
