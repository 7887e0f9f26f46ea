"""Each device's measured ceilings: FMA throughput (FLOP/s) and memory bandwidth (bytes/s).

Run: ``tensorcore bench peak`` (``--device D``, ``--refresh``, ``--quick``). Figures are cached per
device, name, driver and thread count in ``$XDG_CACHE_HOME/tensorcore/peak.json`` (default
``~/.cache``), so ``tensorcore bench kernels`` measures each device once. The probes (each
timed with ``tc.bench.timeit``, taking its fastest sample; a device's ceiling is the best of
its probes):

- every device: a float32 matmul through tensorcore (2n³ FLOP; on ``cpu`` that is NumPy's
  OpenBLAS sgemm), a float32 add (3 arrays of traffic) and a copy (2 arrays) through tensorcore;
- ``cpu``: also a copy split over one thread per core (a NumPy ufunc runs on one thread);
- ``opencl``: also an FMA loop (8 independent float8 chains per work-item, no memory traffic)
  and a float4 copy kernel, both built here with pyopencl on the backend's own context.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("POCL_MAX_PTHREAD_COUNT", "2")  # must precede the OpenCL driver's start

import numpy as np  # noqa: E402

FORMAT = 1
REST = 0.15  # seconds between probes: OpenBLAS's worker spins ~0.1 s after a call


def cache_file(environ: Mapping[str, str] = os.environ) -> Path:
    """Where measured peaks are kept: ``$XDG_CACHE_HOME/tensorcore/peak.json``, else under ``~/.cache``."""
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tensorcore" / "peak.json"


def device_info(device: str) -> Any:
    """The ``DeviceInfo`` of an available ``device``; ValueError naming the valid ones."""
    import tensorcore as tc

    available = {str(info.device): info for info in tc.devices()}
    key = str(tc.Device(device))  # a malformed name raises, with a did-you-mean and the devices here
    if key not in available:
        from tensorcore import registry

        why = registry.unavailable_reason(tc.Device(device))
        raise ValueError(f"device {device!r} is not available here{f' ({why})' if why else ''}; "
                         f"choose from {', '.join(available)}")
    return available[key]


def driver(device: str) -> str:
    """The library and driver versions behind ``device``, as one line."""
    from tensorcore import registry
    from tensorcore.device import resolve

    dev = resolve(device)
    if dev.type == "cpu":
        from threadpoolctl import threadpool_info

        blas = [f"{p['internal_api']} {p['version']} ({p.get('architecture')}, {p['num_threads']} threads)"
                for p in threadpool_info() if p.get("user_api") == "blas"]
        return ", ".join([f"NumPy {np.__version__}", *blas])
    backend = registry.get_backend(dev.type)
    if dev.type == "opencl":
        cl_device = backend.device(dev.index).cl_device
        return f"{cl_device.platform.name.strip()} {cl_device.driver_version.strip()} ({cl_device.version.strip()})"
    if dev.type == "cuda":
        cp = backend.cp
        return (f"CuPy {cp.__version__}, CUDA runtime {cp.cuda.runtime.runtimeGetVersion()}, "
                f"driver {cp.cuda.runtime.driverGetVersion()}")
    return str(getattr(backend, "version", dev.type))


@dataclass
class Peak:
    """A device's measured ceilings, with every probe's figure and when they were taken."""

    device: str
    name: str
    driver: str
    flop_per_s: float
    bytes_per_s: float
    #: each probe: its ``label``, ``kind`` ("flops" or "bytes") and ``per_s`` (FLOP/s or bytes/s)
    probes: list[dict[str, Any]] = field(default_factory=list)
    quick: bool = False
    measured: str = ""


@dataclass(frozen=True)
class Probe:
    """One measurement: ``amount`` FLOP (kind "flops") or bytes (kind "bytes") per call of ``fn``."""

    label: str
    kind: str
    amount: float
    fn: Callable[[], Any]


def _tensorcore_probes(device: str, n: int, count: int) -> list[Probe]:
    import tensorcore as tc

    rng = np.random.default_rng(0)
    a = tc.asarray(rng.standard_normal((n, n), dtype=np.float32), device=device)
    x = tc.asarray(np.ones(count, np.float32), device=device)
    y = tc.asarray(np.ones(count, np.float32), device=device)
    mib = count * 4 / 2**20
    return [Probe(f"matmul float32 n={n}", "flops", 2.0 * n**3, lambda: a @ a),
            Probe(f"add float32 {mib:g} MiB", "bytes", 3.0 * 4 * count, lambda: x + y),
            Probe(f"copy float32 {mib:g} MiB", "bytes", 2.0 * 4 * count, lambda: tc.astype(x, x.dtype, copy=True))]


_CL_SOURCE = """
__kernel void fma_loop(__global float *out, const int iters, const float b, const float c) {
    float8 s = (float8)((float)get_global_id(0) * 1e-9f), bb = (float8)(b), cc = (float8)(c);
    float8 a0 = s, a1 = s + 1, a2 = s + 2, a3 = s + 3, a4 = s + 4, a5 = s + 5, a6 = s + 6, a7 = s + 7;
    for (int i = 0; i < iters; ++i) {  /* 8 independent chains hide the FMA latency */
        a0 = fma(a0, bb, cc); a1 = fma(a1, bb, cc); a2 = fma(a2, bb, cc); a3 = fma(a3, bb, cc);
        a4 = fma(a4, bb, cc); a5 = fma(a5, bb, cc); a6 = fma(a6, bb, cc); a7 = fma(a7, bb, cc);
    }
    float8 t = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
    out[get_global_id(0)] = t.s0 + t.s7;  /* keeps the loop alive */
}
__kernel void copy4(__global const float4 *src, __global float4 *dst) {
    dst[get_global_id(0)] = src[get_global_id(0)];
}
"""
FMA_FLOP = 8 * 8 * 2  # per work-item and iteration: 8 chains of float8 fma


def _opencl_probes(index: int, iters: int, count: int) -> list[Probe]:
    from tensorcore import registry

    dev = registry.get_backend("opencl").device(index)
    fma = dev.generated_kernel("peak.py fma_loop", _CL_SOURCE, "fma_loop")
    copy4 = dev.generated_kernel("peak.py copy4", _CL_SOURCE, "copy4")
    items = 64 * 256  # work-items: enough groups for any CPU; fixed local size (PoCL compiles per size)
    out, src, dst = dev.alloc(items * 4), dev.alloc(count * 4), dev.alloc(count * 4)
    args = (np.int32(iters), np.float32(0.9999), np.float32(1e-4))  # converges: no overflow, no denormals
    mib = count * 4 / 2**20
    return [Probe(f"FMA loop (float8, {iters} iterations)", "flops", float(items * iters * FMA_FLOP),
                  lambda: dev.launch(fma, (items,), (64,), out, *args)),
            Probe(f"copy kernel float4 {mib:g} MiB", "bytes", 2.0 * 4 * count,
                  lambda: dev.launch(copy4, (count // 4,), (64,), src, dst))]


def _threaded_copy_probe(count: int) -> Probe:
    """A copy split over one thread per core: a NumPy ufunc uses one thread, which on a server
    CPU reaches a fraction of the memory bandwidth (NumPy releases the GIL while copying)."""
    from concurrent.futures import ThreadPoolExecutor

    threads = os.cpu_count() or 1
    src, dst = np.ones(count, np.float32), np.empty(count, np.float32)
    chunks = [slice(i * count // threads, (i + 1) * count // threads) for i in range(threads)]
    pool = ThreadPoolExecutor(threads)  # lives as long as the probe (the closure holds it)

    def copy() -> None:
        list(pool.map(lambda c: np.copyto(dst[c], src[c]), chunks))

    return Probe(f"copy float32 {count * 4 / 2**20:g} MiB, {threads} threads", "bytes", 2.0 * 4 * count, copy)


def probes(device: str, quick: bool = False) -> list[Probe]:
    """The probes of ``device`` (``quick``: small sizes, for a smoke test)."""
    from tensorcore.device import resolve

    dev = resolve(device)
    n, count, iters = (256, 1 << 20, 50) if quick else (2048, 1 << 25, 1000)
    found = _tensorcore_probes(str(dev), n, count)
    if dev.type == "opencl":
        found += _opencl_probes(dev.index, iters, count)
    if dev.type == "cpu":
        found.append(_threaded_copy_probe(count))
    return found


def measure(device: str, quick: bool = False, budget: float = 0.5) -> Peak:
    """Run ``device``'s probes; its ceilings are the best probe of each kind."""
    import tensorcore as tc

    info = device_info(device)
    figures: list[dict[str, Any]] = []
    best = {"flops": 0.0, "bytes": 0.0}
    for probe in probes(str(info.device), quick):
        time.sleep(REST)
        t = tc.bench.timeit(probe.fn, budget=budget, warmup=0.1, device=info.device, min_repeats=3)
        rate = probe.amount / t.min  # a ceiling is the best the hardware showed: noise only slows
        figures.append({"label": probe.label, "kind": probe.kind, "per_s": rate})
        best[probe.kind] = max(best[probe.kind], rate)
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return Peak(str(info.device), info.name, driver(str(info.device)), best["flops"], best["bytes"], figures, quick,
                stamp)


