"""Graph mode: the MLP 64-128-128-10 digits epoch traced with tc.function, against hand-written
NumPy and eager tensorcore, one BLAS thread, interleaved rounds, medians.

Run: ``python benchmarks/graph.py`` or ``tensorcore bench graph`` (``--rounds N``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
from tensorcore.benchmarks.eager import BATCH, LR, SIZES, digits, init_params, numpy_epoch, tensorcore_epoch_fn


def traced_epoch_fn(params_np: list[np.ndarray]) -> tuple[Callable[[list], float], Callable[[], int]]:
    """An epoch whose training step is one traced graph; also returns its trace count."""
    import tensorcore as tc
    from tensorcore.nn import functional as F

    params = [tc.Variable(p.copy()) for p in params_np]
    opt = tc.optim.SGD(params, lr=LR)
    w1, b1, w2, b2, w3, b3 = params

    @tc.function
    def step(x, y):
        with tc.GradientTape() as tape:
            h = F.relu(F.linear(x, w1, b1))
            h = F.relu(F.linear(h, w2, b2))
            loss = F.cross_entropy(F.linear(h, w3, b3), y)
        opt.step(tape.gradient(loss, params))
        return loss

    def epoch(batches: list) -> float:
        loss = None
        for x, y in batches:
            loss = step(tc.asarray(x), tc.asarray(y))
        return float(loss.item())

    return epoch, lambda: step.trace_count


def main(argv: Sequence[str] | None = None) -> int:
    """Print samples/s of each implementation and the ratios."""
    from threadpoolctl import threadpool_limits

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
