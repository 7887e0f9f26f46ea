"""Random tensors from one seeded host generator (reproducible across devices).

Values are drawn on the host with NumPy's PCG64 generator and copied to the device, so
the same seed gives the same numbers on ``cpu``, ``opencl`` and ``cuda``. Each draw is the
stateful ``random`` op (``ops/sampling.py``): inside ``tc.function`` it becomes a graph node
that draws new values every time the graph runs, instead of a constant frozen at trace time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore import dispatch, dtypes
from tensorcore.device import Device, current_device, resolve
from tensorcore.ops.sampling import RANDOM, generator, sample, seed

_CPU = Device("cpu")


def _draw(distribution: str, shape: Any, a: float, b: float, dtype: Any, device: Any) -> Any:
    values, attrs = sample(distribution, shape, a, b, dtype)
    out = dispatch.wrap(values, _CPU)
    tracer = dispatch.current_tracer()
    if tracer is not None:  # drawn on the host by definition: no device was asked for
        tracer.op(RANDOM, (), attrs, (out,), _CPU, requested=None)
    dev = current_device() if device is None else resolve(device)
    return out if dev == _CPU else dispatch.transfer(out, dev)


def _float(dtype: Any, name: str) -> np.dtype:
    dt = np.dtype(dtypes.DEFAULT_FLOAT if dtype is None else dtypes.as_dtype(dtype))
    if dt in dtypes.COMPLEX_SET:  # NumPy would draw real values and store them with zero imaginary parts
        raise TypeError(f"tc.random.{name} draws real numbers, not {dt}; for a complex tensor draw its real and "
                        f"imaginary parts as {dtypes.real_dtype(dt)} and combine them: re + 1j * im")
    return dt


def uniform(shape: Any, low: float = 0.0, high: float = 1.0, *, dtype: Any = None, device: Any = None) -> Any:
    """Samples from the uniform distribution on ``[low, high)``."""
    return _draw("uniform", shape, low, high, _float(dtype, "uniform"), device)


def normal(shape: Any, mean: float = 0.0, std: float = 1.0, *, dtype: Any = None, device: Any = None) -> Any:
    """Samples from the normal distribution with ``mean`` and ``std``."""
    return _draw("normal", shape, mean, std, _float(dtype, "normal"), device)


def bernoulli(shape: Any, p: float, *, dtype: Any = None, device: Any = None) -> Any:
    """Ones with probability ``p``, zeros otherwise."""
    return _draw("bernoulli", shape, p, 0.0, _float(dtype, "bernoulli"), device)


def permutation(n: int, *, device: Any = None) -> Any:
    """A random permutation of ``0 .. n-1`` as an int64 tensor."""
    return _draw("permutation", (n,), 0.0, 0.0, np.dtype(np.int64), device)


def get_state() -> dict[str, Any]:
    """The generator's position as plain JSON-able data (what checkpoints save)."""
    return generator().bit_generator.state


def set_state(state: dict[str, Any]) -> None:
    """Move the generator to a position from :func:`get_state` (what checkpoints restore)."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name != "PCG64":
        raise ValueError(f"tc.random.set_state: expected the state of a PCG64 generator (from tc.random.get_state()), "
                         f"got {'a ' + type(state).__name__ if name is None else name!r}")
    try:  # on a scratch generator first, so a malformed state leaves the live one as it was
        np.random.PCG64().state = state
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"tc.random.set_state: malformed PCG64 state ({type(exc).__name__}: {exc})") from None
    generator().bit_generator.state = state


__all__ = ["seed", "generator", "get_state", "set_state", "uniform", "normal", "bernoulli", "permutation"]