def cache_key(device: str, quick: bool = False) -> str:
    """The cache entry of ``device``: device, name, driver and thread count (a new driver or
    thread setting is a new entry, never a stale figure)."""
    info = device_info(device)
    threads = info.details.get("compute_units", info.details.get("cores", ""))
    return " | ".join([str(info.device), info.name, driver(device), f"{threads} threads"] + (["quick"] if quick else []))


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # missing or damaged: measure again
    return data.get("peaks", {}) if isinstance(data, dict) and data.get("format") == FORMAT else {}


def lookup(device: str, path: Path | None = None, refresh: bool = False, quick: bool = False,
           budget: float = 0.5) -> Peak:
    """``device``'s cached Peak, measured (and cached) first if missing or if ``refresh``."""
    path = path or cache_file()
    key = cache_key(device, quick)
    peaks = _read(path)
    if not refresh and key in peaks:
        return Peak(**peaks[key])
    peak = measure(device, quick, budget)
    peaks = _read(path)  # again: another process may have added a device meanwhile
    peaks[key] = asdict(peak)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"format": FORMAT, "peaks": peaks}, indent=1))
    tmp.replace(path)  # atomic: a reader never sees half a file
    return peak


def available_devices() -> list[str]:
    """Every available device, as ``tc.devices()`` lists them."""
    import tensorcore as tc

    return [str(info.device) for info in tc.devices()]


