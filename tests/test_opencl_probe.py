"""The OpenCL driver check and broken caches: a driver or a cache that would kill the process is
found in a child process or by reading files, and reported; the process goes on.

Every test runs tensorcore in a subprocess with its own ``TENSORCORE_CACHE_DIR`` (a fresh
verdict). Tests that damage PoCL's kernel cache point PoCL at a private copy of the programs
they need (``POCL_CACHE_DIR``), taken from PoCL's own cache, so that nothing compiles from
scratch and PoCL's real cache is never touched. The faults are real: a child that aborts, a
truncated binary that PoCL really loads (and dies of), a pyopencl database that is not one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tensorcore.backends import pocl_cache

import tensorcore as tc

if "opencl:0" not in [str(d.device) for d in tc.devices()]:
    pytest.skip("no OpenCL device here (install an OpenCL driver, e.g. Debian's pocl-opencl-icd)", allow_module_level=True)

POCL = tc.devices()[[str(d.device) for d in tc.devices()].index("opencl:0")].details["platform"] == pocl_cache.PLATFORM
needs_pocl = pytest.mark.skipif(not POCL, reason="opencl:0 is not PoCL: these tests damage PoCL's kernel cache")

LIST = ("import json, tensorcore as tc; print(json.dumps([[str(d.device), d.backend, d.reason, "
        "d.details.get('float64'), d.details.get('float64_off')] for d in tc.devices(all=True)]))")
MATMUL = ("import numpy as np, tensorcore as tc; x = tc.asarray(np.ones((40, 40), np.float32), device='opencl:0'); "
          "print('sum', float(tc.sum(x @ x).numpy()))")


def run(code: str, cache: Path, **env: str) -> subprocess.CompletedProcess:
    """``python -c code`` with tensorcore's cache at ``cache`` and no other TENSORCORE_ setting, in
    ``cache``'s parent (a process that dies there leaves any core file in the test's folder)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("TENSORCORE_")}
    full.update(env, TENSORCORE_CACHE_DIR=str(cache))
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=600,
                          cwd=cache.parent)


def opencl_rows(proc: subprocess.CompletedProcess) -> list[list]:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [row for row in json.loads(proc.stdout.strip().splitlines()[-1]) if row[1] == "opencl"]


def verdicts(cache: Path) -> list[Path]:
    return sorted(cache.glob("opencl-probe-*.json"))


def test_the_check_runs_once_and_its_verdict_is_kept_unless_damaged(tmp_path: Path) -> None:
    rows = opencl_rows(run(LIST, tmp_path))
    assert rows[0][0] == "opencl:0" and rows[0][2] is None
    [path] = verdicts(tmp_path)
    verdict = json.loads(path.read_text())
    assert verdict["ok"] is True and verdict["key"]["device"] and verdict["key"]["driver"]
    assert set(verdict["steps"]) >= {"vector16", "gemm", "conv2d"}
    stamp = path.stat().st_mtime_ns
    assert opencl_rows(run(LIST, tmp_path))[0][0] == "opencl:0"
    assert path.stat().st_mtime_ns == stamp, "the check ran again although its verdict was kept"
    path.write_text('{"key": {"probe": 1}, "ok": tr')  # half-written: ignored, and the check runs again
    assert opencl_rows(run(LIST, tmp_path))[0][0] == "opencl:0"
    assert json.loads(path.read_text())["ok"] is True


def test_a_check_that_dies_lists_the_device_unavailable_with_the_reason_and_keeps_the_verdict(tmp_path: Path) -> None:
    fault = {"TENSORCORE_OPENCL_PROBE_FAULT": "abort:gemm"}  # the child aborts as a broken driver does
    strict = ("import tensorcore as tc\ntc.placement.set_policy('strict')\ntry:\n    tc.zeros(2, device='opencl:0')\n"
              "except Exception as e:\n    print(type(e).__name__, e)\n")
    proc = run(strict + LIST, tmp_path, **fault)
    first = proc.stdout.splitlines()[0]  # strict placement's error carries the reason
    assert first.startswith("DeviceUnavailableError") and "SIGABRT" in first, proc.stdout
    rows = opencl_rows(proc)
    assert len(rows) == 1 and rows[0][0] == "None", rows  # no opencl device left: the backend is unavailable
    reason = rows[0][2]
    assert "SIGABRT" in reason and "GEMM" in reason and "Fix:" in reason and "delete it to check again" in reason
    [path] = verdicts(tmp_path)
    assert json.loads(path.read_text())["ok"] is False
    stamp = path.stat().st_mtime_ns
    cli = subprocess.run([sys.executable, "-m", "tensorcore.cli", "devices"], capture_output=True, text=True,
                         timeout=600, env={k: v for k, v in os.environ.items() if not k.startswith("TENSORCORE_")}
                         | fault | {"TENSORCORE_CACHE_DIR": str(tmp_path)})
    assert cli.returncode == 0 and "SIGABRT" in cli.stdout and str(path) in cli.stdout, cli.stdout + cli.stderr
    assert path.stat().st_mtime_ns == stamp, "a kept failure was checked again"


def test_a_failed_float64_check_turns_off_float64_only(tmp_path: Path) -> None:
    rows = opencl_rows(run(LIST, tmp_path, TENSORCORE_OPENCL_PROBE_FAULT="fail:float64"))
    if rows[0][3] is None:
        pytest.skip("opencl:0 has no float64")
    device, _, reason, float64, why = rows[0]
    assert device == "opencl:0" and reason is None and float64 is False
    assert "float64 is off" in why and "failure injected" in why


