"""The OpenCL driver check: what tensorcore's kernels need is tried in a child process before a
device is listed, so a driver that would abort the process is found without killing it.

Some drivers list a healthy device and then abort the whole process (SIGABRT, no message, no
exception) inside a kernel: PyPI's PoCL 3.0 (``pip install pyopencl[pocl]``) does so on AMD
Zen 4 at the first 16-wide float vector, i.e. in the first GEMM. No fallback can catch that.
So, once per (driver, device, tensorcore version), a child process (``python -m
tensorcore.backends.opencl_probe``) runs on the device: a kernel on ``float16`` vectors,
tensorcore's own float32 GEMM and conv2d launchers, and the GEMM in float64 where the device
claims float64, each against NumPy. Its verdict is kept in ``<cache>/opencl-probe-*.json``
(``tensorcore.backend.cache_dir``), written atomically; a file that is unreadable or for
another key is ignored and the check runs again. A device that fails is listed unavailable,
with the reason and the fix; one that fails only in float64 stays, without float64.

When the child dies and the device is PoCL's, the cause may be PoCL's kernel cache rather
than the driver: ``pocl_cache`` looks for damaged files, and else the check runs once more
with an empty cache; if that passes, the cache is at fault (reported, never cached as the
driver's verdict). A check costs ~4 s with PoCL's cache warm (a Python start and imports
~2.5 s, the steps ~1.5 s), ~15-20 s per device the first time on a machine (PoCL compiles
the GEMM and conv kernels, which later processes then load from its cache); with the verdict
kept, a process start pays ~5-10 ms (a few small files read, its marker written).

``TENSORCORE_OPENCL_PROBE=0`` skips the check (every device is trusted); tests make it fail
with ``TENSORCORE_OPENCL_PROBE_FAULT=abort:<step>`` or ``fail:<step>``, part of the key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tensorcore.backends import pocl_cache

from tensorcore.backend import cache_dir

PROBE_VERSION = 2  # bump when the checks change: every verdict is then made again
TIMEOUT = 300.0  # seconds for one check, cold PoCL compiles included
PROBE_ENV, FAULT_ENV = "TENSORCORE_OPENCL_PROBE", "TENSORCORE_OPENCL_PROBE_FAULT"
STEPS = {
    "start": "creating a context and queue",
    "vector16": "running a kernel on 16-wide float vectors (float16)",
    "gemm": "running tensorcore's float32 GEMM (kernels/opencl/matmul.cl, vectors of the device's SIMD width)",
    "conv2d": "running tensorcore's float32 conv2d (im2col and the GEMM)",
    "float64": "running tensorcore's GEMM in float64",
}
# The sources whose change makes every verdict stale, besides the tensorcore version.
_CHECKED = ("kernels/opencl/matmul.cl", "kernels/opencl/conv.cl", "kernels/opencl/common.h", "kernels/opencl/gemm.h",
            "backends/opencl_ops/matmul.py", "backends/opencl_ops/nn_conv.py")
_MARK = "tensorcore-probe: "
logger = logging.getLogger("tensorcore.opencl")


@dataclass
class Verdict:
    """Whether tensorcore may use a device. ``float64`` is False when the device claims float64
    but failed that check (the device is still usable); ``reason`` says why it is unusable,
    or why float64 is off, and how to fix it."""

    ok: bool
    float64: bool | None = None
    reason: str = ""
    cache: bool = True  # a property of the driver (kept), not of this run (damaged cache, timeout)


def screen(candidates: list[tuple[Any, int, int]]) -> list[Verdict]:
    """A verdict per ``(cl_device, platform index, device index)``: cached, or checked now in a
    child process. Devices with the same key (identical devices) are checked once. PoCL
    devices whose kernel cache holds damaged files (found now, after a process died, or
    before) are unusable, whether or not the check runs."""
    probe = os.environ.get(PROBE_ENV, "1").strip() != "0"
    cache = cache_dir()
    pocl = any(_is_pocl(d) for d, _, _ in candidates)
    top = pocl_cache.kernel_cache_dir(os.environ) if pocl else None
    if pocl:
        pocl_cache.check_after_crashes(cache)  # before any kernel of this process loads
    damaged = pocl_cache.known_damage(cache, top) if top is not None else {}
    verdicts: dict[str, Verdict] = {}
    out = []
    for cl_device, platform_index, device_index in candidates:
        if damaged and _is_pocl(cl_device):
            out.append(Verdict(False, reason=f"{_label(cl_device)}: {pocl_cache.describe(top, damaged)}", cache=False))
            continue
        if not probe:  # TENSORCORE_OPENCL_PROBE=0: trusted without a check
            out.append(Verdict(True))
            continue
        key = device_key(cl_device)
        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
        if digest not in verdicts:
            path = cache / f"opencl-probe-{digest}.json"
            verdict = _load(path, key) or _check(cl_device, platform_index, device_index, key, path, top)
            if verdict.cache and (not verdict.ok or verdict.float64 is False):
                verdict.reason += f". This verdict is kept in {path}: delete it to check again"
            verdicts[digest] = verdict
        out.append(verdicts[digest])
    if pocl:
        pocl_cache.mark_running(cache, top)
    return out


def _is_pocl(cl_device: Any) -> bool:
    return cl_device.platform.name.strip() == pocl_cache.PLATFORM


def _label(cl_device: Any) -> str:
    """The device and its driver, as reasons name them: ``pthread-haswell-AMD EPYC (PoCL 3.1+debian)``."""
    driver = "PoCL" if _is_pocl(cl_device) else cl_device.platform.name.strip()
    return f"{cl_device.name.strip()} ({driver} {cl_device.driver_version.strip()})"


def device_key(cl_device: Any) -> dict[str, Any]:
    """What a verdict depends on: the driver and device as they describe themselves, the CPU
    (a CPU driver's code generation depends on it), and tensorcore's version and checked code."""
    import pyopencl as cl
    from tensorcore.kernels import KERNEL_DIR

    package = KERNEL_DIR.parent
    digest = hashlib.sha1()
    for name in _CHECKED:
        try:
            digest.update((package / name).read_bytes())
        except OSError:
            digest.update(name.encode())
    platform = cl_device.platform
    cpu = bool(cl_device.type & cl.device_type.CPU)
    return {"probe": PROBE_VERSION, "tensorcore": _version(), "checked": digest.hexdigest()[:16],
            "platform": platform.name.strip(), "platform_version": platform.version.strip(),
            "device": cl_device.name.strip(), "vendor": cl_device.vendor.strip(),
            "device_version": cl_device.version.strip(), "driver": cl_device.driver_version.strip(),
            "cpu": _cpu_id() if cpu else "", "pyopencl": cl.VERSION_TEXT, "fault": os.environ.get(FAULT_ENV, "")}


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("tensorcore")
    except metadata.PackageNotFoundError:
        return "unknown"


def _cpu_id() -> str:
    """The host CPU's vendor, family, model and flags (Linux), hashed."""
    fields = []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor's block is enough
                name = line.split(":")[0].strip()
                if name in ("vendor_id", "cpu family", "model", "model name", "flags"):
                    fields.append(line.strip())
    except OSError:
        import platform

        fields.append(platform.processor())
    return hashlib.sha1("\n".join(fields).encode()).hexdigest()[:12]


def _load(path: Path, key: dict[str, Any]) -> Verdict | None:
    """The verdict in ``path`` if it is whole and for ``key``; else None (made again)."""
    data = pocl_cache.read_json(path)
    if not isinstance(data, dict) or data.get("key") != key or not isinstance(data.get("ok"), bool):
        return None
    float64 = data.get("float64")
    reason = data.get("reason")
    if float64 not in (None, True, False) or not isinstance(reason, str):
        return None
    return Verdict(data["ok"], float64, reason)


def _check(cl_device: Any, platform_index: int, device_index: int, key: dict[str, Any], path: Path,
           top: Path | None) -> Verdict:
    """Run the child on the device and judge it; keep the verdict if it is the driver's."""
    logger.info("tensorcore: checking OpenCL device %s in a child process (once per driver and version)",
                _label(cl_device))
    start = time.time()
    first = _run(platform_index, device_index, dict(os.environ))
    verdict = _judge(cl_device, first)
    if first.crashed and top is not None and _is_pocl(cl_device):
        verdict = _crash_in_pocl(cl_device, platform_index, device_index, first, verdict, top, start)
    if verdict.cache:
        pocl_cache.write_json(path, {"key": key, "ok": verdict.ok, "float64": verdict.float64, "reason": verdict.reason,
                                     "seconds": round(time.time() - start, 2), "steps": first.passed,
                                     "checked": time.time()})
    return verdict


def _crash_in_pocl(cl_device: Any, platform_index: int, device_index: int, first: _Run, verdict: Verdict, top: Path,
                   start: float) -> Verdict:
    """The child died in PoCL: a damaged file in PoCL's kernel cache, or the driver itself?"""
    cache = cache_dir()
    found = pocl_cache.scan(top, start - 1.0)
    if not found:  # nothing visibly damaged: run again with an empty cache to tell
        with tempfile.TemporaryDirectory(prefix="tensorcore-pocl-") as fresh:
            again = _run(platform_index, device_index, dict(os.environ, POCL_CACHE_DIR=fresh))
            if first.step not in again.passed and not (again.returncode == 0 and again.failure is None):
                return verdict  # the driver fails from scratch too
            names = [n for n in pocl_cache.program_names(Path(fresh)) if (top / n).is_dir()]
        found = {str(path): "PoCL died loading this program from its cache, and compiled it from source fine"
                 for n in names for path in [top / n / "program.bc"] if path.exists()}
        if not found:
            return verdict
    pocl_cache.record_damage(cache, top, found)
    return Verdict(False, reason=f"{_label(cl_device)}: {pocl_cache.describe(top, found)}", cache=False)


@dataclass
class _Run:
    """What one child run reported: the steps it started and passed, how it ended."""

    returncode: int | None
    started: list[str]
    passed: dict[str, float]
    failure: tuple[str, str] | None
    stderr: str
    seconds: float

    @property
    def crashed(self) -> bool:
        """The child started the checks and died in one (not a reported failure, not a timeout)."""
        return self.failure is None and self.returncode not in (0, None) and bool(self.started)

    @property
    def step(self) -> str:
        return self.started[-1] if self.started else "start"


def _run(platform_index: int, device_index: int, env: dict[str, str]) -> _Run:
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "tensorcore.backends.opencl_probe", str(platform_index), str(device_index)]
    env[PROBE_ENV] = "0"  # should the child start the backend itself, it must not check again
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, errors="replace", timeout=TIMEOUT)
        returncode, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        returncode, stderr = None, (exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        stdout = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
    except OSError as exc:  # no Python to start: the check cannot run (judged as such)
        returncode, stdout, stderr = -1, "", f"cannot start {sys.executable}: {exc}"
    started: list[str] = []
    passed: dict[str, float] = {}
    failure = None
    for line in stdout.splitlines():
        if not line.startswith(_MARK):
            continue
        try:
            msg = json.loads(line[len(_MARK):])
        except ValueError:
            continue
        if "start" in msg:
            started.append(str(msg["start"]))
        elif "passed" in msg:
            passed[str(msg["passed"])] = float(msg.get("seconds", 0.0))
        elif "failed" in msg:
            failure = (str(msg["failed"]), str(msg.get("error", "")))
    return _Run(returncode, started, passed, failure, stderr, time.perf_counter() - start)


def _judge(cl_device: Any, run: _Run) -> Verdict:
    """The verdict of one child run, with the reason and the fix."""
    label = _label(cl_device)
    if run.returncode is None:
        return Verdict(False, reason=f"{label}: tensorcore's driver check did not finish in {TIMEOUT:.0f} s (it "
                                     f"was {STEPS.get(run.step, run.step)}); it runs again next time", cache=False)
    if run.returncode == 0 and run.failure is None:
        return Verdict(True, float64=True if "float64" in run.passed else None)
    if not run.started:  # the child died before its first line: Python did not start, not the driver
        logger.warning("tensorcore: the OpenCL driver check could not run (%s); %s is used unchecked",
                       run.stderr.strip()[-300:] or f"exit status {run.returncode}", label)
        return Verdict(True, cache=False)
    step = run.failure[0] if run.failure else run.step
    if run.failure:
        what = f"{STEPS.get(step, step)} failed: {run.failure[1]}"
    else:
        rc = run.returncode
        how = f"killed by {signal.Signals(-rc).name}" if rc < 0 and -rc in signal.valid_signals() else f"exit status {rc}"
        tail = " ".join(run.stderr.strip().splitlines()[-2:])[-300:]
        what = f"the driver ended the check process ({how}) while {STEPS.get(step, step)}" + (
            f"; it said: {tail}" if tail else "")
    if step == "float64":
        return Verdict(True, float64=False, reason=f"float64 is off on {label}: {what}. Fix: {_fix(cl_device)}")
    return Verdict(False, reason=f"{label} failed tensorcore's driver check: {what}. Fix: {_fix(cl_device)}")


def _fix(cl_device: Any) -> str:
    """What to do about a driver that fails the check."""
    from importlib import metadata

    version = cl_device.platform.version
    if _is_pocl(cl_device):
        try:
            wheel = metadata.version("pocl-binary-distribution")
        except metadata.PackageNotFoundError:
            wheel = None
        if wheel and f"PoCL {wheel}" in version:
            return (f"this is PoCL {wheel} from PyPI (pocl-binary-distribution, which pip install pyopencl[pocl] "
                    f"brings), known to abort on some CPUs: pip uninstall pocl-binary-distribution, then install "
                    f"your system's PoCL (Debian/Ubuntu: apt install pocl-opencl-icd)")
        return ("install a working PoCL (Debian/Ubuntu: apt install pocl-opencl-icd, PoCL 3.1 or later), or hide "
                "this device with TENSORCORE_OPENCL_DEVICES")
    return (f"update the driver of {cl_device.platform.name.strip()!r}, or hide this device with "
            f"TENSORCORE_OPENCL_DEVICES")


if __name__ == "__main__":
    from tensorcore.backends.opencl_probe_child import main

    sys.exit(main(sys.argv[1:]))
