"""Graph mode, two measurements, each in one interleaved run with medians:

1. the MLP 64-128-128-10 digits epoch traced with tc.function, against hand-written NumPy and
   eager tensorcore, one BLAS thread;
2. a 5-op elementwise chain on 64 MiB float32 arrays: traced on opencl:0 (one fused kernel,
   result read back to the host) against the same chain in eager NumPy.

Run: ``python benchmarks/graph.py`` or ``tensorcore bench graph`` (``--rounds N``,
``--skip-chain``).
"""

from __future__ import annotations

import os

os.environ.setdefault("POCL_MAX_PTHREAD_COUNT", "2")  # before the OpenCL driver starts

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402

import numpy as np  # noqa: E402
from tensorcore.benchmarks._mlp import epoch_fn, tensorcore_step_fn
from tensorcore.benchmarks.eager import BATCH, LR, SIZES, digits, init_params, numpy_epoch, tensorcore_epoch_fn


def traced_epoch_fn(params_np: list[np.ndarray]) -> tuple[Callable[[list], float], Callable[[], int]]:
    """An epoch whose training step is one traced graph; also returns its trace count."""
    import tensorcore as tc

    step = tc.function(tensorcore_step_fn(params_np, LR))
    return epoch_fn(step), lambda: step.trace_count


CHAIN_BYTES = 64 << 20


def numpy_chain(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The chain in eager NumPy: five ops, five passes over memory and four temporaries."""
    return np.exp(np.maximum(x * 0.5 + y, 0.0)) - 1.0


def chain_cases(nbytes: int) -> tuple[dict[str, Callable[[], object]], Callable[[], int]]:
    """The chain in eager NumPy and traced on opencl:0 (read back to the host), and the trace count."""
    import tensorcore as tc

    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((2, nbytes // 4), dtype=np.float32)
    tx, ty = tc.asarray(x, device="opencl:0"), tc.asarray(y, device="opencl:0")

    @tc.function
    def chain(x, y):
        return tc.exp(tc.maximum(x * 0.5 + y, 0.0)) - 1.0

    cases = {"numpy": lambda: numpy_chain(x, y), "traced opencl": lambda: chain(tx, ty).numpy()}
    np.testing.assert_allclose(cases["traced opencl"](), cases["numpy"](), rtol=1e-5, atol=1e-5)
    return cases, lambda: chain.trace_count


def run_chain(rounds: int) -> None:
    """Print the elementwise chain's times and ratio."""
    import tensorcore as tc

    if "opencl:0" not in [str(i.device) for i in tc.devices()]:
        print("elementwise chain: skipped (no opencl:0 device)")
        return
    from tensorcore.benchmarks.opencl import interleaved

    cases, traces = chain_cases(CHAIN_BYTES)
    med = interleaved(cases, rounds, 1)
    print(f"5-op elementwise chain exp(maximum(x*0.5+y, 0))-1 on {CHAIN_BYTES >> 20} MiB float32 arrays, "
          f"median of {rounds} interleaved rounds (result on the host)")
    for name, t in med.items():
        print(f"  {name:14s} {t * 1e3:8.2f} ms  ({med['numpy'] / t:.2f}x eager NumPy)")
    print(f"  traces of the chain: {traces()}")


def main(argv: Sequence[str] | None = None) -> int:
    """Print samples/s of each implementation and the ratios."""
    from threadpoolctl import threadpool_limits

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--skip-chain", action="store_true", help="only the MLP")
    args = parser.parse_args(argv)
    x, y = digits()
    n = len(y) - len(y) % BATCH
    batches = [(x[i:i + BATCH], y[i:i + BATCH]) for i in range(0, n, BATCH)]
    params = init_params()
    traced, traces = traced_epoch_fn(params)
    np_params = [p.copy() for p in params]
    runners: dict[str, Callable[[list], float]] = {
        "numpy": lambda b: numpy_epoch(np_params, b), "eager": tensorcore_epoch_fn(params), "traced": traced,
    }
    samples: dict[str, list[float]] = {k: [] for k in runners}
    losses: dict[str, float] = {}
    with threadpool_limits(1):
        for run in runners.values():
            run(batches)  # warm-up (and the one trace)
        for _ in range(args.rounds):
            for name, run in runners.items():
                start = time.perf_counter()
                losses[name] = run(batches)
                samples[name].append(n / (time.perf_counter() - start))
    rates = {k: statistics.median(v) for k, v in samples.items()}
    print(f"MLP {'-'.join(map(str, SIZES))} epoch on digits, batch {BATCH}, one BLAS thread, "
          f"median of {args.rounds} interleaved rounds (samples/s)")
    for name, rate in rates.items():
        print(f"  {name:8s} {rate:10,.0f}  ({rate / rates['numpy']:.2f}x hand-written NumPy; last loss {losses[name]:.4f})")
    print(f"  traces of the step: {traces()} (no retracing after the first step)")
    if not args.skip_chain:
        run_chain(args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
