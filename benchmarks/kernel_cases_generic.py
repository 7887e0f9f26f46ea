"""Any elementwise op or reduction of the op table as a ``tensorcore bench kernels`` case.

``--op NAME`` for an op without a hand-written case (``kernel_cases.py``, ``kernel_cases_nn.py``)
gets one built here, if the op is simple enough to build blind: an elementwise op (its public
function takes one or two tensors, as ``tc.atan2``) or a reduction of ``ops/reductions.py``
(``tc.prod``, ``tc.var``, ...; a scan such as ``tc.cumulative_sum`` counts as elementwise, as
its output has the input's shape). The case runs the public function on ``arity`` vectors of
n elements. The reference is the array module's function of the same name (``np.atan2``);
where it has none, the result is still checked, against the op on ``cpu`` (the op table's
NumPy reference), but no reference is timed and the ratio stays blank.

Each op is probed once, on a few elements on ``cpu``: in which dtype kinds it runs, whether it
reduces, whether it answers bool, and which input range keeps its results finite (``log``
and ``sqrt`` need positive inputs, ``acosh`` inputs of at least 1).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from math import prod
from typing import Any

import numpy as np
from tensorcore.benchmarks.kernel_cases import VECTOR_SIZES, CheckOnly, Cost, Env, OpSpec, Pair

#: Ranges tried in turn for floating inputs; the first where the op's results are all finite wins.
FLOAT_RANGES = (None, (0.1, 0.9), (1.1, 2.0))  # None: standard normal
#: Integer inputs: positive and small (no division by zero, no negative or wide shifts).
INT_RANGE = (1, 8)


@dataclass(frozen=True)
class Probe:
    """What a few elements on ``cpu`` told about an op."""

    arity: int
    reduces: bool  # the output is a scalar (else it has the input's shape)
    bool_output: bool
    kinds: str  # "f", "iu" or "fiu": the dtype kinds it runs in
    float_range: tuple[float, float] | None


def _public_function(name: str) -> tuple[Callable[..., Any], int] | None:
    """``tc.NAME`` and its number of tensor inputs, if NAME is an elementwise op or a reduction
    of the op table; None otherwise."""
    import tensorcore as tc
    from tensorcore.ops.registry import OPS

    fn = getattr(tc, name, None)
    if name not in OPS or not callable(fn):
        return None
    elementwise = getattr(fn, "op", None) is OPS[name]  # made by ops/_define.op_function
    if not elementwise and getattr(fn, "__module__", "") != "tensorcore.ops.reductions":
        return None
    arity = sum(1 for p in inspect.signature(fn).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty)
    return (fn, arity) if arity in (1, 2) else None


def draw(rng: np.random.Generator, dtype: np.dtype, shape: tuple[int, ...], float_range: tuple[float, float] | None,
         ) -> np.ndarray:
    """Inputs of ``shape`` in ``dtype``: small positive integers, or floats in ``float_range``
    (None: standard normal)."""
    if dtype.kind in "iu":
        return rng.integers(*INT_RANGE, shape).astype(dtype)
    if float_range is None:
        return rng.standard_normal(shape).astype(dtype)
    return rng.uniform(*float_range, shape).astype(dtype)


def _run_on_cpu(fn: Callable[..., Any], arrays: list[np.ndarray]) -> np.ndarray:
    import tensorcore as tc

    return np.asarray(fn(*[tc.asarray(a, device="cpu") for a in arrays]).numpy())


@functools.cache
def probe(name: str) -> Probe | None:
    """How to bench op ``name`` (None: the generic builder cannot). Runs only on ``cpu``."""
    found = _public_function(name)
    if found is None:
        return None
    fn, arity = found
    rng, shape, results = np.random.default_rng(0), (16,), {}
    for kind, dtype in (("f", np.dtype(np.float32)), ("iu", np.dtype(np.int32))):
        for float_range in FLOAT_RANGES if kind == "f" else (None,):
            try:
                with np.errstate(all="ignore"):
                    out = _run_on_cpu(fn, [draw(rng, dtype, shape, float_range) for _ in range(arity)])
            except Exception:  # noqa: BLE001 - the op refuses this dtype: not benched in it
                break
            if out.shape not in (shape, ()):
                return None  # neither elementwise nor a full reduction
            if out.dtype.kind == "b" or np.all(np.isfinite(out)):
                results[kind] = (out, float_range)
                break
    if not results:
        return None
    out = next(iter(results.values()))[0]
    return Probe(arity, out.shape == (), out.dtype.kind == "b", "".join(results), results.get("f", (None, None))[1])


def generic_ops() -> list[str]:
    """The op table's ops the generic builder can bench."""
    from tensorcore.ops.registry import OPS

    return sorted(name for name in OPS if probe(name) is not None)


def _cost(p: Probe) -> Callable[[tuple[int, ...], int], Cost]:
    """One FLOP per element; the inputs read and the output written (a bool is 1 byte, a
    reduction's scalar is not counted)."""
    def cost(shape: tuple[int, ...], s: int) -> Cost:
        n = prod(shape)
        written = 0 if p.reduces else (1 if p.bool_output else s) * n
        return Cost(float(n), float(p.arity * s * n + written))
    return cost


def _builder(name: str, p: Probe) -> Callable[[tuple[int, ...], Env], Pair]:
    def build(shape: tuple[int, ...], env: Env) -> Pair:
        import tensorcore as tc

        host = [draw(env.rng, env.dtype, shape, p.float_range) for _ in range(p.arity)]
        ours, tensors = getattr(tc, name), [tc.asarray(a, device=env.device) for a in host]
        theirs = getattr(env.xp, name, None)
        if theirs is None:  # checked against the op on cpu, not timed
            return (lambda: ours(*tensors)), CheckOnly(lambda: _run_on_cpu(ours, host))
        arrays = [env.xp.asarray(a) for a in host]
        return (lambda: ours(*tensors)), (lambda: theirs(*arrays))
    return build


def spec(name: str) -> OpSpec:
    """The generic case of op ``name``; ValueError naming the ops it can bench if it cannot."""
    p = probe(name)
    if p is None:
        raise ValueError(f"op {name!r} has no benchmark case, and the generic builder benches only elementwise ops "
                         f"and reductions of the op table: {', '.join(generic_ops())}")
    what = "all elements" if p.reduces else "elementwise" if p.arity == 1 else "elementwise, 2 inputs"
    return OpSpec(name, f"n ({what}; generic case)", VECTOR_SIZES, _cost(p), _builder(name, p), p.kinds)
