"""MirroredStrategy: data-parallel training over the devices of one process, of any kinds.

One replica per device, each in its own thread (``replicas.py``). Variables created in
``scope()`` are mirrored (``values.MirroredVariable``); an optimizer over mirrored variables
all-reduces the gradients in ``step()`` (``reduce_gradients``) in fused buckets through the
in-process collective (``collective.py``: each replica sums a chunk, in replica order), so every
replica applies the same bits and the replicas stay bitwise identical.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from tensorcore import dispatch
from tensorcore.autodiff import tape
from tensorcore.device import Device, thread_default
from tensorcore.distribute import buckets, collective_op, consistency, nccl, replicated_graph
from tensorcore.distribute.collective import Description, LocalGroup, ReplicaAborted
from tensorcore.distribute.collective_op import ALL_REDUCE
from tensorcore.distribute.consistency import OutOfSyncError
from tensorcore.distribute.devices import default_devices, launched_by_mpi, parse_devices
from tensorcore.distribute.inputs import BatchSplitter, largest_remainder
from tensorcore.distribute.replicas import ReplicaThreads
from tensorcore.distribute.streams import ReplicaStreams
from tensorcore.distribute.values import (
    MirroredVariable,
    PerReplica,
    ReplicaContext,
    _local_index,
    _state,
    as_replica,
    check_replica_counts,
    in_scope,
    replica_value,
    split_sizes,
    stack_results,
)
from tensorcore.errors import OpError
from tensorcore.graph import ir, placer
from tensorcore.graph.function import Function
from tensorcore.tensor import Tensor

# The device choice (devices.py) and the input side (inputs.py) live apart; their public
# names stay importable from here, where they were first defined.
__all__ = ["MirroredStrategy", "OutOfSyncError", "default_devices", "launched_by_mpi", "largest_remainder",
           "parse_devices"]


class MirroredStrategy:
    """Data parallelism over local devices: ``MirroredStrategy(["cpu", "opencl:0"])``.

    ``devices``: a list or a comma-separated string (default :func:`default_devices`).
    ``weights``: each replica's share of a global batch (default equal), so a slow device can
    take a smaller part. See ``docs/distributed.md``.
    """

    bucket_bytes = 32 * 2**20  # gradients travel in flat buckets of at most this many bytes
    _multi_process = False  # whether collectives go on to other processes (_cross_sum)

    def __init__(self, devices: str | Sequence[str | Device] | None = None, weights: Sequence[float] | None = None) -> None:
        self._devices = default_devices() if devices is None else parse_devices(devices)
        self._weights = self._check_weights(weights, len(self._devices))
        self._first_replica_id = 0
        self._setup_cross_process()
        self._streams = ReplicaStreams(self._first_replica_id, len(self._devices))
        self._inputs = BatchSplitter(self._devices, self._first_replica_id, self._all_weights,
                                     agree=self._agree if self._multi_process else None)
        names = [str(d) for d in self._devices]
        self._group = LocalGroup(names, cross=self._cross_sum if self._multi_process else None,
                                 cross_check=self._cross_meet if self._multi_process else None)
        self._nccl = self._start_nccl()
        # The threads must not keep the strategy alive: they reach it only weakly, and stop
        # once it is garbage (a notebook makes many strategies).
        failed = weakref.WeakMethod(self._replica_failed)
        self._threads = ReplicaThreads(names, on_failure=lambda i, exc: _call_if_alive(failed, i, exc), group=self._group)
        weakref.finalize(self, self._threads.stop)
        self._group_id = collective_op.register(self)
        # Each replica's share of the step in progress, which its all-reduce kernels read when
        # they run (so a traced step uses every step's own shares).
        self._weight_values: list[float] = [1.0] * len(self._devices)
        # Weak references in creation order: every process walks them in the same order.
        self._variables: list[weakref.ref] = []
        self._optimizers: list[weakref.ref] = []
        self.reset_collective_stats()

    # --- hooks that MultiWorkerMirroredStrategy fills in (one process: nothing to do) ----
    def _setup_cross_process(self) -> None:
        self._all_weights = list(self._weights)

    def _cross_sum(self, total: np.ndarray, what: str, description: Description) -> np.ndarray:
        return total

    def _cross_meet(self, what: str, description: Description) -> None:
        """Check a collective's description against the other processes (no data)."""

    def _initial_value(self, host: np.ndarray) -> np.ndarray:
        return host

    def _agree(self, what: str, numbers: Sequence[int]) -> None:
        """Raise unless every process passed the same ``numbers`` (multi-worker only)."""

    def _start_nccl(self) -> Any:
        return nccl.start(self._devices, 0, len(self._devices), None)

    def _cross_check(self, names: list[str], hosts: list[np.ndarray]) -> None:
        """Compare this process's values with the other processes' (multi-worker only)."""

    # --- one writer: what checkpoints and summaries use ---------------------------------
    @property
    def is_chief(self) -> bool:
        """Whether this process writes files for the job (one process: always)."""
        return True

    def broadcast_bytes(self, payload: bytes | None) -> bytes | None:
        """The chief's ``payload`` on every process (every process must call it; one process: itself)."""
        return payload

    # --- what the strategy is ---------------------------------------------------------
    @property
    def devices(self) -> tuple[Device, ...]:
        """This process's replica devices, in replica order."""
        return tuple(self._devices)

    @property
    def num_replicas_in_sync(self) -> int:
        """The number of replicas of the whole job."""
        return len(self._all_weights)

    @property
    def weights(self) -> tuple[float, ...]:
        """Every replica's share of a global batch (summing to 1), in replica order."""
        total = sum(self._all_weights)
        return tuple(w / total for w in self._all_weights)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(devices={[str(d) for d in self._devices]}, weights={list(self.weights)})"

    @staticmethod
    def _check_weights(weights: Sequence[float] | None, n: int) -> list[float]:
        if weights is None:
            return [1.0] * n
        try:
            weights = [float(w) for w in weights]
        except (TypeError, ValueError):
            raise TypeError(f"weights: expected {n} positive numbers (one per replica), got {weights!r}") from None
        if len(weights) != n or not all(w > 0 and np.isfinite(w) for w in weights) or not np.isfinite(sum(weights)):
            raise ValueError(f"weights: expected {n} positive numbers (one per replica) with a finite sum, got {weights}")
        return weights

    # --- scope and replicas -------------------------------------------------------------
    @contextmanager
    def scope(self) -> Iterator[MirroredStrategy]:
        """Inside the block, ``tc.Variable`` (and so every layer and optimizer state) is mirrored."""
        with in_scope(self):
            yield self

    def _track(self, variable: MirroredVariable) -> None:
        self._variables.append(weakref.ref(variable))

    def _track_optimizer(self, optimizer: Any) -> None:
        self._optimizers.append(weakref.ref(optimizer))

    def local_index(self) -> int:
        """The local replica this thread runs as inside ``run`` (0 elsewhere: the primary)."""
        return _local_index(self)

    def _context(self, local_index: int, weights: Sequence[float] | None = None, in_run: bool = False) -> ReplicaContext:
        return ReplicaContext(self, local_index, self.weights if weights is None else weights, in_run)

    def for_each_replica(self, fn: Callable[[], Any]) -> list[Any]:
        """``fn()`` once per local replica in this thread, as that replica (for setup such as
        an optimizer's state): mirrored variables read that replica's copy."""
        out = []
        for i, dev in enumerate(self._devices):
            with as_replica(self._context(i)), thread_default(dev):
                out.append(fn())
        return out

    def run(self, fn: Callable[..., Any], args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None) -> Any:
        """Run ``fn(*args, **kwargs)`` once per replica, in the replica's thread, with its device as
        the default device and its value of every :class:`PerReplica` argument. Returns the
        per-replica results (a tuple, list or dict of them keeps its structure)."""
        kwargs = kwargs or {}
        if _state.replica is not None:
            raise RuntimeError("strategy.run was called inside strategy.run; call the function directly instead")
        if dispatch.current_tracer() is not None:
            # The replicas would run now, once, in their threads, and the graph would record
            # none of it: every later call of the function would train nothing.
            raise RuntimeError("strategy.run is called inside a tc.function being traced; trace the step that "
                               "strategy.run runs instead: strategy.run(tc.function(step), args)")
        check_replica_counts((tuple(args), kwargs), len(self._devices), "run")
        weights = self._step_weights(args, kwargs)

        contexts = [self._context(i, weights, in_run=True) for i in range(len(self._devices))]

        def task(i: int) -> Any:
            ctx = contexts[i]
            with as_replica(ctx), thread_default(ctx.device):
                self._weight_values[i] = weights[ctx.replica_id]
                return fn(*replica_value(args, i), **replica_value(kwargs, i))

        # One replica runs in this thread unless this thread records a tape: the replica's ops
        # must not land on the caller's tape.
        inline = len(contexts) == 1 and not tape.recording_here()
        # The replicas' random streams are refreshed under the threads' lock, once no replica
        # of an earlier (interrupted) step can still draw from them.
        results, errors = self._threads.run(task, inline=inline, before=self._streams.refresh)  # resets the group after a failure
        if any(e is not None for e in errors):
            exc = _first_error(errors, self._devices)
            consistency.repair_half_updated(self, [c.phase for c in contexts], errors, exc)
            raise exc
        return stack_results(results, weights, [str(d) for d in self._devices])

    def graph(self, fn: Any, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None) -> ir.Graph:
        """The replicated step that ``run(fn, args, kwargs)`` runs, ``fn`` a ``tc.function``, as
        one graph: every replica's partition on its device, joined at the all-reduce nodes
        (``graph.collectives``); traced now where ``run`` has not traced it yet. Export it with
        ``to_dot()`` or ``to_tensorboard(logdir)``."""
        if not isinstance(fn, Function):
            raise TypeError(f"strategy.graph takes a tc.function (the step strategy.run runs), not {type(fn).__name__}")
        kwargs = kwargs or {}
        weights = self._step_weights(args, kwargs)
        partitions = []
        self._streams.refresh()
        for i, dev in enumerate(self._devices):  # traced as run's threads trace: same cache keys
            # the graphs run will run: its rules apply while tracing them
            with as_replica(self._context(i, weights, in_run=True)), thread_default(dev):
                partitions.append(fn.graph(*replica_value(args, i), **replica_value(kwargs, i)))
        return replicated_graph.merge(getattr(fn.fn, "__qualname__", "function"), partitions)

    def placement_report(self, fn: Any, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None) -> str:
        """Every node of the replicated step (:meth:`graph`), its device and why, then the
        partitions and the all-reduces that join them, as text to print."""
        return placer.report(self.graph(fn, args, kwargs))

    @contextmanager
    def applying_update(self) -> Iterator[None]:
        """Marks an optimizer applying an all-reduced update in this replica (see ``run``); not
        while tracing, where nothing is applied (a traced step's update runs in its graph,
        which marks no progress: ``docs/distributed.md``)."""
        ctx = _state.replica
        if dispatch.current_tracer() is not None:
            yield
            return
        ctx.phase = "updating"
        yield
        ctx.phase = "updated"

    def _replica_failed(self, index: int, exc: BaseException) -> None:
        if not isinstance(exc, ReplicaAborted):
            self._group.abort(f"replica {index} ({self._devices[index]}) failed: {type(exc).__name__}: {exc}")

    def _step_weights(self, args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[float, ...]:
        """Every replica's weight in this step: its share of the rows of the first split
        argument (inside tuples, lists and dicts too, as ``run`` hands them out), else the
        nominal weights."""
        sizes = split_sizes((tuple(args), kwargs))
        if sizes is None:
            return self.weights
        total = sum(sizes)
        if len(sizes) != self.num_replicas_in_sync or min(sizes) <= 0:
            raise ValueError(f"run: a PerReplica argument's batch sizes {list(sizes)} do not fit the "
                             f"{self.num_replicas_in_sync} replicas (one positive count of rows each: a replica "
                             f"with no rows has no share of the mean); make it with strategy.split or strategy.batches")
        return tuple(n / total for n in sizes)

    # --- input (inputs.py) ---------------------------------------------------------------
    def split(self, *arrays: Any) -> Any:
        """Split global batches (NumPy arrays or tensors, same number of rows) along axis 0 by
        the replicas' shares; each shard is placed on its replica's device. Returns one
        :class:`PerReplica` per array (a tuple for several). Across processes it is a
        collective (every rank calls it with the same global batch: the row counts are compared)."""
        return self._inputs.split(*arrays)

    def batches(self, arrays: Sequence[Any], global_batch_size: int, shuffle: bool = True, seed: int = 0,
                drop_last: bool = False) -> Iterator[tuple[PerReplica, ...]]:
        """Iterate over a dataset (host arrays with the same number of rows) in global batches,
        yielding one :class:`PerReplica` per array. Every process draws the same order from
        ``seed``. A last batch too small to give every replica a row is dropped. Across
        processes every rank iterates it alike: when iteration starts the ranks compare the
        dataset's rows, the batch size, ``shuffle``, ``seed`` and ``drop_last`` (a collective)."""
        return self._inputs.batches(arrays, global_batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last)

    # --- reductions --------------------------------------------------------------------
    def reduce(self, op: str, value: Any) -> Tensor:
        """Combine per-replica tensors (what ``run`` returned) into one tensor on the default
        device: ``"sum"``, or ``"mean"`` weighted by each replica's share of the step's batch."""
        from tensorcore.ops.creation import from_host

        scale = _check_op(op)
        if not isinstance(value, PerReplica):
            raise TypeError(f"reduce takes the PerReplica value that strategy.run returned, not {type(value).__name__}")
        check_replica_counts(value, len(self._devices), "reduce")
        weights = value.weights or self.weights
        hosts = []
        for i, v in enumerate(value.values):
            if not isinstance(v, Tensor):
                raise TypeError(f"reduce: replica {i}'s value is a {type(v).__name__}, not a tensor")
            h = np.asarray(v.numpy())
            hosts.append(np.asarray(h * weights[self._first_replica_id + i]) if scale else h)
        description = tuple(("value", tuple(h.shape), str(h.dtype)) for h in hosts[:1])
        for i, h in enumerate(hosts[1:], 1):
            if h.shape != hosts[0].shape or h.dtype != hosts[0].dtype:
                raise OpError(f"reduce: replica {i}'s value is {h.dtype}{list(h.shape)} but replica 0's is "
                              f"{hosts[0].dtype}{list(hosts[0].shape)}")
        total = np.array(hosts[0], copy=True)
        for h in hosts[1:]:
            total += h
        return from_host(self._cross_sum(np.require(total, requirements='C'), f"reduce({op!r})", description))

    def _all_reduce_in_replica(self, ctx: ReplicaContext, op: str, tensors: Any) -> Any:
        mean = _check_op(op)
        items = list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]
        for i, t in enumerate(items):
            if not isinstance(t, Tensor):
                raise TypeError(f"all_reduce: item {i} is a {type(t).__name__}, not a tensor")
        reduced = self._reduce(ctx, f"all_reduce({op!r})", items, [f"tensors[{i}]" for i in range(len(items))], mean)
        if isinstance(tensors, (list, tuple)):
            return type(tensors)(reduced)
        return reduced[0]

    def reduce_gradients(self, grads: Sequence[Any], params: Sequence[Any]) -> list[Any]:
        """The gradients of every replica combined as the mean weighted by each replica's share
        of the step's global batch (so N replicas equal one device on the whole batch), in fused
        buckets. Called by an optimizer over mirrored variables, inside ``run``."""
        ctx = _state.replica
        if ctx is None:
            raise RuntimeError("an optimizer created in strategy.scope() steps inside strategy.run, where it "
                               "all-reduces the gradients of every replica")
        if ctx.strategy is not self:
            raise RuntimeError("this optimizer's variables are mirrored by another strategy than the one whose run "
                               "this is; step it inside its own strategy's run")
        present = [i for i, g in enumerate(grads) if g is not None]
        names = [f"gradient of {params[i].name!r} (parameter {i})" for i in present]
        reduced = self._reduce(ctx, "gradient all-reduce", [grads[i] for i in present], names, mean=True, backward=True)
        out = list(grads)
        for i, g in zip(present, reduced):
            out[i] = g
        return out

    def _reduce(self, ctx: ReplicaContext, what: str, tensors: list[Tensor], names: list[str], mean: bool,
                backward: bool = False) -> list[Tensor]:
        """Replica ``ctx``'s part of summing ``tensors`` over every replica (``mean``: each
        replica's weighted by its share of the step's batch), one ``all_reduce`` op per bucket
        (so that it is traced like any op), each bucket's output chained to the next;
        ``backward``: the buckets filled from the last tensor (gradients, see ``plan_backward``)."""
        if mean:  # checked with one replica too, so that a script fails alike on one device and on several
            for t in tensors:
                if np.dtype(t.dtype).kind != "f":
                    raise TypeError(f"{what}: a weighted mean needs floating-point tensors, got {np.dtype(t.dtype)}")
        if self.num_replicas_in_sync == 1:
            return list(tensors)
        out: list[Any] = [None] * len(tensors)
        previous: tuple = ()
        planner = buckets.plan_backward if backward else buckets.plan
        # The first bucket's meeting checks every tensor of the call, not only its own: replicas
        # whose lists differ in count or dtype plan different buckets, and would otherwise meet
        # at different collectives (a timeout, not an error naming the tensor).
        whole = tuple((name, tuple(t.shape), str(t.dtype)) for name, t in zip(names, tensors))
        for b, bucket in enumerate(planner([(t.shape, t.dtype) for t in tensors], self.bucket_bytes)):
            sources = tuple(tensors[i] if tensors[i].device == ctx.device else tensors[i].to_device(ctx.device)
                            for i in bucket)
            description = tuple((names[i], tuple(tensors[i].shape), str(tensors[i].dtype)) for i in bucket)
            attrs = {"group": self._group_id, "what": f"{what}, bucket {b}", "description": description,
                     "scaled": mean, "n_after": len(previous), "check": whole if b == 0 else ()}
            flat = dispatch.apply(ALL_REDUCE, sources + previous, attrs)
            previous = (flat,)
            for i, t in zip(bucket, buckets.unpack(flat, [tensors[i].shape for i in bucket])):
                out[i] = t
        return out

    def _count(self, ctx: ReplicaContext, data: Any, start: float) -> None:
        if ctx.local_index == 0:
            self._stats["bytes"] += int(np.prod(data.shape)) * np.dtype(data.dtype).itemsize
            self._stats["collectives"] += 1
            self._stats["seconds"] += time.perf_counter() - start

    def collective_stats(self) -> dict[str, float]:
        """What the collectives inside ``run`` cost so far, seen from this process's first
        replica: ``collectives`` (buckets), ``bytes`` (all-reduced, one replica's payload) and
        ``seconds`` (inside the collectives: the wait for the other replicas and processes, the
        check, the sum and the copy back; packing and unpacking the buckets are not counted)."""
        return dict(self._stats)

    def reset_collective_stats(self) -> None:
        """Start counting :meth:`collective_stats` from zero."""
        self._stats = {"collectives": 0, "bytes": 0, "seconds": 0.0}

    # --- consistency (consistency.py) ----------------------------------------------------
    def check_in_sync(self) -> None:
        """Raise :class:`OutOfSyncError` unless every trainable mirrored variable, optimizer
        state tensor and step counter is bitwise identical on every replica (and every process)."""
        consistency.check_in_sync(self)

    def close(self) -> None:
        """Stop the replica threads (optional: they are daemon threads)."""
        self._threads.close()


def _call_if_alive(method: weakref.WeakMethod, *args: Any) -> None:
    bound = method()
    if bound is not None:
        bound(*args)


def _check_op(op: str) -> bool:
    """Whether ``op`` weights by shares ("mean") or not ("sum"); anything else is an error."""
    if op not in ("sum", "mean"):
        raise ValueError(f"reduce op must be 'sum' or 'mean', got {op!r}")
    return op == "mean"


def _first_error(errors: list[BaseException | None], devices: list[Device]) -> BaseException:
    """The error that stopped the step: the first one that is not another replica's abort."""
    indexed = [(i, e) for i, e in enumerate(errors) if e is not None]
    i, exc = next(((i, e) for i, e in indexed if not isinstance(e, ReplicaAborted)), indexed[0])
    if hasattr(exc, "add_note"):
        exc.add_note(f"(raised in replica {i}, on {devices[i]}, inside strategy.run)")
    return exc
