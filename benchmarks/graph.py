"""Graph mode, two measurements, each in one interleaved run with medians:

1. the MLP 64-128-128-10 digits epoch traced with tc.function, against hand-written NumPy and
   eager tensorcore, one BLAS thread, in two formulations: the benchmark's own (``F.linear``,
   ``optim.SGD``) and the idiomatic one of issue #13 (``x @ w + b``, ``p.assign_sub(lr * g)``),
   with what the graph rewrites made of the latter;
2. a 5-op elementwise chain on 64 MiB float32 arrays: traced on opencl:0 (one fused kernel,
   result read back to the host) against the same chain in eager NumPy; and a mean squared
   error on the same arrays, traced on opencl:0 with the chain fused into the mean (one kernel
   that never writes the squares out) and with the mean apart, against NumPy.

Run: ``python benchmarks/graph.py`` or ``tensorcore bench graph`` (``--rounds N``,
``--skip-chain``, ``--ablate``: also the idiomatic step without the graph rewrites and, on
``cpu``, with the SGD rewrite that the pipeline leaves out there, and the traced and the
idiomatic eager step with ``host_gemm``'s autotuning on). The MLP
runs on the default device: ``TENSORCORE_DEVICE=opencl:0`` runs tensorcore's on ``opencl:0``.
"""

from __future__ import annotations

import os

os.environ.setdefault("POCL_MAX_PTHREAD_COUNT", "2")  # before the OpenCL driver starts

import argparse  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from tensorcore.benchmarks._cli import add_device_and_json, on_device, write_json  # noqa: E402
from tensorcore.benchmarks._mlp import epoch_fn, idiomatic_step_fn, tensorcore_step_fn, time_epochs
from tensorcore.benchmarks.eager import BATCH, LR, SIZES, digits_batches, init_params, numpy_epoch, tensorcore_epoch_fn


def traced_epoch_fn(params_np: list[np.ndarray], idiomatic: bool = False) -> tuple[Callable[[list], float], Any]:
    """An epoch whose training step is one traced graph (the benchmark's formulation or, with
    ``idiomatic``, issue #13's); also returns the traced step (``tc.function``)."""
    import tensorcore as tc

    step = tc.function((idiomatic_step_fn if idiomatic else tensorcore_step_fn)(params_np, LR))
    return epoch_fn(step), step


def compiled_with(epoch: Callable[[list], float], rewrites: bool = False) -> Callable[[list], float]:
    """``epoch`` whose first call (which traces the step) compiles it without the pattern
    rewrites (``tensorcore/graph/rewrite_*.py``), or, with ``rewrites``, with all of them on
    every device (the SGD rewrite on ``cpu`` too, where the pipeline leaves it out): an A/B
    comparison in one run."""
    from unittest import mock

    from tensorcore.graph import rewrite_linear, rewrite_sgd

    linear, sgd = rewrite_linear.matmul_bias_to_linear, rewrite_sgd.updates_to_sgd_step
    patches = {"matmul_bias_to_linear": linear if rewrites else (lambda graph: 0),
               "updates_to_sgd_step": (lambda graph: sgd(graph, on_cpu=True)) if rewrites else (lambda graph: 0)}
    calls = [0]

    def run(batches: list) -> float:
        calls[0] += 1
        if calls[0] > 1:
            return epoch(batches)
        with mock.patch.object(rewrite_linear, "matmul_bias_to_linear", patches["matmul_bias_to_linear"]), \
                mock.patch.object(rewrite_sgd, "updates_to_sgd_step", patches["updates_to_sgd_step"]):
            return epoch(batches)

    return run


def with_gemm_autotune(epoch: Callable[[list], float]) -> Callable[[list], float]:
    """``epoch`` with ``host_gemm``'s autotuning on (each host product through the faster of
    its two equivalent BLAS calls; off by default): an A/B comparison in one run."""
    from tensorcore.ops import host_gemm

    def run(batches: list) -> float:
        with host_gemm.autotuning(True):
            return epoch(batches)

    return run


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


