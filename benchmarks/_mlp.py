"""The MLP training step the benchmarks share: ReLU hidden layers, softmax cross-entropy, SGD.

Three parametrised layers (weights ``(out, in)`` and biases ``w1, b1, w2, b2, w3, b3``):

- :func:`problem`: one batch of random inputs and labels, and the initial parameters;
- :func:`array_step_fn`: the step written by hand with an array module (NumPy, or CuPy in
  ``cuda.py``), updating its parameters in place;
- :func:`tensorcore_step_fn`: the same step in tensorcore (``GradientTape``, ``nn.functional``,
  ``optim.SGD``), to call eagerly or to wrap in ``tc.function``;
- :func:`idiomatic_step_fn`: the same step as many users write it (``x @ w + b``, a tape, then
  ``p.assign_sub(lr * g)`` per parameter), the formulation of issue #13;
- :func:`time_epochs`: epochs of several of these, interleaved, in samples per second.

Importing this module as ``tensorcore.benchmarks._mlp`` imports the tensorcore package, so the
benchmarks import it after setting the environment variables that must precede the drivers
(``POCL_MAX_PTHREAD_COUNT``, ``CUPY_TF32``): inside functions, or below those settings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def problem(seed: int, batch: int, sizes: Sequence[int]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Inputs ``(batch, sizes[0])`` float32 and int64 labels below ``sizes[-1]``, drawn in that
    order from ``default_rng(seed)``, then the weights (uniform in ±1/sqrt(fan-in), float32) and
    zero biases of each layer."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], batch)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        bound = 1 / np.sqrt(n_in)
        params += [rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32), np.zeros(n_out, np.float32)]
    return x, y, params


def array_step_fn(xp: Any, x: Any, y: Any, params: list[Any], lr: float, rows: Any = None) -> Callable[[], float]:
    """A training step on ``x``, ``y`` written by hand in the array module ``xp``; it updates
    ``params`` (arrays of ``xp``) in place and returns the loss read back as a float.

    ``rows`` is ``xp.arange(len(x))`` made once (CuPy: no extra kernel per step); with None,
    the step makes it with ``xp.arange`` where it indexes, as NumPy costs almost nothing for it.
    """
    batch = x.shape[0]

    def step() -> float:
        w1, b1, w2, b2, w3, b3 = params
        h1 = xp.maximum(x @ w1.T + b1, 0)
        h2 = xp.maximum(h1 @ w2.T + b2, 0)
        z = h2 @ w3.T + b3
        z -= z.max(1, keepdims=True)
        p = xp.exp(z)
        p /= p.sum(1, keepdims=True)
        loss = -xp.log(p[xp.arange(batch) if rows is None else rows, y]).mean()
        p[xp.arange(batch) if rows is None else rows, y] -= 1
        p /= batch
        d2 = (p @ w3) * (h2 > 0)
        d1 = (d2 @ w2) * (h1 > 0)
        for param, g in zip(params, (d1.T @ x, d1.sum(0), d2.T @ h1, d2.sum(0), p.T @ h2, p.sum(0))):
            param -= lr * g
        return float(loss)

    return step


def tensorcore_step_fn(params: Sequence[np.ndarray], lr: float, device: Any = None) -> Callable[[Any, Any], Any]:
    """``step(x, y)``: one training step in tensorcore on its own ``tc.Variable`` copies of
    ``params`` on ``device`` (None: the default device), returning the loss tensor."""
    import tensorcore as tc
    from tensorcore.nn import functional as F

    variables = [tc.Variable(p, device=device) for p in params]
    opt = tc.optim.SGD(variables, lr=lr)
    w1, b1, w2, b2, w3, b3 = variables

    def step(x: Any, y: Any) -> Any:
        with tc.GradientTape() as tape:
            h = F.relu(F.linear(x, w1, b1))
            h = F.relu(F.linear(h, w2, b2))
            loss = F.cross_entropy(F.linear(h, w3, b3), y)
        opt.step(tape.gradient(loss, variables))
        return loss

    return step


def idiomatic_step_fn(params: Sequence[np.ndarray], lr: float, device: Any = None) -> Callable[[Any, Any], Any]:
    """``step(x, y)`` as many users write it, on its own ``tc.Variable`` copies of ``params``:
    ``x @ w + b`` with each weight held ``(in, out)`` (the transpose of ``params``' weight, so
    the step computes what :func:`tensorcore_step_fn` does), ``F.relu``, ``F.cross_entropy``,
    a ``GradientTape``, then ``p.assign_sub(lr * g)`` per parameter, without an optimizer."""
    import tensorcore as tc
    from tensorcore.nn import functional as F

    variables = [tc.Variable(np.ascontiguousarray(p.T), device=device) for p in params]  # a bias's .T is itself
    w1, b1, w2, b2, w3, b3 = variables

    def step(x: Any, y: Any) -> Any:
        with tc.GradientTape() as tape:
            h = F.relu(x @ w1 + b1)
            h = F.relu(h @ w2 + b2)
            loss = F.cross_entropy(h @ w3 + b3, y)
        for p, g in zip(variables, tape.gradient(loss, variables)):
            p.assign_sub(lr * g)
        return loss

    return step


def epoch_fn(step: Callable[[Any, Any], Any]) -> Callable[[list], float]:
    """``epoch(batches)``: ``step(x, y)`` on each NumPy batch made a tensorcore array (default
    device), returning the last loss as a float."""
    import tensorcore as tc

    def epoch(batches: list) -> float:
        loss = None
        for x, y in batches:
            loss = step(tc.asarray(x), tc.asarray(y))
        return float(loss.item())

    return epoch


def time_epochs(runners: dict[str, Callable[[list], float]], batches: list, rounds: int,
                ) -> tuple[dict[str, float], dict[str, float]]:
    """Median samples/s of one epoch over ``batches`` per runner, the runners taking turns every
    round (so machine noise hits all alike), and each one's last loss; one BLAS thread.

    Timed by ``tc.bench.interleaved``: each runner's first, untimed epoch (tracing, pools) runs
    from the same initial weights, and their losses must agree, as the formulations compute
    the same training (checked after the timing, which starts from those first epochs). Then
    one epoch per round and runner, with no rest and no warm-up: with one BLAS thread no
    OpenBLAS worker spins into the next runner's turn, and an epoch is long enough to need
    neither. NumPy's BLAS is warmed first (``host_gemm.warm_blas``): hand-written NumPy is
    timed at its best, in the state tensorcore's cpu products also run in.
    """
    from threadpoolctl import threadpool_limits

    from tensorcore import bench
    from tensorcore.ops.host_gemm import warm_blas

    losses: dict[str, list[float]] = {k: [] for k in runners}

    def epoch(name: str) -> Callable[[], None]:
        return lambda: losses[name].append(runners[name](batches))

    n = sum(len(y) for _, y in batches)
    with threadpool_limits(1):
        warm_blas()
        t = bench.interleaved({name: epoch(name) for name in runners}, budget=0, warmup=0, rounds=rounds, rest=0,
                              min_repeats=rounds, number=1)
    first = {name: values[0] for name, values in losses.items()}
    reference = next(iter(first.values()))
    if not all(abs(loss - reference) <= 1e-3 * max(1.0, abs(reference)) for loss in first.values()):
        raise RuntimeError(f"the formulations do not train alike: last losses of the untimed epoch {first}")
    return {name: n / timing.median for name, timing in t.items()}, {name: values[-1] for name, values in losses.items()}