# --- PoCL's kernel cache ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private PoCL kernel cache with the programs that the driver check and a matmul load,
    copied from PoCL's own cache (the program folders' names do not depend on the folder)."""
    top = pocl_cache.kernel_cache_dir(os.environ)
    if not POCL or top is None:
        pytest.skip("PoCL's kernel cache is off or not in use")
    started = time.time() - 1.0
    proc = run(MATMUL, tmp_path_factory.mktemp("seed-verdict"))  # a fresh verdict: the check runs too
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path_factory.mktemp("pocl-seed")
    for program, used in pocl_cache.programs(top):
        if used >= started:
            shutil.copytree(program, out / program.parent.name / program.name)
    assert any(out.rglob("gemm.so")), "the GEMM's binary was not in PoCL's cache"
    return out


def _damage(top: Path, name: str, keep: int) -> list[Path]:
    """Truncate every file ``name`` of the GEMM's programs to ``keep`` bytes, as a full disk does."""
    hit = [p for p in top.rglob(name) if (p.parent if name == "program.bc" else p.parents[2]).joinpath("gemm").is_dir()]
    for path in hit:
        with open(path, "r+b") as f:
            f.truncate(keep)
    assert hit, f"no {name} of the GEMM in {top}"
    return hit


def test_damaged_files_are_told_from_whole_ones(seed: Path) -> None:
    for name in ("program.bc", "gemm.so"):
        path = next(seed.rglob(name))
        assert pocl_cache.problem(path) is None, f"a whole {name} reads as damaged"
        data = path.read_bytes()
        for keep in (0, 3, 100, len(data) // 2, len(data) - 4):
            copy = seed.parent / f"cut-{keep}" / name
            copy.parent.mkdir(exist_ok=True)
            copy.write_bytes(data[:keep])
            assert pocl_cache.problem(copy), f"{name} cut to {keep} of {len(data)} bytes reads as whole"
            shutil.rmtree(copy.parent)


@needs_pocl
def test_a_truncated_binary_that_kills_the_check_is_reported_with_its_folder(seed: Path, tmp_path: Path) -> None:
    top = tmp_path / "pocl"
    shutil.copytree(seed, top)
    damaged = _damage(top, "gemm.so", 1000)
    env = {"POCL_CACHE_DIR": str(top)}
    rows = opencl_rows(run(LIST, tmp_path / "tc", **env))  # the check's child dies of it, this process does not
    reason = rows[0][2]
    assert rows[0][0] == "None" and "damaged" in reason and "truncated" in reason, reason
    assert any(str(path.parents[2]) in reason for path in damaged), reason  # the folder to delete
    assert not verdicts(tmp_path / "tc"), "a damaged cache was kept as the driver's verdict"
    again = opencl_rows(run(LIST, tmp_path / "tc", **env))  # known now: reported without a check
    assert again[0][2] == reason
    for path in damaged:  # the fix: the folder goes and PoCL builds it again (here: the whole copy)
        shutil.rmtree(path.parents[2])
        shutil.copytree(seed / path.parents[2].relative_to(top), path.parents[2])
    assert opencl_rows(run(LIST, tmp_path / "tc", **env))[0][0] == "opencl:0"


@needs_pocl
def test_after_a_process_dies_of_a_truncated_program_the_next_one_reports_it(seed: Path, tmp_path: Path) -> None:
    top = tmp_path / "pocl"
    shutil.copytree(seed, top)
    env = {"POCL_CACHE_DIR": str(top), "TENSORCORE_OPENCL_PROBE": "0"}  # the damage comes after any check
    damaged = _damage(top, "program.bc", 1000)
    died = run(MATMUL, tmp_path / "tc", **env)
    assert died.returncode < 0, f"PoCL loaded a truncated program.bc and lived: {died.returncode} {died.stderr[-500:]}"
    rows = opencl_rows(run(LIST, tmp_path / "tc", **env))
    reason = rows[0][2]
    assert rows[0][0] == "None" and "program.bc" in reason and "truncated" in reason, reason
    assert all(str(path.parent) in reason for path in damaged), reason  # the folders to delete
    after = run(MATMUL, tmp_path / "tc", **env)  # the work goes to cpu (soft placement), the process lives
    assert after.returncode == 0 and "sum 64000.0" in after.stdout and "using cpu" in after.stderr, after.stderr[-2000:]


@pytest.mark.parametrize("damage", ["not a database", "malformed pages"])
def test_a_damaged_pyopencl_database_is_bypassed_with_one_warning(tmp_path: Path, damage: str) -> None:
    import pyopencl.invoker

    cache = pyopencl.invoker.invoker_cache  # this process's, wrapped by tensorcore
    database = tmp_path / "xdg" / "pytools" / Path(getattr(cache, "path", None) or cache.filename).name
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    top = pocl_cache.kernel_cache_dir(os.environ)
    if top is not None:
        env["POCL_CACHE_DIR"] = str(top)  # keep PoCL's own (warm) cache where it is
    if damage == "not a database":  # its header is gone: opening it fails
        database.parent.mkdir(parents=True)
        database.write_bytes(b"this is not a database " * 100)
    else:  # a real one whose pages after the first are overwritten: opening works, reading fails
        assert run(MATMUL, tmp_path / "tc", **env).returncode == 0
        size = database.stat().st_size
        assert size > 8192, size
        with open(database, "r+b") as f:
            f.seek(4096)
            f.write(b"\xff" * (size - 4096))
    before = database.read_bytes()
    proc = run(MATMUL, tmp_path / "tc", **env)
    assert proc.returncode == 0 and "sum 64000.0" in proc.stdout, proc.stderr[-3000:]
    assert proc.stderr.count(f"Delete {database}") == 1, proc.stderr[-3000:]
    assert database.read_bytes() == before, "tensorcore must not change pyopencl's files"