def reduction_cases(nbytes: int) -> dict[str, Callable[[], object]]:
    """``mean((x - y)**2)`` in NumPy and traced on opencl:0, with the chain fused into the mean
    and (compiled with that fusion switched off) fused apart from it."""
    from unittest import mock

    import tensorcore as tc
    from tensorcore.graph import fusion

    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((2, nbytes // 4), dtype=np.float32)
    tx, ty = tc.asarray(x, device="opencl:0"), tc.asarray(y, device="opencl:0")

    def mse(x, y):
        return tc.mean(tc.square(x - y))

    fused, apart = tc.function(mse), tc.function(mse)
    fused(tx, ty)
    with mock.patch.object(fusion, "reduces_trailing_axes", lambda node, graph: False):
        apart(tx, ty)  # traced and compiled now: later calls run that graph
    assert "+mean]" in fused.code(tx, ty) and "+mean]" not in apart.code(tx, ty)
    cases = {"numpy": lambda: np.mean(np.square(x - y)), "fused into the mean": lambda: fused(tx, ty).numpy(),
             "mean apart": lambda: apart(tx, ty).numpy()}
    for name in ("fused into the mean", "mean apart"):
        np.testing.assert_allclose(cases[name](), cases["numpy"](), rtol=1e-4)
    return cases


def run_chain(rounds: int) -> dict[str, float] | None:
    """Print the elementwise chain's times and ratio; the median seconds per case (None: no
    opencl:0 to run it on)."""
    import tensorcore as tc

    if "opencl:0" not in [str(i.device) for i in tc.devices()]:
        print("elementwise chain: skipped (no opencl:0 device)")
        return None
    from tensorcore.benchmarks.opencl import interleaved

    cases, traces = chain_cases(CHAIN_BYTES)
    med = interleaved(cases, rounds, 1)
    print(f"5-op elementwise chain exp(maximum(x*0.5+y, 0))-1 on {CHAIN_BYTES >> 20} MiB float32 arrays, "
          f"median of {rounds} interleaved rounds (result on the host)")
    for name, t in med.items():
        print(f"  {name:14s} {t * 1e3:8.2f} ms  ({med['numpy'] / t:.2f}x eager NumPy)")
    print(f"  traces of the chain: {traces()}")
    reduced = interleaved(reduction_cases(CHAIN_BYTES), rounds, 1)
    print(f"mean((x - y)**2) on the same arrays, median of {rounds} interleaved rounds (result on the host)")
    for name, t in reduced.items():
        print(f"  {name:20s} {t * 1e3:8.2f} ms  ({reduced['numpy'] / t:.2f}x eager NumPy)")
    return {**med, **{f"mse {name}": t for name, t in reduced.items()}}


def main(argv: Sequence[str] | None = None) -> int:
    """Print samples/s of each implementation and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds; medians are reported")
    parser.add_argument("--skip-chain", action="store_true", help="only the MLP")
    parser.add_argument("--ablate", action="store_true",
                        help="also the idiomatic traced step compiled without the graph rewrites (and, on cpu, with "
                             "the SGD rewrite, which the pipeline leaves out there, and two steps with host_gemm's "
                             "autotuning on)")
    add_device_and_json(parser)
    args = parser.parse_args(argv)
    with on_device(args.device) as dev:
        results = _run(args, str(dev))
    write_json(args.json, results)
    return 0


def _run(args: argparse.Namespace, device: str) -> dict[str, Any]:
    """Print the tables (tensorcore on ``device``, the current scope); the results."""
    import tensorcore as tc

    batches = digits_batches()
    params = init_params()
    traced, step = traced_epoch_fn(params)
    traced_idiomatic, idiomatic_step = traced_epoch_fn(params, idiomatic=True)
    np_params = [p.copy() for p in params]
    runners: dict[str, Callable[[list], float]] = {
        "numpy": lambda b: numpy_epoch(np_params, b), "eager": tensorcore_epoch_fn(params), "traced": traced,
        "idiomatic eager": tensorcore_epoch_fn(params, idiomatic=True), "idiomatic traced": traced_idiomatic,
    }
    if args.ablate:
        runners["idiom. no rewrites"] = compiled_with(traced_epoch_fn(params, idiomatic=True)[0])
        if tc.current_device().type == "cpu":
            runners["idiom. + sgd_step"] = compiled_with(traced_epoch_fn(params, idiomatic=True)[0], rewrites=True)
            runners["traced, GEMM autotune"] = with_gemm_autotune(traced_epoch_fn(params)[0])
            runners["idiom. eager, GEMM autotune"] = with_gemm_autotune(tensorcore_epoch_fn(params, idiomatic=True))
    rates, losses = time_epochs(runners, batches, args.rounds)
    print(f"tensorcore on {device}; MLP {'-'.join(map(str, SIZES))} epoch on digits, batch {BATCH}, one BLAS thread, "
          f"median of {args.rounds} interleaved rounds (samples/s)")
    for name, rate in rates.items():
        print(f"  {name:18s} {rate:10,.0f}  ({rate / rates['numpy']:.2f}x hand-written NumPy; last loss {losses[name]:.4f})")
    print(f"  traces of the step: {step.trace_count}, of the idiomatic step: {idiomatic_step.trace_count} "
          "(no retracing after the first step)")
    x, y = batches[0]
    stats = idiomatic_step.stats(tc.asarray(x), tc.asarray(y))
    rewrites = {k: v for k, v in stats.items() if "->" in k}
    print(f"  graph rewrites in the idiomatic traced step: {rewrites}")
    results = {"device": device, "rounds": args.rounds, "mlp_samples_per_s": rates, "mlp_last_loss": losses,
               "traces": {"step": step.trace_count, "idiomatic step": idiomatic_step.trace_count}, "rewrites": rewrites}
    if not args.skip_chain:
        results["chain_seconds"] = run_chain(args.rounds)
    return results


if __name__ == "__main__":
    raise SystemExit(main())
