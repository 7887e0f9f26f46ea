"""``tensorcore train`` data-parallel: over local devices (``--devices``, ``TENSORCORE_DEVICES``)
and over MPI processes (``mpiexec -n 2 tensorcore train``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import DEVICES
from test_cli import run
from test_distribute_mpi import MPIEXEC, SKIP

MIXED = "cpu,opencl:0" if "opencl:0" in DEVICES else "cpu,cpu"


def accuracy(stdout: str) -> float:
    return float(re.search(r"final test accuracy: ([\d.]+)%", stdout).group(1))


def assert_says_what_it_reduces(stdout: str) -> None:
    """The summary's line on the all-reduce: one bucket per step holding every parameter of the
    digits CNN, and the time spent in collectives."""
    per_step = float(re.search(r"all-reduced per step: ([\d.]+) MiB in 1.0 collective", stdout).group(1))
    params = 32 * 9 + 32 + 64 * 32 * 9 + 64 + 256 * 128 + 128 + 128 * 10 + 10  # the digits CNN
    assert per_step == pytest.approx(params * 4 / 2**20, abs=0.01)
    assert re.search(r"time in collectives: [\d.]+ s of [\d.]+ s", stdout)


def mpi_train(*args: str, timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TENSORCORE_")} | env
    return subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-m", "tensorcore", "train", *args], env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def test_devices_from_the_environment_and_bad_devices():
    out = run("train", "--epochs", "1", "--no-progress", TENSORCORE_DEVICES="cpu,cpu")
    assert out.returncode == 0, out.stderr
    assert "replicas: cpu:0, cpu:0" in out.stdout
    bad = run("train", "--epochs", "1", "--devices", "cpu,cpux")
    assert bad.returncode == 2 and "unknown device 'cpux'" in bad.stderr and "did you mean 'cpu'" in bad.stderr
    both = run("train", "--epochs", "1", "--device", "cpu", "--devices", "cpu,cpu")
    assert both.returncode == 2 and "not both" in both.stderr


# The main job's promise: the same accuracy as one device (>= 97%) in every form.


@pytest.mark.slow
def test_train_over_mixed_devices_reaches_97_percent_and_says_where_and_what_it_reduces():
    out = run("train", "--devices", MIXED, "--no-progress")
    assert out.returncode == 0, out.stderr
    assert accuracy(out.stdout) >= 97.0, out.stdout
    devices = ", ".join(f"{d}:0" if ":" not in d else d for d in MIXED.split(","))
    assert f"data-parallel over 2 replicas ({devices})" in out.stdout
    assert f"replicas: {devices}; shares 50%, 50%" in out.stdout
    assert_says_what_it_reduces(out.stdout)


@pytest.mark.slow
@pytest.mark.skipif(not any(d.startswith("opencl") for d in DEVICES), reason="no OpenCL device here")
def test_train_over_two_pocl_devices_reaches_97_percent():
    out = run("train", "--devices", "opencl:0,opencl:1", "--no-progress", POCL_DEVICES="pthread pthread",
              POCL_MAX_PTHREAD_COUNT="2")
    assert out.returncode == 0, out.stderr
    assert "replicas: opencl:0, opencl:1; shares 50%, 50%" in out.stdout
    assert accuracy(out.stdout) >= 97.0, out.stdout
    assert_says_what_it_reduces(out.stdout)


@pytest.mark.slow
@pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
def test_train_over_two_mpi_ranks_reaches_97_percent_and_reports_once(tmp_path):
    out = mpi_train("--no-progress", "--logdir", str(tmp_path))  # each rank on its default device
    assert out.returncode == 0, out.stderr[-3000:]
    assert accuracy(out.stdout) >= 97.0, out.stdout
    device = re.search(r"rank 0 of 2: replicas on (\S+)", out.stdout).group(1)
    assert f"rank 1 of 2: replicas on {device}" in out.stdout  # every rank says its device
    assert out.stdout.count("final test accuracy") == 1 and out.stdout.count("epoch 1:") == 1  # rank 0 reports
    assert f"replicas: {device} (rank 0 of 2); shares 50%, 50%" in out.stdout
    assert_says_what_it_reduces(out.stdout)
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 1  # rank 0's summaries only
