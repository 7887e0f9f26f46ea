"""Eager-mode overhead: a tiny ``a + b`` and an MLP training epoch, against NumPy and PyTorch.

The MLP runs in two tensorcore formulations: the benchmark's own (``F.linear``, ``optim.SGD``)
and the idiomatic one of issue #13 (``x @ w + b``, then ``p.assign_sub(lr * g)`` per parameter).

Run: ``python benchmarks/eager.py`` or ``tensorcore bench eager`` (``--rounds N``).
Every figure is the median over interleaved rounds (NumPy, tensorcore, PyTorch in turn), so
machine noise hits all alike. PyTorch is optional (``pip install torch==2.13.0``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from tensorcore.benchmarks._cli import add_device_and_json, on_device, write_json

BATCH, LR, SIZES = 64, 0.1, (64, 128, 128, 10)


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return torch


# --- tiny op ---------------------------------------------------------------------------------

def tiny_op_cases(shape: tuple[int, ...], torch: Any) -> dict[str, Callable[[], Any]]:
    """``a + b`` on float32 of ``shape`` for each library."""
    import tensorcore as tc

    a, b = np.ones(shape, np.float32), np.ones(shape, np.float32)
    ta, tb = tc.asarray(a), tc.asarray(b)
    cases = {"numpy": lambda: a + b, "tensorcore": lambda: ta + tb}
    if torch is not None:
        pa, pb = torch.ones(shape), torch.ones(shape)
        cases["pytorch"] = lambda: pa + pb
    return cases


def time_tiny(cases: dict[str, Callable[[], Any]], rounds: int, number: int = 20000) -> dict[str, float]:
    """Median seconds per call of each case, interleaved over ``rounds``: ``tc.bench.interleaved``
    with one sample of ``number`` calls per case and round (then a wait for the device, so an
    asynchronous device's figure is the time to the result), no rest and no warm-up (tiny
    calls on one BLAS thread leave no worker spinning)."""
    from tensorcore import bench

    t = bench.interleaved(cases, budget=0, warmup=0, rounds=rounds, rest=0, min_repeats=rounds, number=number)
    return {name: timing.median for name, timing in t.items()}


# --- MLP epoch -------------------------------------------------------------------------------

def digits() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits as float32 (N, 64) in [0, 1] and int64 labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)


def init_params(seed: int = 0) -> list[np.ndarray]:
    """Weights ``(out, in)`` and biases of the MLP, as PyTorch's Linear initializes them."""
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        bound = 1 / np.sqrt(n_in)
        params += [rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32),
                   rng.uniform(-bound, bound, n_out).astype(np.float32)]
    return params


