"""The host's matrix products (``tensorcore/ops/host_gemm.py``), in two measurements:

1. cold against warm: in a fresh process per BLAS thread count, NumPy's own call on the digits
   MLP's products as the process starts, then after ``host_gemm.warm_blas`` (one larger
   product), medians of interleaved blocks;
2. the two calls: for products of the benchmarks' models (the digits MLP, the CNN's stacked
   convolution GEMMs, the 784-512-512 MLP), NumPy's own call against the transposed one, after
   the warm-up, interleaved, medians; and which of the two ``host_gemm.gemm`` chose.

Run: ``tensorcore bench host-gemm`` (``--rounds N``, ``--threads 1 2``, ``--cases mlp cnn``,
``--json FILE``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tensorcore.benchmarks._cli import write_json

# name -> (a's shape, b's shape): operands as the cpu references pass them (C-contiguous).
CASES: dict[str, dict[str, tuple[tuple[int, ...], tuple[int, ...]]]] = {
    "mlp": {  # the digits MLP 64-128-128-10, batch 64 (bench graph, bench eager)
        "x @ W1^T": ((64, 64), (64, 128)),
        "h1 @ W2^T": ((64, 128), (128, 128)),
        "h2 @ W3^T": ((64, 128), (128, 10)),
        "dW2 = h1^T @ d2": ((128, 64), (64, 128)),
    },
    "cnn": {  # bench cnn's convolutions as im2col GEMMs, batch 64
        "conv1 forward": ((1, 32, 27), (64, 1, 27, 1024)),
        "conv2 forward": ((1, 64, 288), (64, 1, 288, 256)),
        "conv2 weight gradient": ((64, 1, 64, 256), (64, 1, 256, 288)),
    },
    "mlp784": {  # bench opencl's and bench distribute's MLP 784-512-512-10, batch 128
        "x @ W1^T": ((128, 784), (784, 512)),
        "h1 @ W2^T": ((128, 512), (512, 512)),
    },
}
COLD_CASE = "mlp"


def _operands(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal(a_shape, dtype=np.float32), rng.standard_normal(b_shape, dtype=np.float32)


def cold_child(threads: int, blocks: int) -> dict[str, dict[str, float]]:
    """In this (fresh) process: each MLP product's time before and after the warm-up (us)."""
    from threadpoolctl import threadpool_limits

    from tensorcore import bench
    from tensorcore.ops.host_gemm import warm_blas

    def us(a: np.ndarray, b: np.ndarray) -> float:  # no warm-up: it must not be what warms BLAS
        return bench.timeit(np.matmul, a, b, budget=0, warmup=0, device="cpu", min_repeats=blocks, number=50).median * 1e6

    out: dict[str, dict[str, float]] = {}
    ops = {name: _operands(*shapes) for name, shapes in CASES[COLD_CASE].items()}
    with threadpool_limits(threads):
        for name, (a, b) in ops.items():
            out[name] = {"cold": us(a, b)}
        warm_blas(np.float32)
        for name, (a, b) in ops.items():
            out[name]["warm"] = us(a, b)
    return out


def cold_against_warm(threads: int, blocks: int) -> dict[str, dict[str, float]]:
    """:func:`cold_child` in a fresh Python process (the state it measures is per process)."""
    code = ("import json, sys; from tensorcore.benchmarks.host_gemm import cold_child; "
            f"json.dump(cold_child({threads}, {blocks}), sys.stdout)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    return json.loads(done.stdout)


def two_calls(case: str, threads: int, rounds: int) -> dict[str, dict[str, Any]]:
    """NumPy's call against the transposed one for each product of ``case``, warm, and the
    choice ``host_gemm.gemm`` makes (ms per product)."""
    from threadpoolctl import threadpool_limits

    from tensorcore import bench
    from tensorcore.ops import host_gemm

    out: dict[str, dict[str, Any]] = {}
    with threadpool_limits(threads):
        host_gemm.warm_blas(np.float32)
        for name, shapes in CASES[case].items():
            a, b = _operands(*shapes)
            calls = {"numpy": partial(np.matmul, a, b), "transposed": partial(host_gemm.transposed_call, a, b)}
            t = bench.interleaved(calls, budget=0, warmup=0, rounds=rounds, rest=0, min_repeats=rounds)
            with host_gemm.autotuning(True):
                host_gemm.gemm(a, b)
            chosen = host_gemm.choice_for(a, b)
            out[name] = {"shapes": [list(a.shape), list(b.shape)], "numpy_ms": t["numpy"].median * 1e3,
                         "transposed_ms": t["transposed"].median * 1e3,
                         "chosen": "untimed" if chosen is None else ("transposed" if chosen else "numpy")}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds; medians are reported")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="BLAS thread counts")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES), help="which models' products")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"rounds": args.rounds, "cold": {}, "two_calls": {}}
    for threads in args.threads:
        cold = results["cold"][threads] = cold_against_warm(threads, args.rounds)
        print(f"NumPy's own call, {threads} BLAS thread(s), a fresh process: cold, then after one larger product "
              f"(median of {args.rounds} blocks, us)")
        for name, t in cold.items():
            print(f"  {name:24s} cold {t['cold']:9.1f}  warm {t['warm']:9.1f}  ({t['cold'] / t['warm']:.2f}x)")
    for threads in args.threads:
        print(f"the two calls, {threads} BLAS thread(s), warm (median of {args.rounds} interleaved rounds, ms)")
        for case in args.cases:
            table = results["two_calls"][f"{case}, {threads} threads"] = two_calls(case, threads, args.rounds)
            for name, row in table.items():
                a, b = row["shapes"]
                print(f"  {case:6s} {name:22s} {str(tuple(a)):>15s} @ {str(tuple(b)):17s} numpy {row['numpy_ms']:8.3f}  "
                      f"transposed {row['transposed_ms']:8.3f}  ({row['numpy_ms'] / row['transposed_ms']:.2f}x)  "
                      f"gemm chose: {row['chosen']}")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
