"""Random tensors from one seeded host generator (reproducible across devices).

Values are drawn on the host with NumPy's PCG64 generator and copied to the device, so
the same seed gives the same numbers on ``cpu``, ``opencl`` and ``cuda``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore import dtypes

_generator = np.random.default_rng()


def seed(value: int) -> None:
    """Reseed the generator used by ``tc.random`` functions, dropout and layer initialization."""
    global _generator
    _generator = np.random.default_rng(value)


def generator() -> np.random.Generator:
    """The NumPy generator behind ``tc.random`` (for host-side shuffling)."""
    return _generator


def _place(values: np.ndarray, dtype: Any, device: Any) -> Any:
    from tensorcore.ops.creation import from_host

    dt = dtypes.DEFAULT_FLOAT if dtype is None else dtypes.as_dtype(dtype)
    return from_host(values.astype(dt, copy=False), device)


def uniform(shape: Any, low: float = 0.0, high: float = 1.0, *, dtype: Any = None, device: Any = None) -> Any:
    """Samples from the uniform distribution on ``[low, high)``."""
    return _place(_generator.uniform(low, high, shape), dtype, device)


def normal(shape: Any, mean: float = 0.0, std: float = 1.0, *, dtype: Any = None, device: Any = None) -> Any:
    """Samples from the normal distribution with ``mean`` and ``std``."""
    return _place(_generator.normal(mean, std, shape), dtype, device)


def bernoulli(shape: Any, p: float, *, dtype: Any = None, device: Any = None) -> Any:
    """Ones with probability ``p``, zeros otherwise."""
    return _place((_generator.random(shape) < p), dtype, device)


def permutation(n: int, *, device: Any = None) -> Any:
    """A random permutation of ``0 .. n-1`` as an int64 tensor."""
    return _place(_generator.permutation(n), dtypes.int64, device)
