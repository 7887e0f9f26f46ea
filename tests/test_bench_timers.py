"""Device clocks in ``tc.bench`` (issue #14): the statistics of device samples, when a clock is
read, OpenCL marker events on a queue made with ``TENSORCORE_OPENCL_PROFILING=1`` (in a child
process: the variable is read when the backend starts), ``bench kernels --no-device-timers``,
CUDA events against a stand-in for CuPy (no GPU here: that test checks the wiring only); and the
options the fixed suites time with (a fixed ``number``, a zero budget, ``setup``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import types

import pytest
from tensorcore.benchmarks import kernel_report as report
from tensorcore.benchmarks import kernels

import tensorcore as tc


class CountingTimer:
    """A DeviceTimer whose device takes exactly 1 ms per block, counting its calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")

    def stop(self) -> None:
        self.calls.append("stop")

    def elapsed(self) -> float:
        self.calls.append("elapsed")
        return 1e-3


def test_device_samples_have_their_own_statistics() -> None:
    t = tc.bench.Timing.from_samples([5.0, 1.0, 4.0, 2.0, 3.0], number=1, device_samples=[0.5, 0.1, 0.4, 0.2, 0.3])
    assert (t.device_median, t.device_iqr) == (pytest.approx(0.3), pytest.approx(0.2))
    assert "device=300 ms" in repr(t)
    plain = tc.bench.Timing.from_samples([1.0], number=1)
    assert plain.device_median is None and plain.device_iqr is None and "device=" not in repr(plain)


def test_a_timer_brackets_every_block_and_only_samples_are_kept() -> None:
    timer = CountingTimer()
    t = tc.bench.interleaved({"fn": lambda: None}, timers={"fn": timer}, budget=0.02, warmup=0.01, rounds=1,
                             rest=0)["fn"]
    assert timer.calls.count("start") == timer.calls.count("stop") > t.repeats  # the warm-up's blocks too
    assert timer.calls.count("elapsed") == t.repeats == len(t.device_samples)
    assert t.device_median == pytest.approx(1e-3 / t.number)  # per call, like the wall time


def test_which_devices_have_a_clock(device: str) -> None:
    assert tc.bench.device_timer(None) is None and tc.bench.device_timer(lambda: None) is None
    timer = tc.bench.device_timer(device)
    kind = tc.Device(device).type
    if kind == "cpu":
        assert timer is None
    elif kind == "opencl":  # markers only where the queue records profiling, as this process's may not
        from tensorcore import registry

        profiling = registry.get_backend("opencl").device(tc.Device(device).index).profiling
        assert isinstance(timer, tc.bench.OpenCLMarkers) == profiling
    else:
        assert isinstance(timer, tc.bench.CUDAEvents)


CHILD = """
import json, numpy as np, tensorcore as tc
from tensorcore import registry
a = tc.asarray(np.ones(1 << 18, np.float32), device="opencl:0")
m = tc.asarray(np.ones((256, 256), np.float32), device="opencl:0")
out = {"profiling": registry.get_backend("opencl").device(0).profiling}
for name, fn, args in (("add", tc.add, (a, a)), ("matmul", tc.matmul, (m, m))):
    t = tc.bench.timeit(fn, *args, budget=0.1, warmup=0.0, device="opencl:0")
    out[name] = [t.median, t.device_median, len(t.device_samples), t.repeats]
print(json.dumps(out))
"""


def test_opencl_markers_read_device_seconds_when_profiling_is_on() -> None:
    if "opencl:0" not in [str(d.device) for d in tc.devices()]:
        pytest.skip("no opencl:0 here")
    env = {**os.environ, "TENSORCORE_OPENCL_PROFILING": "1", "POCL_MAX_PTHREAD_COUNT": "2"}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.splitlines()[-1])
    assert got["profiling"] is True
    for name in ("add", "matmul"):
        wall, on_device, samples, repeats = got[name]
        # the device's span lies inside the host's timed region, which also holds the wait
        assert 0 < on_device <= wall * 1.1 and samples == repeats, (name, got[name])


def test_kernels_no_device_timers_stays_in_process_without_device_seconds(tmp_path) -> None:
    if "opencl:0" not in [str(d.device) for d in tc.devices()]:
        pytest.skip("no opencl:0 here")
    out = tmp_path / "r.json"
    argv = ["--device", "opencl:0", "--op", "add", "--size", "small", "--no-peak", "--no-device-timers",
            "--json", str(out), "--budget", "0.02", "--rounds", "1", "--rest", "0", "--warmup", "0", "--no-progress"]
    assert kernels.main(argv) == 0
    (r,) = report.read_json(out)
    assert r["error"] is None and r["median_s"] > 0 and r["device_median_s"] is None


def test_cuda_events_with_a_stand_in_for_cupy() -> None:
    """Not CuPy: a stand-in that records what was asked of it. CUDAEvents has never run on a GPU."""
    log: list[tuple] = []

    class Event:
        def record(self, stream: object) -> None:
            log.append(("record", stream, current[-1]))
            self.at = len(log)

    class Device:
        def __init__(self, index: int) -> None:
            self.index = index

        def __enter__(self) -> None:
            current.append(self.index)

        def __exit__(self, *exc: object) -> None:
            current.pop()

    current = [0]
    cuda = types.SimpleNamespace(Event=Event, Device=Device, get_elapsed_time=lambda a, b: 2.5 * (b.at - a.at))
    timer = tc.bench.CUDAEvents(types.SimpleNamespace(cuda=cuda), 1, lambda: "stream-1")
    timer.start()
    timer.stop()
    assert timer.elapsed() == pytest.approx(2.5e-3)  # get_elapsed_time answers in milliseconds
    assert log == [("record", "stream-1", 1), ("record", "stream-1", 1)]  # on device 1's stream, device 1 current


# --- counted samples, fixed blocks and setup (what the fixed suites time with) ------------------

def test_a_zero_budget_takes_exactly_min_repeats_samples_of_a_fixed_number_of_calls() -> None:
    calls: list[str] = []
    t = tc.bench.interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, budget=0, warmup=0,
                             rounds=3, rest=0, min_repeats=6, number=4)
    assert all((x.repeats, x.number) == (6, 4) for x in t.values())
    assert calls.count("a") == calls.count("b") == 1 + 6 * 4  # the first call, then the samples: no warm-up blocks
    assert calls[:18] == ["a", "b"] + ["a"] * 8 + ["b"] * 8  # the first calls, then round 1: 2 samples each, in turn
    single = tc.bench.timeit(time.sleep, 0.001, budget=0, warmup=0, min_repeats=3, number=2)
    assert (single.repeats, single.number) == (3, 2) and single.median >= 0.001
    with pytest.raises(ValueError, match="number"):
        tc.bench.interleaved({"a": lambda: None}, number=0)


def test_setup_runs_untimed_before_every_block() -> None:
    log: list[str] = []

    def setup() -> None:
        log.append("setup")
        time.sleep(0.01)  # would show in the figures if it were timed

    t = tc.bench.interleaved({"fn": lambda: log.append("fn")}, budget=0, warmup=0, rounds=2, rest=0, min_repeats=4,
                             number=3, setup=setup)["fn"]
    assert log[:2] == ["fn", "setup"]  # the first call, then a setup before each block
    assert log[1:] == ["setup", "fn", "fn", "fn"] * 4
    assert t.median < 0.002 and t.repeats == 4
