"""OpenCL (PoCL on this CPU) against NumPy on the same CPU, both with 2 threads.

Run: ``python benchmarks/opencl.py`` or ``tensorcore bench opencl`` (``--rounds N``, ``--quick``,
``--device opencl:N``, ``--json FILE``). Every case alternates NumPy and tensorcore round by
round and reports medians; every tensorcore figure includes getting the result back to the
host (``.numpy()``/``.item()``). ``--profiling-cost`` runs only an A/B of what OpenCL
profiling (``TENSORCORE_OPENCL_PROFILING=1``) costs per launch; ``--gemm-tiles`` only one of the
GEMM's register tiles (the one this CPU's SIMD width picks against the other).
"""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("POCL_MAX_PTHREAD_COUNT", "2")  # must precede the OpenCL driver's start

import numpy as np  # noqa: E402
from tensorcore.benchmarks import kernel_report as report  # noqa: E402

PAUSE = 0.25  # seconds of rest before each case's turn in a round (see interleaved)
WARM = 0.05  # seconds each case runs untimed after the rest, before its samples


def interleaved(cases: dict[str, Callable[[], Any]], rounds: int, repeats: int) -> dict[str, float]:
    """Median seconds per call of each case over its samples, the cases taking turns every round:
    ``tc.bench.interleaved`` with ``repeats`` samples per case and round (a count, not a time
    budget; a sample is a block of calls lasting at least ``tc.bench.MIN_BLOCK``).

    This suite rests longer than ``tc.bench``'s default (``PAUSE``, 0.25 s, not 0.15 s) before
    each case's turn, as it always has: OpenBLAS's worker thread keeps spinning for about 0.1 s
    after a NumPy call, and on two cores it would take one away from whatever runs next; this
    suite's figures in docs/performance.md were measured with the longer rest. After the rest,
    the case itself runs untimed for ``WARM`` seconds: threads that slept through the rest take
    that long to come back up to speed (PoCL's MLP step runs ~30% slower for its first ten
    calls after an idle quarter second), and a training loop does not pause between steps.
    Every case reads its result back to the host, so the wait after each block finds the
    queue empty.
    """
    from tensorcore import bench

    t = bench.interleaved(cases, budget=0, warmup=WARM, rounds=rounds, rest=PAUSE, min_repeats=rounds * repeats)
    return {name: timing.median for name, timing in t.items()}


def matmul_cases(n: int, device: str = "opencl:0") -> dict[str, Callable[[], Any]]:
    """float32 n×n matmul; tensorcore reads the product back."""
    import tensorcore as tc

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    ta, tb = tc.asarray(a, device=device), tc.asarray(b, device=device)
    return {"numpy": lambda: a @ b, "opencl": lambda: (ta @ tb).numpy()}


def add_cases(nbytes: int, device: str = "opencl:0") -> dict[str, Callable[[], Any]]:
    """Elementwise add of two float32 arrays of ``nbytes`` each; tensorcore reads the sum back."""
    import tensorcore as tc

    n = nbytes // 4
    a, b = np.ones(n, np.float32), np.full(n, 2.0, np.float32)
    out = np.empty_like(a)
    ta, tb = tc.asarray(a, device=device), tc.asarray(b, device=device)
    return {"numpy": lambda: np.add(a, b, out=out), "opencl": lambda: (ta + tb).numpy()}


