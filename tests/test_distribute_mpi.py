"""MultiWorkerMirroredStrategy over ``mpiexec -n 2``: the oracle, and ranks that misbehave.

Each case starts a real MPI job (MPICH from PyPI's ``mpich`` wheel) running
``tests/dist_oracle.py``, with a timeout, so a hang fails the test instead of the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import DEVICES

SCRIPT = os.path.join(os.path.dirname(__file__), "dist_oracle.py")


def _mpiexec() -> str | None:
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.path.exists(beside) else shutil.which("mpiexec")


try:
    import mpi4py  # noqa: F401
    MPIEXEC = _mpiexec()
    SKIP = None if MPIEXEC else "no mpiexec on PATH (pip install mpich)"
except ImportError:
    MPIEXEC, SKIP = None, "mpi4py is not installed (pip install 'tensorcore[mpi]')"

pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


def mpirun(tmp_path, *args: str, timeout: float = 120, env: dict | None = None) -> tuple[subprocess.CompletedProcess, float, dict]:
    """Run the script on 2 ranks; (the process, its seconds, each rank's JSON report by rank)."""
    start = time.monotonic()
    out = subprocess.run([MPIEXEC, "-n", "2", sys.executable, SCRIPT, *args], capture_output=True, text=True,
                         timeout=timeout, env=dict(os.environ, DIST_ORACLE_OUT=str(tmp_path), **(env or {})))
    reports = {}
    for path in tmp_path.glob("rank*.json"):
        report = json.loads(path.read_text())
        reports[report["rank"]] = report
    return out, time.monotonic() - start, reports


CASES = [("cpu", "sgd", "", "eager"), ("cpu,cpu", "adam", "1,2", "eager"), ("cpu", "adam", "", "traced")]
CASES += [("cpu,opencl:0", "sgd", "2,1", "traced")] if "opencl:0" in DEVICES else []


@pytest.mark.parametrize("devices,optimizer,weights,mode", CASES)
def test_two_workers_equal_one_device(tmp_path, devices, optimizer, weights, mode):
    out, _, result = mpirun(tmp_path, "mpi-oracle", devices, optimizer, weights, mode)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert sorted(result) == [0, 1]
    local = len(devices.split(","))
    for r in result.values():
        assert r["replicas"] == 2 * local
        assert r["max_param_diff"] < 2e-5, r
        np.testing.assert_allclose(r["losses"], r["single_losses"], rtol=1e-5)
    # Every rank started from rank 0's initial values (each seeded its model differently) and
    # ended bitwise equal (check_in_sync ran across ranks after every step, too).
    assert result[0]["param_sum"] == result[1]["param_sum"]


def test_an_exception_on_one_rank_ends_the_job_with_its_traceback(tmp_path):
    out, seconds, reports = mpirun(tmp_path, "raise", timeout=60)
    assert out.returncode != 0
    assert seconds < 30
    assert "RuntimeError: rank 1 fails on purpose" in out.stderr and "Traceback" in out.stderr
    assert not reports  # no rank went on as if nothing happened


def test_a_killed_rank_ends_the_job(tmp_path):
    out, seconds, reports = mpirun(tmp_path, "kill", timeout=60)
    assert out.returncode != 0
    assert seconds < 30
    assert not reports  # no rank went on as if nothing happened


def test_a_rank_that_does_not_join_times_out_naming_it(tmp_path):
    out, seconds, reports = mpirun(tmp_path, "timeout", timeout=60, env={"TENSORCORE_COLLECTIVE_TIMEOUT": "2"})
    assert out.returncode != 0
    assert seconds < 25
    assert "CollectiveTimeoutError" in out.stderr
    assert "on rank 0: rank(s) [1] did not join within 2 s" in out.stderr
    assert "all_reduce('sum')" in out.stderr  # names the collective


def test_ranks_reducing_different_tensors_get_an_error_naming_the_tensor(tmp_path):
    out, _, reports = mpirun(tmp_path, "mismatch", timeout=60)
    assert not reports
    assert out.returncode != 0
    assert "CollectiveMismatchError" in out.stderr
    assert "tensors[1] is float32[3]" in out.stderr and "float32[3]" in out.stderr and "float32[4]" in out.stderr


def test_ranks_whose_lists_plan_different_buckets_fail_at_once_naming_the_difference(tmp_path):
    """Rank 1's extra float64 tensor gives it a second bucket: the first bucket's check compares
    the whole lists, so both ranks fail there rather than rank 1 timing out alone."""
    out, seconds, reports = mpirun(tmp_path, "mismatch-count", timeout=90, env={"TENSORCORE_COLLECTIVE_TIMEOUT": "60"})
    assert not reports
    assert out.returncode != 0
    assert seconds < 30
    assert "CollectiveMismatchError" in out.stderr
    assert "rank 0 handed in 2 tensors but rank 1 handed in 3" in out.stderr


@pytest.mark.parametrize("op", ["sum", "mean"])
def test_gradients_through_all_reduce_across_ranks_equal_one_device(tmp_path, op):
    """As in one process (tests/test_distribute.py), with the sum crossing MPI: the weighted mean
    of the ranks' gradients through an all-reduce inside the loss is one device's gradient."""
    out, _, reports = mpirun(tmp_path, "all-reduce-gradient", op, timeout=60)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    for r in (0, 1):
        np.testing.assert_allclose(reports[r]["combined"], reports[r]["single"], rtol=1e-12)


def test_a_file_saved_by_one_process_gives_the_ranks_replicas_their_own_streams(tmp_path):
    out, _, reports = mpirun(tmp_path, "restore-one-process-file", str(tmp_path), timeout=60)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert reports[0]["draws"] != reports[1]["draws"]
    assert "was saved by 1 process(es) and is restored by 2 MPI ranks" in out.stderr


def test_a_caught_timeout_still_ends_the_job(tmp_path):
    """Rank 0 catches a timeout and trains on; the late rank 1 then meets rank 0's uncancellable
    check and would wait alone in the data's blocking call. After a timeout every collective of
    rank 0 raises, and the job is aborted when rank 0 exits: no rank is left waiting."""
    out, seconds, reports = mpirun(tmp_path, "caught-timeout", timeout=90, env={"TENSORCORE_COLLECTIVE_TIMEOUT": "2"})
    assert out.returncode != 0
    assert seconds < 40
    assert ("rank 0 is exiting after a collective timed out (all_reduce('sum'), bucket 0, collective #"
            in out.stderr)
    assert "aborting the MPI job so that no rank waits for it" in out.stderr
    assert list(reports) == [0]  # rank 0 finished its loop; rank 1 was ended, not left waiting
    first, then = reports[0]["errors"]
    assert "rank(s) [1] did not join within 2 s" in first
    assert "an earlier collective (all_reduce('sum'), bucket 0, collective #" in then and "out of step" in then


def test_a_rank_that_never_creates_the_strategy_is_not_waited_for_forever(tmp_path):
    out, seconds, reports = mpirun(tmp_path, "no-strategy-on-rank-1", timeout=90, env={"TENSORCORE_COLLECTIVE_TIMEOUT": "2"})
    assert out.returncode != 0
    assert seconds < 30
    assert "not every one of the 2 ranks created the strategy within 2 s" in out.stderr


def test_ranks_reducing_with_different_ops_are_told_so(tmp_path):
    """The op is part of each collective's check: a mean on one rank against a sum on the other
    was summed silently, as a mix of both."""
    out, _, reports = mpirun(tmp_path, "op-mismatch", timeout=60)
    assert out.returncode != 0 and not reports
    assert ("the ranks are at different collectives (rank 0 at \"reduce('mean')\", rank 1 at \"reduce('sum')\")"
            in out.stderr)


def test_ranks_may_choose_their_devices_differently(tmp_path):
    """devices=None on one rank and a device list on the other: the node-rank query is a checked
    collective that every rank runs, so they still meet (it was MPI's Split_type on one rank)."""
    out, _, reports = mpirun(tmp_path, "devices-differ", timeout=60, env={"TENSORCORE_COLLECTIVE_TIMEOUT": "10"})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    for r in reports.values():
        assert r["sum"] == [2.0, 2.0, 2.0]
        assert r["bytes_error"].startswith("broadcast_bytes takes bytes (or None), got str")


def test_each_rank_resumes_its_own_random_streams(tmp_path):
    """Rank 0 writes the checkpoint, with every rank's tc.random and generator positions: after
    a restore each rank draws what it drew after the save (it drew rank 0's numbers before)."""
    out, _, reports = mpirun(tmp_path, "checkpoint-random-streams", str(tmp_path), timeout=60)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    for r in reports.values():
        assert r["after"] == r["before"]
    assert reports[0]["before"] != reports[1]["before"]  # seeded apart: a test that could fail


def test_a_rank_out_of_sync_is_named_on_every_rank(tmp_path):
    out, _, reports = mpirun(tmp_path, "out-of-sync", timeout=60)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert sorted(reports) == [0, 1]
    for r in reports.values():
        assert r["out_of_sync"] == "variable 'v' differs between rank 0 and rank(s) [1]"


@pytest.mark.skipif("opencl:0" not in DEVICES, reason="needs an accelerator (PoCL's opencl:0) on rank 0")
def test_default_devices_when_only_some_nodes_have_accelerators(tmp_path):
    """Rank 0 sees an accelerator, rank 1 none (a cpu-only node): choosing the default devices
    is not a collective only the ranks with accelerators join (that stalled until the timeout)."""
    out, seconds, reports = mpirun(tmp_path, "uneven-nodes", timeout=90, env={"TENSORCORE_COLLECTIVE_TIMEOUT": "10"})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert reports[0]["devices"] == ["opencl:0"] and reports[1]["devices"] == ["cpu:0"]
    assert reports[0]["sum"] == reports[1]["sum"] == [2.0, 2.0, 2.0]
    assert seconds < 10


def test_checkpoints_are_written_by_rank_0_and_restored_on_every_rank(tmp_path):
    # Each rank is given its own directory, as on machines without a shared filesystem.
    out, _, result = mpirun(tmp_path, "checkpoint", str(tmp_path))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert result[0]["files"] == ["ckpt-1.safetensors"] and result[1]["files"] is None  # rank 1 wrote nothing
    for r in result.values():
        assert r["restored"] == str(tmp_path / "rank0" / "ckpt-1.safetensors")  # rank 0's file, everywhere
        assert r["moved"] > 0 and r["restore_diff"] == 0.0 and r["resume_diff"] == 0.0, r
