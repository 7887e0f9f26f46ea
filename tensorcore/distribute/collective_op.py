"""The all-reduce as an op, so that a traced step (``tc.function`` inside ``strategy.run``)
keeps its collectives: each replica's graph gets an ``all_reduce`` node on its device.

``all_reduce(*sources, *after)`` returns a new flat buffer: the sum over every replica of its
``sources`` raveled and concatenated (for a mean, each replica's scaled by its share of the
step's batch, which the kernel reads from the strategy when it runs, so a traced step uses
this step's shares). Out of place, so nothing is packed first: the replicas' sum reads every
replica's sources where they lie (host views of device memory on ``cpu`` and PoCL) and
writes each replica's output once. The ``after`` inputs (the previous bucket's output) order
the collectives: a graph runs them in the order the step issued them, the same in every
replica. Its gradient is an all-reduce of the output gradients, defined so that the
optimizer's weighted mean of the replicas' gradients is the gradient one device computes on
the whole batch (``_all_reduce_grad``), also when a loss uses a sum across replicas (a
synchronized batch norm's statistics). The ``check``
attribute (the first bucket's) describes every tensor of the call, on which the replicas
meet: lists that differ anywhere fail there, naming the tensor. The op is stateful: a graph
never merges two calls or folds one into a constant.

One kernel serves every device (``collective_kernel``): it hands the sources to the
strategy's collective (``collective.LocalGroup``, then MPI or NCCL), with the backend's device
(``CLDevice``, ``CUDADevice``: where the output is allocated, and the CUDA one's stream is
where NCCL runs).
"""

from __future__ import annotations

import itertools
import math
import time
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from tensorcore import dispatch, registry
from tensorcore.distribute import nccl
from tensorcore.distribute.values import _state
from tensorcore.ops.registry import Op, Spec, define, register_kernel

_strategies: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_ids = itertools.count(1)


def register(strategy: Any) -> int:
    """A number that names ``strategy`` in the op's attributes (attributes are plain values)."""
    group = next(_ids)
    _strategies[group] = strategy
    return group


def _infer(*specs: Spec, group: int, what: str, description: tuple, scaled: bool, n_after: int,
           check: tuple = (), divide_output: bool = False) -> Spec:
    """A flat buffer holding every tensor the description names, in the sources' dtype."""
    return Spec((sum(math.prod(shape) for _, shape, _ in description),), np.dtype(specs[0].dtype))


def _all_reduce(*args: Any, group: int, what: str, description: tuple, scaled: bool, n_after: int,
                check: tuple = (), divide_output: bool = False, device: Any = None) -> Any:
    strategy = _strategies.get(group)
    if strategy is None:
        raise RuntimeError(f"{what}: the strategy of this all-reduce no longer exists")
    sources = args[:len(args) - n_after]
    return collective_kernel(strategy, sources, what, description, scaled, device, check, divide_output)


def collective_kernel(strategy: Any, sources: Sequence[Any], what: str, description: tuple, scaled: bool,
                      handle: Any = None, check: tuple = (), divide_output: bool = False) -> Any:
    """The ``all_reduce`` op's kernel for ``strategy``, in a replica's thread: a new flat
    buffer on the replica's device holding the sum over every replica of its ``sources``
    (backend arrays), each scaled by its replica's weight when ``scaled``. The sum reads the sources
    through host views where the device's memory is the host's (else host copies) and
    writes the output through a host view of it (else uploads it); with NCCL on ``cuda``
    devices it is packed on the device and summed there (``handle`` is the backend's
    device: where the output is allocated, and whose stream NCCL runs on). The replicas
    meet on ``check`` (every tensor of the call, for its first bucket), else on
    ``description``. ``divide_output``: the sum is then divided by this replica's weight (in
    the gradient of a sum, see ``_all_reduce_grad``)."""
    ctx = _state.replica
    if ctx is None or ctx.strategy is not strategy:
        raise RuntimeError(f"{what}: a collective runs inside strategy.run, in every replica")
    start = time.perf_counter()
    dtype = np.dtype(sources[0].dtype)
    weight = dtype.type(strategy._weight_values[ctx.local_index])
    scale = weight if scaled else None
    n = sum(math.prod(s.shape) for s in sources)
    if dispatch.current_tracer() is not None:
        # Tracing runs out-of-place ops to learn their results' shapes; a collective must not
        # run then (one replica may retrace alone), and the graph runs it when it runs.
        return np.zeros(n, dtype) if handle is None else handle.empty((n,), dtype)
    if strategy._nccl is not None and handle is not None:
        # NCCL reads nothing on the host: a device error this replica's kernels found (a bad
        # label) must stop it here, or its gradients would reach the others' update.
        handle.stream.synchronize()
        handle.finished()
        strategy._group.meet(ctx.local_index, what, check or description)
        data = nccl.pack(handle, sources, scale)
        strategy._nccl.all_reduce(ctx.local_index, data, handle.stream)
        if divide_output:
            with handle.activate():
                data /= weight
        strategy._count(ctx, data, start)
        return data
    # The backend the kernel runs on: the replica's, or cpu's (no handle) where the op fell
    # back to the host (complex on opencl), whose sources are then host arrays.
    backend = registry.get_backend(ctx.device.type if handle is not None else "cpu")
    data = np.empty(n, dtype) if handle is None else handle.empty((n,), dtype)
    *views, view = backend.host_views([*sources, data])  # one wait for the device, not one per tensor
    hosts = [(v if v is not None else np.asarray(backend.to_numpy(s))).reshape(-1) for s, v in zip(sources, views)]
    out = view if view is not None else np.empty(n, dtype)
    strategy._group.all_reduce(ctx.local_index, what, check or description, out, sources=hosts, scale=scale)
    if divide_output:  # this replica's own output: no other replica reads it any more
        np.divide(out, weight, out=out)
    if view is None:  # device memory the host cannot see: upload the sum
        data = backend.from_numpy(out, ctx.device.index)
    del view, views, out, hosts  # views of device memory: dropping them hands the buffers back
    strategy._count(ctx, data, start)
    return data


def _all_reduce_grad(ctx: Any, g: Any) -> tuple:
    """The replicas' gradients are combined by the optimizer as a mean weighted by their shares
    ``w`` (so that N replicas equal one device on the whole batch), so the gradient that
    flows back through the all-reduce is its adjoint under that weighting. Replica ``s``'s
    output is ``a_s * sum_r b_r x_r``, with ``b_r = w_r`` where ``scaled`` (a mean) else 1,
    and ``a_s = 1 / w_s`` where ``divide_output`` else 1; its adjoint hands replica ``r``
    ``(b_r / w_r) * sum_s w_s a_s g_s``: the same op with ``scaled = not divide_output`` and
    ``divide_output = not scaled``. A mean's gradient is thus the weighted mean of the output
    gradients, a sum's that divided by the replica's weight; the adjoint of the adjoint is the
    op again (second order). Every replica's backward issues it in the same order, as their
    forwards issued theirs. Sliced back into the sources' shapes."""
    from tensorcore.distribute.buckets import unpack

    attrs = ctx.attrs
    sources = ctx.inputs[:len(ctx.inputs) - attrs["n_after"]]
    flat = dispatch.apply(ALL_REDUCE, (g,), {
        "group": attrs["group"], "what": f"gradient of {attrs['what']}", "n_after": 0,
        "description": (("output gradient", tuple(g.shape), str(g.dtype)),),
        "scaled": not attrs.get("divide_output", False), "divide_output": not attrs["scaled"]})
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