def numpy_epoch(params: list[np.ndarray], batches: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """One epoch written by hand in NumPy; returns the last loss."""
    w1, b1, w2, b2, w3, b3 = params
    loss = 0.0
    for x, y in batches:
        n = len(y)
        h1 = x @ w1.T
        h1 += b1
        np.maximum(h1, 0, out=h1)
        h2 = h1 @ w2.T
        h2 += b2
        np.maximum(h2, 0, out=h2)
        z = h2 @ w3.T
        z += b3
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        loss = -np.log(z[np.arange(n), y]).mean()
        z[np.arange(n), y] -= 1
        z /= n
        g3, gb3 = z.T @ h2, z.sum(0)
        d2 = z @ w3
        d2 *= h2 > 0
        g2, gb2 = d2.T @ h1, d2.sum(0)
        d1 = d2 @ w2
        d1 *= h1 > 0
        g1, gb1 = d1.T @ x, d1.sum(0)
        for p, g in zip(params, (g1, gb1, g2, gb2, g3, gb3)):
            p -= LR * g
    return float(loss)


def digits_batches() -> list[tuple[np.ndarray, np.ndarray]]:
    """The digits in batches of ``BATCH`` (the last, partial batch left out)."""
    x, y = digits()
    n = len(y) - len(y) % BATCH
    return [(x[i:i + BATCH], y[i:i + BATCH]) for i in range(0, n, BATCH)]


def tensorcore_epoch_fn(params_np: list[np.ndarray], idiomatic: bool = False) -> Callable[[list], float]:
    """An epoch in eager tensorcore: Variables, GradientTape, nn.functional, and optim.SGD or,
    ``idiomatic``, ``x @ w + b`` and ``p.assign_sub(lr * g)`` (see ``_mlp.idiomatic_step_fn``)."""
    from tensorcore.benchmarks._mlp import epoch_fn, idiomatic_step_fn, tensorcore_step_fn

    return epoch_fn((idiomatic_step_fn if idiomatic else tensorcore_step_fn)(params_np, LR))


def torch_epoch_fn(params_np: list[np.ndarray], torch: Any) -> Callable[[list], float]:
    """The same epoch in PyTorch eager."""
    F = torch.nn.functional  # noqa: N806 - the usual alias
    params = [torch.tensor(p, requires_grad=True) for p in params_np]
    opt = torch.optim.SGD(params, lr=LR)
    w1, b1, w2, b2, w3, b3 = params

    def epoch(batches: list) -> float:
        loss = None
        for x, y in batches:
            x, y = torch.from_numpy(x), torch.from_numpy(y)
            h = F.relu(F.linear(x, w1, b1))
            h = F.relu(F.linear(h, w2, b2))
            loss = F.cross_entropy(F.linear(h, w3, b3), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return float(loss.item())

    return epoch


def time_mlp(rounds: int, torch: Any) -> tuple[dict[str, float], dict[str, float]]:
    """Median samples/s of one epoch per implementation (interleaved), and each one's last loss."""
    from tensorcore.benchmarks._mlp import time_epochs

    params = init_params()
    np_params = [p.copy() for p in params]
    runners: dict[str, Callable[[list], float]] = {
        "numpy": lambda b: numpy_epoch(np_params, b),
        "tensorcore": tensorcore_epoch_fn(params),
        "tc idiomatic": tensorcore_epoch_fn(params, idiomatic=True),
    }
    if torch is not None:
        runners["pytorch"] = torch_epoch_fn(params, torch)
    return time_epochs(runners, digits_batches(), rounds)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the tiny-op times and MLP throughput with ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds; medians are reported")
    add_device_and_json(parser)
    args = parser.parse_args(argv)
    with on_device(args.device) as dev:
        results = _run(args.rounds, str(dev))
    write_json(args.json, results)
    return 0


def _run(rounds: int, device: str) -> dict:
    """Print the tables (tensorcore on ``device``, the current scope); the results."""
    torch = _torch()
    if torch is None:
        print("PyTorch is not installed: its columns are skipped (pip install torch==2.13.0)")
    print(f"tensorcore on {device}; tiny a + b, float32, median of {rounds} interleaved rounds (microseconds per op)")
    tiny = {}
    for shape in ((1,), (8, 8)):
        t = tiny[str(shape)] = time_tiny(tiny_op_cases(shape, torch), rounds)
        cells = ", ".join(f"{k} {v * 1e6:.2f}" for k, v in t.items())
        ratio = f"; tensorcore/pytorch = {t['tensorcore'] / t['pytorch']:.2f}" if "pytorch" in t else ""
        print(f"  shape {shape}: {cells}{ratio}")
    rates, losses = time_mlp(rounds, torch)
    print(f"MLP {'-'.join(map(str, SIZES))} on digits, batch {BATCH}, SGD lr {LR}, one BLAS thread "
          f"(samples/s, median of {rounds} epochs)")
    for name, rate in rates.items():
        print(f"  {name:12s} {rate:10,.0f}  ({rate / rates['numpy']:.2f}x hand-written NumPy; last loss {losses[name]:.4f})")
    return {"device": device, "rounds": rounds, "tiny_add_seconds": tiny, "mlp_samples_per_s": rates, "mlp_last_loss": losses}


if __name__ == "__main__":
    raise SystemExit(main())