def sum_cases(nbytes: int, device: str = "opencl:0") -> dict[str, Callable[[], Any]]:
    """Full float32 sum of ``nbytes``; tensorcore reads the scalar back."""
    import tensorcore as tc

    a = np.random.default_rng(1).random(nbytes // 4, dtype=np.float32)
    ta = tc.asarray(a, device=device)
    return {"numpy": lambda: a.sum(), "opencl": lambda: tc.sum(ta).item()}


def batch_norm_cases(shape: tuple[int, ...] = (128, 64, 16, 16), eps: float = 1e-5,
                     device: str = "opencl:0") -> dict[str, Callable[[], Any]]:
    """Training-mode batch norm of a float32 (N, C, H, W) batch, forward and backward (the
    gradients of x, weight and bias for the loss sum(y * G), G fixed); each side reads the loss
    and one element of each gradient back, once. The two sides must agree before they are timed."""
    import tensorcore as tc
    from tensorcore.nn import functional as F

    rng = np.random.default_rng(4)
    x, big_g = rng.standard_normal(shape, dtype=np.float32), rng.standard_normal(shape, dtype=np.float32)
    w, b = rng.uniform(0.5, 2, shape[1]).astype(np.float32), rng.standard_normal(shape[1]).astype(np.float32)
    axes, count = (0, 2, 3), x.size // shape[1]

    def numpy_step() -> np.ndarray:
        xc = x - x.mean(axes, keepdims=True)
        invstd = 1 / np.sqrt((xc * xc).mean(axes, keepdims=True) + eps)
        xhat = xc * invstd
        y = xhat * w[:, None, None] + b[:, None, None]
        loss = (y * big_g).sum()
        gb, gw = big_g.sum(axes, keepdims=True), (big_g * xhat).sum(axes, keepdims=True)
        gx = (w[:, None, None] * invstd) * (big_g - gb / count - xhat * (gw / count))
        return np.array([loss, gx[0, 0, 0, 0], gw[0, 0, 0, 0], gb[0, 0, 0, 0]])

    tx, tg = tc.Variable(x, device=device), tc.asarray(big_g, device=device)
    tw, tb = tc.Variable(w, device=device), tc.Variable(b, device=device)

    def opencl_step() -> np.ndarray:
        with tc.GradientTape() as tape:
            y = F.batch_norm(tx, None, None, tw, tb, training=True, eps=eps)
            loss = tc.sum(y * tg)
        gx, gw, gb = tape.gradient(loss, [tx, tw, tb])
        return tc.stack([loss, gx[0, 0, 0, 0], gw[0], gb[0]]).numpy()

    ours, theirs = opencl_step(), numpy_step()
    if not np.allclose(ours, theirs, rtol=1e-4, atol=1e-4):
        raise AssertionError(f"batch_norm: opencl gives {ours}, numpy {theirs}")
    return {"numpy": numpy_step, "opencl": opencl_step}


def mlp_cases(batch: int = 128, sizes: tuple[int, ...] = (784, 512, 512, 10), lr: float = 0.01,
              device: str = "opencl:0") -> dict[str, Callable[[], Any]]:
    """One training step of an MLP (ReLU, softmax cross-entropy, SGD), reading the loss back."""
    from tensorcore.benchmarks._mlp import array_step_fn, problem, tensorcore_step_fn

    import tensorcore as tc

    x, y, params = problem(2, batch, sizes)
    numpy_step = array_step_fn(np, x, y, [p.copy() for p in params], lr)
    tx, ty = tc.asarray(x, device=device), tc.asarray(y, device=device)
    eager = tensorcore_step_fn(params, lr, device)  # each with its own parameters
    traced = tc.function(tensorcore_step_fn(params, lr, device))
    return {"numpy": numpy_step, "opencl": lambda: eager(tx, ty).item(),
            "opencl traced": lambda: traced(tx, ty).item()}


def profiling_cost(device: str, rounds: int, launches: int = 2000) -> dict[str, dict[str, float]]:
    """Median seconds per launch of a tiny kernel on two in-order queues of ``device``'s
    context, one with ``PROFILING_ENABLE`` and one without, in alternating rounds: queued
    (``launches`` launches, one finish) and waited (a wait after each launch)."""
    from tensorcore import registry
    from tensorcore.device import resolve

    dev = registry.get_backend("opencl").device(resolve(device).index)
    cl, flag = dev.cl, dev.cl.command_queue_properties.PROFILING_ENABLE
    queues = {"off": cl.CommandQueue(dev.context), "on": cl.CommandQueue(dev.context, properties=flag)}
    kernel = cl.Program(dev.context, "__kernel void k(__global float *a) { a[get_global_id(0)] += 1.0f; }").build().k
    buf = cl.Buffer(dev.context, cl.mem_flags.READ_WRITE, 4 * 1024)  # named: freed buffers abort PoCL
    kernel.set_args(buf)

    def queued(q: Any, n: int = launches) -> None:
        for _ in range(n):
            cl.enqueue_nd_range_kernel(q, kernel, (1024,), (64,))  # a fixed local size: PoCL compiles once
        q.finish()

    def waited(q: Any, n: int = launches // 10) -> None:
        for _ in range(n):
            cl.enqueue_nd_range_kernel(q, kernel, (1024,), (64,)).wait()

    out: dict[str, dict[str, float]] = {}
    for mode, fn, n in (("queued", queued, launches), ("waited", waited, launches // 10)):
        t = interleaved({name: functools.partial(fn, q) for name, q in queues.items()}, rounds, 1)
        out[mode] = {name: seconds / n for name, seconds in t.items()}
    return out


def other_tile(simd_bytes: int) -> int:
    """The register width (bytes) of the GEMM tile a device of ``simd_bytes`` does not use."""
    from tensorcore.backends.opencl_ops.matmul import MR_BY_SIMD

    return next(w for w in MR_BY_SIMD if w != simd_bytes)


def gemm_tiles(device: str, rounds: int, n: int = 1024) -> dict[str, dict[str, float]]:
    """Median seconds per call with each of the GEMM's register tiles (``CLDevice.simd_bytes``,
    ``matmul.MR_BY_SIMD``), the tiles taking turns round by round: float32 and float64 n×n
    matmuls (read back) and the eager MLP step of ``mlp_cases``. Keys: the case, then
    ``"native"`` (the tile this device's SIMD width picks) and ``"other"``. Eager only: a
    traced step keeps the kernels it was built with.
    """
    import tensorcore as tc
    from tensorcore import registry
    from tensorcore.device import resolve

    dev = registry.get_backend("opencl").device(resolve(device).index)
    native = dev.simd_bytes
    tiles = {"native": native, "other": other_tile(native)}

    def with_tile(simd_bytes: int, fn: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            dev.simd_bytes = simd_bytes
            try:
                return fn()
            finally:
                dev.simd_bytes = native
        return run

    rng = np.random.default_rng(0)
    out: dict[str, dict[str, float]] = {}
    for dtype in (np.float32, np.float64):
        ta, tb = (tc.asarray(rng.standard_normal((n, n)).astype(dtype), device=device) for _ in range(2))
        cases = {name: with_tile(simd, lambda a=ta, b=tb: (a @ b).numpy()) for name, simd in tiles.items()}
        out[f"matmul {np.dtype(dtype).name} n={n}"] = interleaved(cases, rounds, 3)
    # each tile its own step and parameters, made as the suite's MLP case makes them
    cases = {name: with_tile(simd, mlp_cases(device=device)["opencl"]) for name, simd in tiles.items()}
    out["MLP 784-512-512-10 step, batch 128, eager"] = interleaved(cases, rounds, 10)
    return out


def _device_info(device: str) -> Any:
    """``device``'s DeviceInfo if it is an available opencl device, else None."""
    import tensorcore as tc

    try:
        wanted = str(tc.Device(device))
    except ValueError:
        return None
    found = [d for d in tc.devices() if str(d.device) == wanted]
    return found[0] if found and found[0].device.type == "opencl" else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run every case and print figures with ratios to NumPy."""
    from threadpoolctl import threadpool_limits

    import tensorcore as tc

    parser = argparse.ArgumentParser(prog="tensorcore bench opencl", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; medians over them")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--device", default="opencl:0", help="the OpenCL device to measure")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--profiling-cost", action="store_true",
                        help="only measure what OpenCL profiling costs per launch (an interleaved A/B)")
    parser.add_argument("--gemm-tiles", action="store_true",
                        help="only compare the GEMM's two register tiles (an interleaved A/B)")
    args = parser.parse_args(argv)
    info = _device_info(args.device)
    if info is None:
        print(f"no {args.device} device here; see `tensorcore devices`")
        return 1
    device = str(info.device)
    if args.profiling_cost:
        for mode, t in profiling_cost(device, args.rounds).items():
            print(f"{mode} launches on {device}: profiling off {t['off'] * 1e6:.2f} µs, on {t['on'] * 1e6:.2f} µs "
                  f"per launch ({t['on'] / t['off'] - 1:+.1%})")
        return 0
    if args.gemm_tiles:
        from tensorcore import registry

        simd = registry.get_backend("opencl").device(info.device.index).simd_bytes
        print(f"{device} = {info.name}: its SIMD registers hold {simd} bytes; medians of {args.rounds} interleaved rounds")
        for case, t in gemm_tiles(device, args.rounds, 256 if args.quick else 1024).items():
            print(f"{case}: tile for {simd}-byte registers {t['native'] * 1e3:.2f} ms, for {other_tile(simd)}-byte "
                  f"{t['other'] * 1e3:.2f} ms -> this CPU's tile {t['other'] / t['native']:.2f}x faster")
        return 0
    print(f"{device} = {info.name}; POCL_MAX_PTHREAD_COUNT={os.environ['POCL_MAX_PTHREAD_COUNT']}; "
          f"NumPy with 2 BLAS threads; medians of {args.rounds} interleaved rounds")
    mib = 1 << 20
    sizes = (256, 512) if args.quick else (1024, 2048)
    big = 4 * mib if args.quick else 64 * mib
    records = []
    tc.reset_placement_stats()
    with threadpool_limits(2):
        for n in sizes:
            t = interleaved(matmul_cases(n, device), args.rounds, 1 if n >= 2048 else 3)
            records.append(report.suite_record("matmul", {"n": n, "dtype": "float32"}, t, flops=2 * n**3))
            gf = {k: 2 * n**3 / v / 1e9 for k, v in t.items()}
            print(f"matmul float32 n={n}: numpy {gf['numpy']:.1f} GFLOP/s, opencl {gf['opencl']:.1f} GFLOP/s "
                  f"-> {gf['opencl'] / gf['numpy']:.2f}x")
        t = interleaved(add_cases(big, device), args.rounds, 3)
        records.append(report.suite_record("add", {"bytes": big, "dtype": "float32"}, t, moved=3 * big))
        gb = {k: 3 * big / v / 1e9 for k, v in t.items()}
        print(f"add float32, {big // mib} MiB arrays: numpy {gb['numpy']:.1f} GB/s, opencl {gb['opencl']:.1f} GB/s "
              f"-> {gb['opencl'] / gb['numpy']:.2f}x")
        t = interleaved(sum_cases(big, device), args.rounds, 3)
        records.append(report.suite_record("sum", {"bytes": big, "dtype": "float32"}, t, moved=big))
        gb = {k: big / v / 1e9 for k, v in t.items()}
        print(f"sum float32, {big // mib} MiB: numpy {gb['numpy']:.1f} GB/s, opencl {gb['opencl']:.1f} GB/s "
              f"-> {gb['opencl'] / gb['numpy']:.2f}x")
        t = interleaved(mlp_cases(device=device), args.rounds, 20)
        records.append(report.suite_record("mlp_step", {"sizes": [784, 512, 512, 10], "batch": 128}, t))
        print(f"MLP 784-512-512-10 training step, batch 128: numpy {t['numpy'] * 1e3:.2f} ms, "
              f"opencl eager {t['opencl'] * 1e3:.2f} ms -> {t['numpy'] / t['opencl']:.2f}x, "
              f"opencl traced (tc.function) {t['opencl traced'] * 1e3:.2f} ms -> {t['numpy'] / t['opencl traced']:.2f}x")
        shape = (32, 16, 16, 16) if args.quick else (128, 64, 16, 16)
        t = interleaved(batch_norm_cases(shape, device=device), args.rounds, 5)
        records.append(report.suite_record("batch_norm_step", {"shape": list(shape)}, t))
        print(f"batch_norm forward + backward, float32 {shape}: numpy {t['numpy'] * 1e3:.2f} ms, "
              f"opencl {t['opencl'] * 1e3:.2f} ms -> {t['numpy'] / t['opencl']:.2f}x")
    print(f"placement: {tc.placement.summary()}")
    if args.json:
        report.write_json(args.json, records, fmt="tensorcore-bench-opencl/1", device=device, device_name=info.name,
                          rounds=args.rounds, quick=args.quick, placement=tc.placement.placement_stats())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
