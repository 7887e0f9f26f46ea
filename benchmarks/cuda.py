"""tensorcore's CUDA backend against CuPy's own routines on the same GPU, in one interleaved run.

Run: ``python benchmarks/cuda.py`` or ``tensorcore bench cuda`` (``--rounds N``, ``--repeats N``,
``--quick`` for small sizes, ``--device cuda:N``, ``--json FILE``). Needs CuPy and an NVIDIA GPU.

Cases, each reported as the median over rounds in which tensorcore and its reference take
turns (every sample times ``repeats`` calls and then waits for the stream they ran on; the
device is drained, untimed, before each sample):

- SGEMM, n = 4096: tensorcore's tiled GEMM against ``cupy.matmul`` (cuBLAS) with TF32 off:
  ``CUPY_TF32=0`` (CuPy's float32 compute type, read at its first GEMM) and
  ``NVIDIA_TF32_OVERRIDE=0`` (cuBLAS itself) are set before CuPy runs anything, and cuBLAS's
  float32 error against float64 is printed, which shows TF32 (about 1e-3) or not (about 1e-6);
- the device-to-device copy bandwidth (``cudaMemcpyAsync`` of 1 GiB), measured in the run: the
  yardstick of the memory-bound cases;
- add and sum of float32 operands of 1 GiB each, as GB/s and as a fraction of that copy
  bandwidth (``cupy.add`` / ``cupy.sum`` alongside);
- softmax over rows of 4096 (1 GiB), against the copy bandwidth (one read and one write is
  the ideal; a CuPy expression alongside);
- one training step of the MLP 784-512-512-10 (batch 128, ReLU, softmax cross-entropy, SGD),
  against the same step written directly with CuPy; both read the loss back.

tensorcore's figures include its eager dispatch (Python) overhead; they end with a stream
synchronize, not with a copy to the host. ``placement:`` at the end should report no cpu
fallbacks.

Without a usable CUDA device (CuPy missing, no driver, no GPU, or ``--device`` not present),
it prints ``cuda benchmark not run: <reason>`` on stderr and exits with status 1, so a job that
needs the numbers fails; one that may run without a GPU can accept status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# Before CuPy does anything: float32 GEMMs in full float32 (no TF32 tensor cores), in CuPy and in cuBLAS.
os.environ["CUPY_TF32"] = "0"
os.environ["NVIDIA_TF32_OVERRIDE"] = "0"

import numpy as np  # noqa: E402
from tensorcore.benchmarks import kernel_report as report  # noqa: E402

GIB = 1 << 30
MIB = 1 << 20


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The benchmark's command line."""
    parser = argparse.ArgumentParser(prog="tensorcore bench cuda", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; medians over them")
    parser.add_argument("--repeats", type=int, default=10, help="calls per timed sample")
    parser.add_argument("--quick", action="store_true", help="small sizes (n=1024, 64 MiB), for a smoke test")
    parser.add_argument("--device", default="cuda:0", help="the CUDA device to measure")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="also write the figures as JSON (what `tensorcore bench gpu-check` reads)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.repeats < 1:
        parser.error("--rounds and --repeats must be at least 1")
    return args


def unavailable_reason(device: str) -> str | None:
    """Why ``device`` cannot be benchmarked here, or None if it can."""
    import tensorcore as tc

    entries = [d for d in tc.devices(all=True) if d.backend == "cuda"]
    if not entries:
        return "no cuda backend is registered"
    if not entries[0].available:
        return entries[0].reason or "the cuda backend is unavailable"
    have = [str(d.device) for d in entries]
    try:
        wanted = str(tc.Device(device))
    except ValueError as exc:
        return str(exc)
    if wanted not in have:
        return f"{wanted} does not exist here; the cuda backend has {', '.join(have)}"
    return None


# --- timing ------------------------------------------------------------------------------------

def interleaved(cases: dict[str, tuple[Callable[[], Any], Callable[[], None]]], drain: Callable[[], None],
                rounds: int, repeats: int) -> dict[str, float]:
    """Median seconds per call of each case (fn, wait), the cases taking turns every round:
    ``tc.bench.interleaved`` with one sample per case and round, each of exactly ``repeats``
    calls followed by the case's ``wait``.

    The method is this suite's own, kept: ``drain`` empties both libraries' queues, untimed,
    before every sample, so a sample never pays for the other side's unfinished work; there is
    no rest (no OpenBLAS worker spins on the GPU's side) and no warm-up beyond the first call
    (GPU time is scarce: ``bench gpu-check`` runs this suite in 75 s); and ``repeats`` is fixed
    rather than calibrated, so a sample's length is the same on every GPU.
    """
    from tensorcore import bench

    t = bench.interleaved({name: fn for name, (fn, _) in cases.items()},
                          devices={name: wait for name, (_, wait) in cases.items()},
                          budget=0, warmup=0, rounds=rounds, rest=0, min_repeats=rounds, number=repeats, setup=drain)
    return {name: timing.median for name, timing in t.items()}


# --- cases -------------------------------------------------------------------------------------


def gemm_cases(cp: Any, tc: Any, device: str, n: int, waits: dict) -> dict:
    """float32 n x n matmul: tensorcore's GEMM and cupy.matmul on the same inputs."""
    rng = np.random.default_rng(0)
    ta = tc.asarray(rng.standard_normal((n, n), dtype=np.float32), device=device)
    tb = tc.asarray(rng.standard_normal((n, n), dtype=np.float32), device=device)
    a, b = ta._data, tb._data
    return {"tensorcore": (lambda: ta @ tb, waits["tc"]), "cuBLAS": (lambda: cp.matmul(a, b), waits["cp"])}


def tf32_check(cp: Any, tc: Any, device: str) -> str:
    """cuBLAS's and tensorcore's float32 max relative error against float64 at n = 512."""
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((512, 512)), rng.standard_normal((512, 512))
    want = a @ b
    scale = np.abs(want).max()
    blas = cp.asnumpy(cp.matmul(cp.asarray(a, np.float32), cp.asarray(b, np.float32)))
    ours = (tc.asarray(a.astype(np.float32), device=device) @ tc.asarray(b.astype(np.float32), device=device)).numpy()
    return (f"float32 GEMM max error / max |value| vs float64 at n=512: cuBLAS {np.abs(blas - want).max() / scale:.1e}, "
            f"tensorcore {np.abs(ours - want).max() / scale:.1e} (TF32 would give about 1e-3)")


def copy_cases(cp: Any, nbytes: int, waits: dict) -> dict:
    """A device-to-device cudaMemcpyAsync of ``nbytes``: the memory bandwidth yardstick."""
    src, dst = cp.ones(nbytes // 4, np.float32), cp.empty(nbytes // 4, np.float32)
    return {"copy": (lambda: dst.data.copy_from_device_async(src.data, nbytes), waits["cp"])}


def add_cases(cp: Any, tc: Any, device: str, nbytes: int, waits: dict) -> dict:
    """Elementwise add of two float32 arrays of ``nbytes`` each."""
    ta = tc.asarray(np.ones(nbytes // 4, np.float32), device=device)
    tb = tc.asarray(np.full(nbytes // 4, 2.0, np.float32), device=device)
    a, b = ta._data, tb._data
    return {"tensorcore": (lambda: ta + tb, waits["tc"]), "cupy.add": (lambda: cp.add(a, b), waits["cp"])}


def sum_cases(cp: Any, tc: Any, device: str, nbytes: int, waits: dict) -> dict:
    """Full float32 sum of ``nbytes``."""
    ta = tc.asarray(np.random.default_rng(1).random(nbytes // 4, dtype=np.float32), device=device)
    a = ta._data
    return {"tensorcore": (lambda: tc.sum(ta), waits["tc"]), "cupy.sum": (lambda: cp.sum(a), waits["cp"])}


def softmax_cases(cp: Any, tc: Any, device: str, nbytes: int, waits: dict) -> dict:
    """Softmax over rows of 4096 float32 values, ``nbytes`` in all."""
    from tensorcore.nn import functional as F

    tx = tc.asarray(np.random.default_rng(2).standard_normal((nbytes // 4 // 4096, 4096), dtype=np.float32),
                    device=device)
    x = tx._data

    def cupy_softmax() -> Any:
        e = cp.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return {"tensorcore": (lambda: F.softmax(tx, axis=-1), waits["tc"]), "CuPy expression": (cupy_softmax, waits["cp"])}


def mlp_cases(cp: Any, tc: Any, device: str, batch: int = 128, sizes: tuple[int, ...] = (784, 512, 512, 10),
              lr: float = 0.01) -> dict:
    """One MLP training step (ReLU, softmax cross-entropy, SGD) in tensorcore and in CuPy;
    both read the loss back (so both include one host wait)."""
    from tensorcore.benchmarks._mlp import array_step_fn, problem, tensorcore_step_fn

    x, y, params = problem(3, batch, sizes)
    cx, cy, rows = cp.asarray(x), cp.asarray(y), cp.arange(batch)
    cupy_step = array_step_fn(cp, cx, cy, [cp.asarray(p) for p in params], lr, rows)
    step = tensorcore_step_fn(params, lr, device)
    tx, ty = tc.asarray(x, device=device), tc.asarray(y, device=device)

    def tensorcore_step() -> float:
        return step(tx, ty).item()

    def nothing() -> None:
        return None

    return {"tensorcore": (tensorcore_step, nothing), "CuPy": (cupy_step, nothing)}


# --- main --------------------------------------------------------------------------------------


def measure(args: argparse.Namespace, cp: Any, tc: Any, device: str, records: list[dict[str, Any]],
            meta: dict[str, Any]) -> None:
    """Run every case on ``device``, printing figures and appending records (``meta`` gets the
    TF32 check and, at the end, ``complete``)."""
    index = tc.Device(device).index
    info = [d for d in tc.devices() if str(d.device) == device][0]
    n = 1024 if args.quick else 4096
    big = 64 * MIB if args.quick else GIB
    with cp.cuda.Device(index):
        waits = {"tc": lambda: tc.synchronize(device), "cp": lambda: cp.cuda.get_current_stream().synchronize()}

        def drain() -> None:
            tc.synchronize(device)
            cp.cuda.Device(index).synchronize()

        print(f"{device} = {info.name} ({', '.join(f'{k}={v}' for k, v in info.details.items())}); "
              f"medians of {args.rounds} interleaved rounds of {args.repeats} calls")
        tf32 = meta["tf32_check"] = tf32_check(cp, tc, device)
        print(f"TF32 off: CUPY_TF32={os.environ['CUPY_TF32']}, NVIDIA_TF32_OVERRIDE={os.environ['NVIDIA_TF32_OVERRIDE']}; "
              + tf32)
        tc.reset_placement_stats()

        t = interleaved(gemm_cases(cp, tc, device, n, waits), drain, args.rounds, max(1, args.repeats // 5))
        records.append(report.suite_record("sgemm", {"n": n, "tf32": False}, t, flops=2 * n**3))
        tf = {k: 2 * n**3 / v / 1e12 for k, v in t.items()}
        print(f"SGEMM float32 n={n}: cuBLAS {tf['cuBLAS']:.2f} TFLOP/s, tensorcore {tf['tensorcore']:.2f} TFLOP/s "
              f"-> {tf['tensorcore'] / tf['cuBLAS']:.2f}x cuBLAS")

        copy = interleaved(copy_cases(cp, big, waits), drain, args.rounds, args.repeats)["copy"]
        records.append(report.suite_record("copy", {"bytes": big}, {"copy": copy}, moved=2 * big))
        copy_gbs = 2 * big / copy / 1e9  # read and write
        print(f"device-to-device copy, {big // MIB} MiB: {copy_gbs:.0f} GB/s (read + write)")

        def bandwidth(case: str, label: str, cases: dict, moved: int) -> None:
            t = interleaved(cases, drain, args.rounds, args.repeats)
            records.append(report.suite_record(case, {"bytes": big}, t, moved=moved, copy_bytes_per_s=copy_gbs * 1e9))
            parts = [f"{k} {moved / v / 1e9:.0f} GB/s ({moved / v / 1e9 / copy_gbs:.2f} of copy)" for k, v in t.items()]
            print(f"{label}: " + ", ".join(parts))

        bandwidth("add", f"add float32, {big // MIB} MiB operands", add_cases(cp, tc, device, big, waits), 3 * big)
        bandwidth("sum", f"sum float32, {big // MIB} MiB", sum_cases(cp, tc, device, big, waits), big)
        bandwidth("softmax", f"softmax float32, rows of 4096, {big // MIB} MiB", softmax_cases(cp, tc, device, big, waits),
                  2 * big)

        t = interleaved(mlp_cases(cp, tc, device), drain, args.rounds, args.repeats)
        records.append(report.suite_record("mlp_step", {"sizes": [784, 512, 512, 10], "batch": 128}, t))
        print(f"MLP 784-512-512-10 training step, batch 128: CuPy {t['CuPy'] * 1e3:.3f} ms, tensorcore "
              f"{t['tensorcore'] * 1e3:.3f} ms -> {t['CuPy'] / t['tensorcore']:.2f}x CuPy's speed")
    meta["complete"] = True


def main(argv: Sequence[str] | None = None) -> int:
    """Run every case and print figures with ratios; status 1 where no CUDA device can run them."""
    args = parse_args(argv)
    reason = unavailable_reason(args.device)
    if reason is not None:
        print(f"cuda benchmark not run: {reason}", file=sys.stderr)
        return 1
    import cupy as cp

    import tensorcore as tc

    device = str(tc.Device(args.device))
    info = [d for d in tc.devices() if str(d.device) == device][0]
    records: list[dict[str, Any]] = []
    meta: dict[str, Any] = {"device": device, "device_name": info.name, "rounds": args.rounds, "repeats": args.repeats,
                            "quick": args.quick, "tf32_check": None, "complete": False}
    try:
        measure(args, cp, tc, device, records, meta)
    finally:  # a failed case still leaves the figures measured before it: GPU time is scarce
        if args.json:
            report.write_json(args.json, records, fmt="tensorcore-bench-cuda/1", placement=tc.placement.placement_stats(),
                              **meta)
    print(f"placement: {tc.placement.summary()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
