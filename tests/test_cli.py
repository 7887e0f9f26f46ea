"""The ``tensorcore`` command: devices, and the main job ``train`` with its device choice."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tensorcore import dispatch_checks, registry


def run(*args: str, timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    """Run ``python -m tensorcore`` with a clean TENSORCORE_* environment plus ``env``."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TENSORCORE_")} | env
    return subprocess.run([sys.executable, "-m", "tensorcore", *args], env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def test_devices_prints_a_table_with_cpu_and_the_default() -> None:
    out = run("devices", "--ops")
    assert out.returncode == 0, out.stderr
    assert re.search(r"^cpu:0\s+cpu\s+\S", out.stdout, re.M)
    assert "default device: cpu:0" in out.stdout
    assert re.search(r"cpu: \d+ native ops; 0 run on the device as compositions of other ops; 0 fall back to cpu", out.stdout)
    complex_line = "  complex numbers (complex64, complex128): "
    cpu_section = out.stdout.split("\ncpu: ")[1].split("\n\n")[0]
    assert complex_line not in cpu_section  # cpu computes complex numbers natively, every op
    if "\nopencl: " in out.stdout:  # the ops with complex kernels there, from the backend's declaration
        native = dispatch_checks.complex_ops_of(registry.get_backend("opencl"))
        assert isinstance(native, frozenset) and {"add", "multiply", "sum", "matmul"} <= native
        opencl_section = out.stdout.split("\nopencl: ")[1].split("\n\n")[0]
        assert (f"{complex_line}native for {', '.join(sorted(native))}; every other op on them falls back to cpu "
                "(complex128 only where float64 runs)") in opencl_section


def test_train_with_a_bogus_device_exits_nonzero_naming_the_valid_devices() -> None:
    out = run("train", "--epochs", "1", TENSORCORE_DEVICE="bogus")
    assert out.returncode != 0
    assert "unknown device 'bogus'" in out.stderr and "Available devices here: cpu:0" in out.stderr


def test_train_on_unavailable_cuda_warns_and_uses_cpu_but_strict_refuses() -> None:
    soft = run("train", "--epochs", "1", "--no-progress", TENSORCORE_DEVICE="cuda")
    assert soft.returncode == 0, soft.stderr
    assert "cuda:0 is unavailable" in soft.stderr and "using cpu:0" in soft.stderr
    assert "device: cpu:0" in soft.stdout
    strict = run("train", "--epochs", "1", TENSORCORE_DEVICE="cuda", TENSORCORE_PLACEMENT="strict")
    assert strict.returncode != 0
    assert "cuda:0, which is unavailable" in strict.stderr and "strict" in strict.stderr


@pytest.mark.slow
def test_train_reaches_97_percent_test_accuracy() -> None:
    # No time limit here: speed is a benchmark's business (a busy shared machine took 66 s).
    out = run("train", "--no-progress")
    assert out.returncode == 0, out.stderr
    accuracy = float(re.search(r"final test accuracy: ([\d.]+)%", out.stdout).group(1))
    assert accuracy >= 97.0, out.stdout
    assert "cpu fallbacks: none" in out.stdout


def test_bench_eager_runs_and_reports_ratios() -> None:
    out = run("bench", "eager", "--rounds", "1")
    assert out.returncode == 0, out.stderr
    assert re.search(r"shape \(8, 8\): numpy [\d.]+, tensorcore [\d.]+", out.stdout)
    assert re.search(r"tensorcore +[\d,]+ +\([\d.]+x hand-written NumPy", out.stdout)


def test_bench_graph_runs_and_traces_once() -> None:
    out = run("bench", "graph", "--rounds", "1")
    assert out.returncode == 0, out.stderr
    assert re.search(r"traced +[\d,]+ +\([\d.]+x hand-written NumPy", out.stdout)
    assert "traces of the step: 1" in out.stdout


def test_bench_cuda_parses_its_arguments_and_without_a_gpu_exits_1_saying_why() -> None:
    from tensorcore.benchmarks import cuda as bench

    args = bench.parse_args(["--rounds", "2", "--quick", "--device", "cuda:1"])
    assert (args.rounds, args.repeats, args.quick, args.device) == (2, 10, True, "cuda:1")
    with pytest.raises(SystemExit):
        bench.parse_args(["--rounds", "0"])
    helped = run("bench", "cuda", "--help")
    assert helped.returncode == 0 and "--repeats" in helped.stdout
    reason = bench.unavailable_reason("cuda:0")
    if reason is None:
        pytest.skip("a CUDA device is available here: the benchmark would run")
    out = run("bench", "cuda", "--rounds", "1", "--quick")
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"cuda benchmark not run: {reason}" in out.stderr
    script = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "..", "benchmarks", "cuda.py")],
                            capture_output=True, text=True, timeout=120)
    assert script.returncode == 1 and "cuda benchmark not run: " in script.stderr
