"""The all-reduce as an op, so that a traced step (``tc.function`` inside ``strategy.run``)
keeps its collectives: each replica's graph gets an ``all_reduce`` node on its device.

``all_reduce`` is an in-place op on a flat buffer that is the replica's own (freshly packed
and scaled). Like every in-place op it is only recorded while tracing and runs when the
graph runs, so replicas that retrace at different calls never run a collective the others
do not. Extra inputs are ordering edges (the previous bucket's buffer): a graph runs its
collectives in the order the step issued them, the same in every replica.

One kernel serves every device: it reads the buffer through the backend's host view (or a
host copy) and hands it to the strategy's collective (``strategy._collective_kernel``).
"""

from __future__ import annotations

import itertools
import weakref
from typing import Any

from tensorcore.ops.registry import Op, define, register_kernel

_strategies: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_ids = itertools.count(1)


def register(strategy: Any) -> int:
    """A number that names ``strategy`` in the op's attributes (attributes are plain values)."""
    group = next(_ids)
    _strategies[group] = strategy
    return group


def _all_reduce(data: Any, *after: Any, group: int, what: str, description: tuple, device: Any = None) -> None:
    strategy = _strategies.get(group)
    if strategy is None:
        raise RuntimeError(f"{what}: the strategy of this all-reduce no longer exists")
    strategy._collective_kernel(data, what, description, device)


def _on_device(device: Any, data: Any, *after: Any, **attrs: Any) -> None:
    """The same kernel bound to a device backend, which passes its device (``CLDevice``,
    ``CUDADevice``: the CUDA one's stream is where NCCL runs) first."""
    _all_reduce(data, *after, device=device, **attrs)


ALL_REDUCE = define(Op(
    "all_reduce", _all_reduce, stateful=True,
    doc="Sum a flat buffer over every replica of a tensorcore.distribute strategy, in place.",
))
for _backend in ("opencl", "cuda"):
    register_kernel("all_reduce", _backend, _on_device)
