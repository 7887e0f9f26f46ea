"""The all-reduce as an op, so that a traced step (``tc.function`` inside ``strategy.run``)
keeps its collectives: each replica's graph gets an ``all_reduce`` node on its device.

``all_reduce(*sources, *after)`` returns a new flat buffer: the sum over every replica of its
``sources`` raveled and concatenated (for a mean, each replica's scaled by its share of the
step's batch, which the kernel reads from the strategy when it runs, so a traced step uses
this step's shares). Out of place, so nothing is packed first: the replicas' sum reads every
replica's sources where they lie (host views of device memory on ``cpu`` and PoCL) and
writes each replica's output once. The ``after`` inputs (the previous bucket's output) order
the collectives: a graph runs them in the order the step issued them, the same in every
replica. Its gradient is an all-reduce of the output gradients (``scale_output``: times this
replica's weight, for a mean), so a sum across replicas inside a loss (a synchronized batch
norm's statistics) differentiates as the replicas' summed loss does. The ``check`` attribute (the first bucket's) describes every tensor of the call, on
which the replicas meet: lists that differ anywhere fail there, naming the tensor. The op is
stateful: a graph never merges two calls or folds one into a constant.

One kernel serves every device: it hands the sources to the strategy's collective
(``strategy._collective_kernel``), with the backend's device (``CLDevice``, ``CUDADevice``:
where the output is allocated, and the CUDA one's stream is where NCCL runs).
"""

from __future__ import annotations

import itertools
import math
import weakref
from typing import Any

import numpy as np

from tensorcore.ops.registry import Op, Spec, define, register_kernel

_strategies: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_ids = itertools.count(1)


def register(strategy: Any) -> int:
    """A number that names ``strategy`` in the op's attributes (attributes are plain values)."""
    group = next(_ids)
    _strategies[group] = strategy
    return group


def _infer(*specs: Spec, group: int, what: str, description: tuple, scaled: bool, n_after: int,
           check: tuple = (), scale_output: bool = False) -> Spec:
    """A flat buffer holding every tensor the description names, in the sources' dtype."""
    return Spec((sum(math.prod(shape) for _, shape, _ in description),), np.dtype(specs[0].dtype))


def _all_reduce(*args: Any, group: int, what: str, description: tuple, scaled: bool, n_after: int,
                check: tuple = (), scale_output: bool = False, device: Any = None) -> Any:
    strategy = _strategies.get(group)
    if strategy is None:
        raise RuntimeError(f"{what}: the strategy of this all-reduce no longer exists")
    sources = args[:len(args) - n_after]
    return strategy._collective_kernel(sources, what, description, scaled, device, check, scale_output)


def _all_reduce_grad(ctx: Any, g: Any) -> tuple:
    """Every replica's output is ``v_self * sum_r w_r x_r`` (``w`` the weights where ``scaled``,
    ``v`` where ``scale_output``, else 1), so the gradient of the replicas' summed losses with
    respect to this replica's sources is ``w_self * sum_r v_r g_r``: the same all-reduce with
    the two scalings swapped (the weights are read when it runs, as the forward's). Every
    replica's backward issues it in the same order, as their forwards issued theirs. Sliced
    back into the sources' shapes."""
    from tensorcore.dispatch import apply
    from tensorcore.distribute.buckets import unpack

    attrs = ctx.attrs
    sources = ctx.inputs[:len(ctx.inputs) - attrs["n_after"]]
    flat = apply(ALL_REDUCE, (g,), {
        "group": attrs["group"], "what": f"gradient of {attrs['what']}", "n_after": 0,
        "description": (("output gradient", tuple(g.shape), str(g.dtype)),),
        "scaled": bool(attrs.get("scale_output", False)), "scale_output": attrs["scaled"]})
    return (*unpack(flat, [tuple(s.shape) for s in sources]), *(None,) * attrs["n_after"])


def _on_device(device: Any, *args: Any, **attrs: Any) -> Any:
    """The same kernel bound to a device backend, which passes its device first."""
    return _all_reduce(*args, device=device, **attrs)


ALL_REDUCE = define(Op(
    "all_reduce", _all_reduce, infer=_infer, grad=_all_reduce_grad, stateful=True,
    doc="The sum of flat buffers over every replica of a tensorcore.distribute strategy (a new buffer).",
))
for _backend in ("opencl", "cuda"):
    register_kernel("all_reduce", _backend, _on_device)
