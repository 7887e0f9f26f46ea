"""One-command GPU validation (issue #14, item 4): ``tensorcore bench gpu-check``.

Each part runs in a child process under its own time limit, so that the whole fits in
``TOTAL_LIMIT`` seconds (the issue's 8 minutes on one H100 or H200):

1. ``tests``: every test that runs a CUDA launcher against NumPy. With
   ``TENSORCORE_TEST_DEVICES=cuda:0`` the device matrix of ``tests/conftest.py`` is ``cuda:0``
   alone, and ``-k "cuda or cupy"`` keeps the tests parametrized on it, all of
   ``tests/test_cuda_backend.py`` and the CUDA part of ``tests/test_dlpack.py`` (not the nvcc
   compile check, which CI runs, nor the benchmark tests: the parts below run those tools).
   A plugin (``gpu_check_plugin``) counts each launcher's calls on the GPU, so the report
   names the launchers no test ran. With pytest-xdist it runs on several workers, with
   pytest-timeout a hung test ends at 60 s.
2. ``train``: ``tensorcore train --device cuda:0`` (the digits CNN, default epochs).
3. ``kernels``: ``tensorcore bench kernels --device cuda:0``, the default suite against CuPy
   and the measured peak, with CUDA event times, TF32 off.
4. ``targets``: ``tensorcore bench cuda --json``, scored against the issue-5 targets.

It writes ``DIR/gpu-check.json`` (the report), ``DIR/gpu-check.md`` (a summary for
``docs/gpu-validation.md``) and ``DIR/gpu-check.log`` (every part's output); the parts' own
files go to ``DIR/parts/``. Exit status: 0 if every part passed, 1 if one failed or ran out
of time, 3 if there is no usable CUDA device here (then nothing runs, and it says why).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from tensorcore.benchmarks import gpu_check_plugin as counting
from tensorcore.benchmarks import gpu_check_report as report

TOTAL_LIMIT = 480.0  # seconds: 8 minutes
RESERVE = 15.0  # seconds of the total kept for this process: start-up, the device check, the report
NO_GPU = 3  # exit status when nothing could run
PLUGIN = "tensorcore.benchmarks.gpu_check_plugin"
TF32_OFF = {"CUPY_TF32": "0", "NVIDIA_TF32_OVERRIDE": "0"}  # full float32 GEMMs in CuPy and cuBLAS


@dataclass(frozen=True)
class Part:
    """One step of the check: what it does, its command, its time limit and extra environment."""

    name: str
    what: str
    command: list[str]
    limit: float
    env: dict[str, str] = field(default_factory=dict)


def plan(work: Path, device: str = "cuda:0", python: str = sys.executable, tests_dir: Path | None = None,
         plugins: frozenset[str] = frozenset(), workers: int = 4) -> list[Part]:
    """The parts, in order, with their limits (which add up to ``TOTAL_LIMIT - RESERVE``).
    ``plugins``: the pytest plugins at hand (``xdist``, ``pytest_timeout``, ``pytest_cov``)."""
    files = work / "parts"
    pytest = [python, "-m", "pytest", str(tests_dir or "tests"), "-k", "(cuda or cupy) and not test_cuda_compile "
              "and not test_bench", "-q", "-rfE", "-p", "no:cacheprovider", "-p", PLUGIN,
              "--continue-on-collection-errors", f"--junitxml={files / 'tests.xml'}"]
    tests_env = {"TENSORCORE_TEST_DEVICES": device, counting.ENV: str(files / "launchers.json")}
    if "xdist" in plugins and workers > 1:
        pytest += ["-n", str(workers)]
    if "pytest_timeout" in plugins:
        pytest += ["--timeout", "60"]  # one hung kernel must not take the whole part
    tc = [python, "-m", "tensorcore"]
    return [
        Part("tests", f"the CUDA launchers against NumPy (tests on {device})", pytest, 210.0, tests_env),
        Part("train", f"`tensorcore train --device {device}`", [*tc, "train", "--device", device, "--no-progress"], 60.0),
        Part("kernels", f"`tensorcore bench kernels --device {device}`, the default suite",
             [*tc, "bench", "kernels", "--device", device, "--json", str(files / "kernels.json"), "--no-progress",
              "--budget", "0.2", "--rounds", "2", "--rest", "0.05", "--peak-file", str(files / "peak.json")],
             120.0, dict(TF32_OFF)),
        Part("targets", "the issue-5 targets (`tensorcore bench cuda`)",
             [*tc, "bench", "cuda", "--device", device, "--json", str(files / "targets.json")], 75.0, dict(TF32_OFF)),
    ]


def pytest_plugins() -> frozenset[str]:
    """Which of pytest-xdist and pytest-timeout this Python can import."""
    return frozenset(n for n in ("xdist", "pytest_timeout") if importlib.util.find_spec(n) is not None)


def run_part(part: Part, log: IO[str], limit: float, cwd: Path | None = None) -> tuple[report.PartResult, str]:
    """Run ``part`` for at most ``limit`` seconds, its output appended to ``log``; its result and output.

    At the limit (less a grace period) the part's process group gets SIGINT, so that pytest
    still prints its summary and writes its JUnit file; what is left at the limit is killed.
    """
    command = shlex.join(part.command)
    log.write(f"\n===== {part.name}: {command}  (limit {limit:.0f} s)\n")
    log.flush()
    begin, start = os.path.getsize(log.name), time.monotonic()
    grace = min(10.0, limit / 4)
    proc = subprocess.Popen(part.command, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True,
                            env={**os.environ, **part.env})  # os.environ itself is left alone
    status = None
    try:
        proc.wait(timeout=limit - grace)
    except subprocess.TimeoutExpired:
        status = "timed out"
        os.killpg(proc.pid, signal.SIGINT)  # its own session: this ends exactly what it started
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    seconds = time.monotonic() - start
    log.flush()
    with open(log.name, "rb") as f:
        f.seek(begin)
        output = f.read().decode("utf-8", errors="replace")
    status = status or ("passed" if proc.returncode == 0 else "failed")
    tail = "\n".join(output.splitlines()[-40:])
    return report.PartResult(part.name, part.what, command, limit, status, proc.returncode, seconds, {}, tail), output


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def summarize(result: report.PartResult, output: str, work: Path, device: str) -> None:
    """Fill ``result.details`` from the part's files and output; a part whose output shows a
    problem its exit status hid (a case not run, training on another device) is failed."""
    files, d = work / "parts", result.details
    missing = {"tests": "tests.xml", "kernels": "kernels.json", "targets": "targets.json"}.get(result.name)
    if missing and not (files / missing).exists():
        d["note"] = f"no {missing}: the part ended before writing it"
    if result.name == "tests":
        if (files / "tests.xml").exists():
            d |= report.junit_summary(files / "tests.xml")
            if result.status != "timed out" and result.returncode in (0, 1):  # 1: failures or collection errors
                # a module not collected (a package missing there) is reported, not failed
                result.status = "failed" if d["failed"] or d["errors"] else "passed"
        counts = _read_json(files / "launchers.json")
        if counts is not None:
            d["launchers_not_run"] = report.launchers_not_run(files / "launchers.json")
            if d.get("passed") and not any(counts["calls"].values()):  # on a GPU, some launcher always runs
                d["note"] = "no launcher call was counted: was the counting plugin loaded in every pytest worker?"
    elif result.name == "train":
        d |= report.train_summary(output)
        if result.status == "passed" and d.get("device") != device:
            result.status, d["note"] = "failed", f"trained on {d.get('device')}, not {device}"
    elif result.name == "kernels":
        data = _read_json(files / "kernels.json")
        if data is not None:
            d |= report.kernels_summary(data["records"])
            if d["errors"] and result.status == "passed":
                result.status = "failed"
    elif result.name == "targets":
        data = _read_json(files / "targets.json")
        if data is not None:
            d |= {"targets": report.evaluate_targets(data["records"]), "tf32_check": data.get("tf32_check")}


def build_parser() -> argparse.ArgumentParser:
    """The options of ``tensorcore bench gpu-check``."""
    p = argparse.ArgumentParser(prog="tensorcore bench gpu-check", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                epilog="Exit status: 0 every part passed, 1 a part failed or ran out of time, "
                                       f"{NO_GPU} no usable CUDA device (nothing ran). docs/gpu-validation.md says more.")
    p.add_argument("--device", default="cuda:0", help="the CUDA device to check")
    p.add_argument("--out", type=Path, default=Path("gpu-check"), metavar="DIR",
                   help="where gpu-check.json, gpu-check.md, gpu-check.log and parts/ go")
    p.add_argument("--part", action="append", choices=("tests", "train", "kernels", "targets"), default=None,
                   help="run only this part (repeatable); None: all four")
    p.add_argument("--total-limit", type=float, default=TOTAL_LIMIT, help="seconds for the whole check")
    p.add_argument("--workers", type=int, default=4, help="pytest-xdist workers for the tests, where it is installed")
    p.add_argument("--plan", action="store_true", help="print the parts, their commands and limits, and run nothing")
    return p


def run_parts(parts: list[Part], out: Path, device: str, root: Path, deadline: float) -> list[report.PartResult]:
    """Run ``parts`` in turn in ``root``, each within its limit and what is left before
    ``deadline`` (``time.monotonic()``), their output in ``out/gpu-check.log``; their results."""
    results = []
    (out / "parts").mkdir(parents=True, exist_ok=True)
    (out / "gpu-check.log").write_text("")
    with open(out / "gpu-check.log", "a", encoding="utf-8") as log:  # append: the parts write to it too
        for part in parts:
            left = deadline - time.monotonic()
            why = "no time left" if left < 5 else None
            if part.name == "tests" and not (root / "tests").is_dir():
                why = "no tests/ beside the package (run from a checkout)"
            if why:
                results.append(report.PartResult(part.name, part.what, shlex.join(part.command), 0.0, "skipped",
                                                 details={"note": why}))
                continue
            result, output = run_part(part, log, min(part.limit, left), cwd=root)
            summarize(result, output, out, device)
            results.append(result)
            print(f"{result.name}: {result.status} in {result.seconds:.0f} s", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    """Check the device, run the parts within their limits, write the report; the exit status."""
    started = time.monotonic()
    args = build_parser().parse_args(argv)
    args.out = args.out.resolve()  # the parts run in the source tree's root, not here
    import tensorcore

    root = Path(tensorcore.__file__).resolve().parent.parent

    def chosen(device: str) -> list[Part]:
        return [p for p in plan(args.out, device, tests_dir=root / "tests", plugins=pytest_plugins(),
                                workers=args.workers) if args.part is None or p.name in args.part]

    if args.plan:
        parts = chosen(args.device)
        for p in parts:
            env = " ".join(f"{k}={v}" for k, v in p.env.items())
            print(f"{p.name} (limit {p.limit:.0f} s): {p.what}\n  {env}{' ' if env else ''}{shlex.join(p.command)}")
        print(f"total: {sum(p.limit for p in parts):.0f} s of parts + {RESERVE:.0f} s reserve, "
              f"limit {args.total_limit:.0f} s")
        return 0
    from tensorcore.benchmarks.cuda import unavailable_reason

    reason = unavailable_reason(args.device)
    if reason is not None:
        print(f"gpu-check not run: {reason}", file=sys.stderr)
        return NO_GPU
    from tensorcore.benchmarks import peak
    from tensorcore.benchmarks.kernels import git_commit, host_cpu

    info = peak.device_info(args.device)
    device = str(info.device)  # cuda = cuda:0, as the parts print it
    results = run_parts(chosen(device), args.out, device, root, started + args.total_limit - RESERVE)
    data = {"format": report.FORMAT, "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "device": device, "device_name": info.name, "driver": peak.driver(device),
            "host_cpu": host_cpu(), "tensorcore_version": tensorcore.__version__, "git_commit": git_commit(),
            "total_limit_s": args.total_limit, "seconds": time.monotonic() - started,
            "ok": all(r.status == "passed" for r in results), "parts": [asdict(r) for r in results]}
    report.write(data, args.out / "gpu-check.json", args.out / "gpu-check.md")
    print(f"report: {args.out / 'gpu-check.json'}; summary for docs/gpu-validation.md: {args.out / 'gpu-check.md'}")
    return 0 if data["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
