"""Random sampling as an op: ``random`` draws from one seeded host generator.

Values are drawn on the host with NumPy's PCG64 generator, so the same seed gives the same
numbers on every device (they are copied where they are needed). The op is *stateful*: each
call advances the generator, so graph passes never fold it into a constant or merge two
draws, and a traced function draws fresh values every time its graph runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tensorcore.ops.registry import Op, Spec, define

_generator = [np.random.default_rng()]  # a list, so seed() replaces what every reader sees
_seeds = [0]  # how many times seed() was called: replica streams derived before are stale
# Set by tensorcore.distribute: the generator of the replica this thread runs as (its own
# stream, so that replicas in threads neither race on one generator nor draw alike), or None.
replica_generator_hook: Callable[[], np.random.Generator | None] | None = None


def seed(value: int) -> None:
    """Reseed the generator of ``tc.random``, dropout and layer initialization."""
    if replica_generator_hook is not None and replica_generator_hook() is not None:
        raise RuntimeError("tc.random.seed inside strategy.run: each replica draws from a stream of its own, "
                           "derived from the seed set before run; seed outside strategy.run")
    _generator[0] = np.random.default_rng(value)
    _seeds[0] += 1


def seed_count() -> int:
    """How many times :func:`seed` was called (replica streams follow the latest seed)."""
    return _seeds[0]


def _current() -> np.random.Generator:
    own = replica_generator_hook() if replica_generator_hook is not None else None
    return own if own is not None else _generator[0]


def generator() -> np.random.Generator:
    """The NumPy generator behind ``tc.random`` (for host-side shuffling): inside
    ``strategy.run``, the replica's own."""
    return _current()


def state() -> tuple[np.random.Generator, dict]:
    """The generator and its position, to rewind with :func:`restore`."""
    g = _current()
    return g, g.bit_generator.state


def restore(saved: tuple[np.random.Generator, dict]) -> None:
    """Rewind to a :func:`state`: draws made since then (while tracing) are given back."""
    if replica_generator_hook is None or replica_generator_hook() is None:
        _generator[0] = saved[0]  # the global generator (a seed() since may have replaced it)
    saved[0].bit_generator.state = saved[1]


def _draw(*, distribution: str, shape: tuple[int, ...], a: float, b: float, dtype: str) -> np.ndarray:
    g = _current()
    if distribution == "uniform":
        values = g.uniform(a, b, shape)
    elif distribution == "normal":
        values = g.normal(a, b, shape)
    elif distribution == "bernoulli":
        values = g.random(shape) < a
    elif distribution == "permutation":
        values = g.permutation(shape[0])
    else:
        raise ValueError(f"random: unknown distribution {distribution!r}")
    return values.astype(dtype, copy=False)


RANDOM = define(Op(
    "random", _draw, infer=lambda *, distribution, shape, a, b, dtype: Spec(tuple(shape), np.dtype(dtype)),
    stateful=True,
    doc="Samples of ``distribution`` (uniform on [a, b), normal(a, b), bernoulli(a), permutation) from the host generator.",
))


def sample(distribution: str, shape: Any, a: float, b: float, dtype: np.dtype) -> tuple[np.ndarray, dict[str, Any]]:
    """Draw now: (the host array, the op's attributes that draw the same way again)."""
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(n) for n in shape)
    attrs = {"distribution": distribution, "shape": shape, "a": float(a), "b": float(b), "dtype": np.dtype(dtype).name}
    return _draw(**attrs), attrs