def main(argv: Sequence[str] | None = None) -> int:
    """Print each device's ceilings and probes, measuring those not cached yet."""
    parser = argparse.ArgumentParser(prog="tensorcore bench peak", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--device", action="append", default=None,
                        help="a device to probe (repeatable); default: every available device")
    parser.add_argument("--refresh", action="store_true", help="measure again even if cached")
    parser.add_argument("--quick", action="store_true", help="small probes (a smoke test; cached apart)")
    parser.add_argument("--budget", type=float, default=0.5, help="seconds of samples per probe")
    parser.add_argument("--peak-file", type=Path, default=None,
                        help="the cache file (default: $XDG_CACHE_HOME/tensorcore/peak.json, else ~/.cache/...)")
    args = parser.parse_args(argv)
    devices = args.device or available_devices()
    try:
        for d in devices:
            device_info(d)
    except ValueError as exc:
        parser.error(str(exc))
    for d in devices:
        p = lookup(d, args.peak_file, args.refresh, args.quick, args.budget)
        print(f"{p.device} ({p.name}; {p.driver}), measured {p.measured}{' (quick)' if p.quick else ''}:")
        print(f"  FMA throughput {p.flop_per_s / 1e9:8.1f} GFLOP/s   memory bandwidth {p.bytes_per_s / 1e9:6.1f} GB/s")
        for probe in p.probes:
            unit = "GFLOP/s" if probe["kind"] == "flops" else "GB/s"
            print(f"    {probe['label']:40s} {probe['per_s'] / 1e9:8.1f} {unit}")
    print(f"cache: {args.peak_file or cache_file()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
