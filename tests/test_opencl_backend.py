"""The OpenCL backend itself: devices, visibility, memory, errors (kernels are tested per family)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import tensorcore as tc
from tensorcore import registry

if "opencl:0" not in [str(d.device) for d in tc.devices()]:
    pytest.skip("no OpenCL device here (install an OpenCL driver, e.g. Debian's pocl-opencl-icd)", allow_module_level=True)


def _cl_device(index: int = 0):
    return registry.get_backend("opencl").device(index)


def test_devices_report_platform_type_compute_units_and_float64() -> None:
    info = [d for d in tc.devices() if d.backend == "opencl"][0]
    assert info.device == "opencl:0" and info.memory_bytes > 0 and info.name
    assert {"platform", "type", "compute_units", "float64"} <= set(info.details)


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("TENSORCORE_")} | env
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=120)


def test_visible_devices_variable_filters_by_index_and_name() -> None:
    code = "import tensorcore as tc; print([str(d.device) for d in tc.devices(all=True) if d.backend == 'opencl'], [d.reason for d in tc.devices(all=True) if d.backend == 'opencl'])"
    name_part = _cl_device().name.split("-")[0]
    assert "'opencl:0'" in _run(code, TENSORCORE_OPENCL_DEVICES="0").stdout
    assert "'opencl:0'" in _run(code, TENSORCORE_OPENCL_DEVICES=name_part).stdout
    missing = _run(code, TENSORCORE_OPENCL_DEVICES="no-such-gpu").stdout
    assert "no OpenCL device name contains 'no-such-gpu'" in missing


def test_out_of_memory_names_device_and_bytes_and_the_process_goes_on() -> None:
    huge = _cl_device().max_alloc + 1
    with pytest.raises(tc.OutOfMemoryError) as info:
        _cl_device().alloc(huge)
    msg = str(info.value)
    assert "opencl:0" in msg and f"{huge:,} bytes" in msg and "in use" in msg
    x = tc.ones((4,), device="opencl")  # still works
    np.testing.assert_array_equal(x.numpy(), np.ones(4, np.float32))


def test_memory_stats_count_bytes_in_use_and_peak() -> None:
    before = tc.memory_stats("opencl:0")
    x = tc.zeros((1 << 20,), device="opencl")  # 4 MiB
    during = tc.memory_stats("opencl:0")
    assert during["in_use"] >= before["in_use"] + x.size * 4
    assert during["peak"] >= during["in_use"] and during["cached"] >= 0
    del x
    assert tc.memory_stats("opencl:0")["in_use"] < during["in_use"]


def test_kernel_build_error_names_file_device_line_and_log() -> None:
    with pytest.raises(tc.errors.KernelBuildError) as info:
        _cl_device().build("broken.cl", "__kernel void f(__global float* a) {\n  a[0] = no_such_name;\n}", [])
    msg = str(info.value)
    assert "broken.cl" in msg and "opencl:0" in msg and "broken.cl:2: a[0] = no_such_name;" in msg
    assert "no_such_name" in msg.split("compiler log:")[1]


def test_float64_on_a_device_without_it_falls_back_visibly() -> None:
    dev = _cl_device()
    saved, dev.fp64 = dev.fp64, False
    try:
        with pytest.raises(tc.errors.KernelUnsupported, match="no float64 support"):
            dev.check_dtype(np.dtype(np.float64))
        dev.check_dtype(np.dtype(np.float32))
    finally:
        dev.fp64 = saved


def test_round_trip_of_every_dtype_and_empty_and_zero_d() -> None:
    for dtype in (np.bool_, np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64, np.float32, np.float64):
        a = (np.arange(7) % 3).astype(dtype)
        np.testing.assert_array_equal(tc.asarray(a, device="opencl").numpy(), a)
    assert tc.asarray(np.zeros((0, 3)), device="opencl").numpy().shape == (0, 3)
    assert tc.asarray(np.float32(2.5), device="opencl").numpy() == np.float32(2.5)


def test_reading_back_from_a_cpu_device_keeps_the_buffer_alive() -> None:
    import gc

    x = tc.asarray(np.arange(8, dtype=np.float32), device="opencl")
    host = x.numpy()
    del x
    gc.collect()
    others = [tc.full((8,), 7.0, device="opencl") for _ in range(4)]  # reuse pool blocks
    np.testing.assert_array_equal(host, np.arange(8, dtype=np.float32))
    assert all(o.numpy()[0] == 7.0 for o in others)


def test_unknown_opencl_index_warns_and_uses_cpu_or_raises_under_strict() -> None:
    x = tc.asarray([1.0], device="opencl:7")
    assert x.device == "cpu:0"
    with tc.placement_policy("strict"), pytest.raises(tc.DeviceUnavailableError, match=r"opencl:7 does not exist; the opencl backend has opencl:0"):
        tc.asarray([1.0], device="opencl:7")


def test_in_place_fallback_on_a_view_writes_into_its_base() -> None:
    from tensorcore import dispatch
    from tensorcore.ops.registry import OPS, Op, define

    op = OPS.get("test_double_in_place") or define(Op("test_double_in_place", lambda dst: np.multiply(dst, 2, out=dst)))
    x = tc.asarray(np.arange(6, dtype=np.float32).reshape(2, 3), device="opencl")
    row = x[1]  # a view of x's buffer
    dispatch.apply_inplace(op, row, ())  # no OpenCL kernel: runs on host copies, written back
    np.testing.assert_array_equal(x.numpy(), [[0, 1, 2], [6, 8, 10]])
    assert tc.placement_stats()["fallbacks"] == {"test_double_in_place@opencl:0": 1}


def test_in_place_fallback_reading_a_view_of_its_target_keeps_the_update() -> None:
    v = tc.Variable(tc.asarray(np.arange(4, dtype=np.float16), device="opencl"), trainable=False)
    v.assign_add(tc.flip(v, axis=0))  # float16 has no OpenCL kernel: runs on host copies
    np.testing.assert_array_equal(v.numpy(), [3, 3, 3, 3])


def test_an_upload_takes_the_values_of_the_moment_of_the_call() -> None:
    a = tc.asarray(np.ones((600, 600), np.float32), device="opencl")
    for _ in range(3):
        a = a @ a * 1e-3  # keep the queue busy
    host = np.ones(5, np.float32)
    t = tc.asarray(host, device="opencl")
    host[:] = 7
    np.testing.assert_array_equal(t.numpy(), np.ones(5, np.float32))


def test_threads_asking_for_a_device_first_all_get_it() -> None:
    code = """
import threading
import tensorcore as tc
results = []
def use():
    results.append(str(tc.asarray([1.0], device="opencl:0").device))
threads = [threading.Thread(target=use) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
print(sorted(results))
"""
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(["opencl:0"] * 4) and "unavailable" not in out.stderr


def test_host_views_map_several_arrays_with_one_wait_and_see_writes_back() -> None:
    """host_views: a view of each contiguous array (an offset slice included), None for a
    strided one; a write through a view is what the device holds once the view is dropped."""
    backend = registry.get_backend("opencl")
    a = tc.asarray(np.arange(12, dtype=np.float32).reshape(3, 4), device="opencl:0")
    b = tc.asarray(np.arange(5, dtype=np.int64), device="opencl:0")
    strided, rows = a.T, a[1:]
    views = backend.host_views([a._data, b._data, strided._data, rows._data])
    np.testing.assert_array_equal(views[0], np.arange(12).reshape(3, 4))
    np.testing.assert_array_equal(views[1], np.arange(5))
    assert views[2] is None
    np.testing.assert_array_equal(views[3], np.arange(4, 12).reshape(2, 4))
    views[1][0] = 42
    del views
    np.testing.assert_array_equal(b.numpy(), [42, 1, 2, 3, 4])
