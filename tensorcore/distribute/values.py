"""Distributed values: per-replica values, the replica context of a thread, mirrored variables.

A replica is one copy of the user's step running on one device, in a thread of its own
(``strategy.run``). What a thread is doing lives in a thread-local :class:`_ThreadState`:
the replica it runs as (inside ``run``) and the strategy whose ``scope()`` it is in. A
:class:`MirroredVariable` reads that state on every access, so the user's single-device code
sees its replica's copy without change.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from tensorcore.autodiff import variable as _variable
from tensorcore.autodiff.variable import Variable
from tensorcore.device import Device
from tensorcore.errors import OpError
from tensorcore.ops import sampling as _sampling
from tensorcore.tensor import Tensor

if TYPE_CHECKING:
    from tensorcore.distribute.strategy import MirroredStrategy


class PerReplica:
    """One value per local replica, in replica order (what ``run`` takes and returns).

    ``sizes`` are the batch sizes of *every* replica of the job (all workers), set by
    ``strategy.split`` and ``strategy.batches``; ``run`` weights the step's reductions by them.
    ``weights`` are the reduction weights of the ``run`` that returned these values.
    """

    __slots__ = ("values", "sizes", "weights")

    def __init__(self, values: Sequence[Any], sizes: Sequence[int] | None = None,
                 weights: Sequence[float] | None = None) -> None:
        self.values = tuple(values)
        self.sizes = None if sizes is None else tuple(int(n) for n in sizes)
        self.weights = None if weights is None else tuple(float(w) for w in weights)

    def __getitem__(self, i: int) -> Any:
        return self.values[i]

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.values)

    def __repr__(self) -> str:
        return f"PerReplica({list(self.values)!r})"


# --- PerReplica values inside the containers a step takes and returns -----------------------


def replica_value(value: Any, i: int) -> Any:
    """Replica ``i``'s view of an argument: its value of a PerReplica, inside containers too."""
    if isinstance(value, PerReplica):
        return value.values[i]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(replica_value(v, i) for v in value)
    if isinstance(value, list):
        return [replica_value(v, i) for v in value]
    if isinstance(value, dict):
        return {k: replica_value(v, i) for k, v in value.items()}
    return value


def split_sizes(value: Any) -> tuple[int, ...] | None:
    """The batch sizes of the first split PerReplica in ``value``, searched as :func:`replica_value`
    descends (tuples, lists, dicts), or None."""
    if isinstance(value, PerReplica):
        return value.sizes
    if isinstance(value, dict):
        value = list(value.values())
    elif not isinstance(value, (list, tuple)) or hasattr(value, "_fields"):
        return None
    for v in value:
        sizes = split_sizes(v)
        if sizes is not None:
            return sizes
    return None


def check_replica_counts(value: Any, replicas: int, where: str) -> None:
    """Raise unless every PerReplica in ``value`` (descending as :func:`replica_value` does)
    holds one value per local replica."""
    if isinstance(value, PerReplica):
        if len(value.values) != replicas:
            count = len(value.values)
            raise ValueError(f"{where}: a PerReplica holds {count} value{'s' * (count != 1)}, but this process has "
                             f"{replicas} replicas; make it with strategy.split or strategy.batches, or give one "
                             f"value per replica")
    elif _is_container(value):
        for v in value.values() if isinstance(value, dict) else value:
            check_replica_counts(v, replicas, where)


def _is_container(value: Any) -> bool:
    """Whether ``run`` descends into ``value`` (a tuple that is not a named tuple, a list, a dict)."""
    return (isinstance(value, (tuple, list)) and not hasattr(value, "_fields")) or isinstance(value, dict)


def _structure(value: Any) -> str:
    """A short description of a step's result's structure, for errors."""
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return f"a tuple of {len(value)}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return f"a dict with keys {sorted(map(str, value))}"
    return f"one {type(value).__name__}"


def stack_results(results: list[Any], weights: Sequence[float], names: Sequence[str] = ()) -> Any:
    """Per-replica results as one structure of PerReplica leaves (tuples, lists, dicts kept);
    every replica must return the same structure (``names`` label the replicas in the error)."""
    first = results[0]
    container = _is_container(first)
    for i, r in enumerate(results[1:], 1):
        if container:
            same = type(r) is type(first) and len(r) == len(first) and (not isinstance(first, dict) or set(r) == set(first))
        else:  # leaves of any kind (a tensor, None, a number) stack as they are
            same = not _is_container(r)
        if not same:
            this, that = (f"replica {j}" + (f" ({names[j]})" if names else "") for j in (i, 0))
            raise TypeError(f"run: {this} returned {_structure(r)} but {that} returned {_structure(first)}; "
                            f"every replica must return the same structure")
    if isinstance(first, tuple) and not hasattr(first, "_fields"):
        return tuple(stack_results([r[k] for r in results], weights, names) for k in range(len(first)))
    if isinstance(first, list):
        return [stack_results([r[k] for r in results], weights, names) for k in range(len(first))]
    if isinstance(first, dict):
        return {k: stack_results([r[k] for r in results], weights, names) for k in first}
    return PerReplica(results, weights=weights)


class ReplicaContext:
    """Where one replica runs: ``tc.distribute.get_replica_context()`` inside ``strategy.run``.

    ``replica_id`` counts the replicas of the whole job (all workers); ``local_index`` those
    of this process. ``weights`` are every replica's share of this step's global batch.
    """

    def __init__(self, strategy: MirroredStrategy, local_index: int, weights: Sequence[float],
                 in_run: bool = False) -> None:
        self.strategy, self.local_index, self.weights = strategy, local_index, tuple(weights)
        self.replica_id = strategy._first_replica_id + local_index
        self.device: Device = strategy.devices[local_index]
        # Where an eager optimizer step stands: None, "updating" (the all-reduce is done, the
        # update is being applied) or "updated". A failure while "updating" is repaired by run.
        self.phase: str | None = None
        self.in_run = in_run  # True in strategy.run's steps (and their tracing); False for setup (for_each_replica)

    @property
    def num_replicas_in_sync(self) -> int:
        """The number of replicas of the job."""
        return self.strategy.num_replicas_in_sync

    def all_reduce(self, op: str, tensors: Any) -> Any:
        """Combine ``tensors`` (one tensor, or a list or tuple of them) across all replicas;
        every replica must call it with tensors of the same shapes and dtypes. ``"sum"`` adds
        them; ``"mean"`` weights each replica by its share of the global batch (a plain mean
        when shares are equal). Returns the same structure, on this replica's device."""
        if _state.replica is not self:
            raise RuntimeError("this replica context is not the one running in this thread (its strategy.run has "
                               "ended, or it was passed to another thread); call get_replica_context() inside the step")
        return self.strategy._all_reduce_in_replica(self, op, tensors)

    def __repr__(self) -> str:
        return f"ReplicaContext(replica_id={self.replica_id}, device={self.device})"


class _ThreadState(threading.local):
    replica: ReplicaContext | None = None  # set inside strategy.run, in the replica's thread
    scope: MirroredStrategy | None = None  # set by `with strategy.scope():`


_state = _ThreadState()


def get_replica_context() -> ReplicaContext | None:
    """The replica this thread runs as inside ``strategy.run``, else None (as TensorFlow's
    ``tf.distribute.get_replica_context()`` in cross-replica context)."""
    return _state.replica


def current_scope() -> MirroredStrategy | None:
    """The strategy whose ``scope()`` this thread is in, or None."""
    return _state.scope


@contextmanager
def as_replica(context: ReplicaContext | None) -> Iterator[None]:
    """Run the block as ``context``'s replica in this thread (mirrored values read its copies)."""
    outer = _state.replica
    _state.replica = context
    try:
        yield
    finally:
        _state.replica = outer


@contextmanager
def in_scope(strategy: MirroredStrategy) -> Iterator[None]:
    """``strategy.scope()``: Variables created in the block are mirrored over its replicas."""
    outer = _state.scope
    if outer is not None and outer is not strategy:
        raise RuntimeError("a strategy's scope() is already open in this thread; strategies cannot be nested")
    _state.scope = strategy
    try:
        yield
    finally:
        _state.scope = outer


@contextmanager
def plain_variables() -> Iterator[None]:
    """``tc.Variable`` makes plain variables in the block, even inside a strategy's scope (a
    mirrored variable's own copies, a replica's private tensors)."""
    outer = _state.scope
    _state.scope = None
    try:
        yield
    finally:
        _state.scope = outer


def _replica_generator() -> Any:
    """The random generator of the replica this thread runs as (streams.py), or None."""
    ctx = _state.replica
    return None if ctx is None else ctx.strategy._streams.of(ctx.local_index)


def _replica_here() -> tuple[Any, bool] | None:
    """(this thread's replica as :func:`_replica_key` names it, whether inside strategy.run), or None."""
    ctx = _state.replica
    return None if ctx is None else (_replica_key(), ctx.in_run)


def _variable_class() -> type | None:
    return MirroredVariable if _state.scope is not None else None


def _local_index(strategy: MirroredStrategy) -> int:
    ctx = _state.replica
    return ctx.local_index if ctx is not None and ctx.strategy is strategy else 0


def _replica_slot(name: str) -> property:
    """A property that reads and writes slot ``name`` of this thread's replica's copy."""

    def get(self: MirroredVariable) -> Any:
        return getattr(self._copies[_local_index(self._strategy)], name)

    def put(self: MirroredVariable, value: Any) -> None:
        setattr(self._copies[_local_index(self._strategy)], name, value)

    return property(get, put)


class MirroredVariable(Variable):
    """A Variable with one copy per replica of a strategy, initialised identically.

    Inside ``strategy.run`` it reads (and writes) its replica's copy; elsewhere it reads as the
    primary copy (replica 0), and ``assign``/``assign_add``/``assign_sub`` write every copy.
    Created by ``tc.Variable(...)`` (and so by every layer) inside ``strategy.scope()``; a
    ``device=`` argument is ignored there, since the copies live on the replicas' devices.
    """

    __slots__ = ("_copies", "_strategy")

    def __init__(self, initial_value: Any, trainable: bool = True, name: str | None = None, dtype: Any = None,
                 device: Any = None) -> None:
        from tensorcore.ops.creation import asarray, from_host

        strategy = _state.scope
        if strategy is None:
            raise RuntimeError("a MirroredVariable is created inside `with strategy.scope():` (as tc.Variable)")
        if _state.replica is not None and _state.replica.in_run:  # each replica would make a variable of its own
            raise RuntimeError("a mirrored variable is created inside strategy.run (a tc.Variable in strategy.scope(), "
                               "inside the step): each replica would make and train its own; create the model and "
                               "optimizer once, in `with strategy.scope():` before strategy.run")
        value = asarray(initial_value, dtype=dtype)
        if trainable and value.dtype.kind != "f":
            raise OpError(f"a trainable Variable must be floating point, got {value.dtype}; pass trainable=False")
        host = strategy._initial_value(np.array(value.numpy()))  # multi-worker: rank 0's value
        self._strategy = strategy
        with plain_variables():
            self._copies = [Variable(from_host(host.copy(), dev), trainable=trainable, name=name) for dev in strategy.devices]
        self.trainable, self.name = trainable, name or "Variable"
        strategy._track(self)

    # The tensor slots read and write the copy of the replica running in this thread, so that
    # dispatch, tapes and optimizers use a mirrored variable exactly as a plain one.
    _data = _replica_slot("_data")
    _device = _replica_slot("_device")
    _version = _replica_slot("_version")

    @property
    def copies(self) -> tuple[Variable, ...]:
        """This process's copies, one per local replica."""
        return tuple(self._copies)

    @property
    def strategy(self) -> MirroredStrategy:
        """The strategy this variable is mirrored over."""
        return self._strategy

    def _update(self, op_name: str, value: Any) -> Variable:
        ctx = _state.replica
        if ctx is not None and ctx.strategy is self._strategy:
            return super()._update(op_name, value)  # inside run: this replica's copy
        for i, copy in enumerate(self._copies):  # outside run: every copy
            local = value.to_device(copy.device) if isinstance(value, Tensor) else value
            with as_replica(self._strategy._context(i)):
                super()._update(op_name, local)
        return self

    def __deepcopy__(self, memo: dict) -> MirroredVariable:
        """A new mirrored variable over the same strategy, with a copy of every replica's value."""
        import copy

        copied = object.__new__(type(self))
        copied._strategy, copied.trainable, copied.name = self._strategy, self.trainable, self.name
        copied._copies = [copy.deepcopy(c, memo) for c in self._copies]
        self._strategy._track(copied)
        return copied

    def move_to_device(self, device: Any) -> Variable:
        """Refused: a mirrored variable lives on its strategy's devices."""
        raise RuntimeError(f"mirrored variable {self.name!r} lives on {[str(d) for d in self._strategy.devices]} "
                           f"(one copy per replica) and cannot move to {device}")

    def __repr__(self) -> str:
        return f"MirroredVariable({self.name!r}, {self.dtype}{list(self.shape)}, on {[str(c.device) for c in self._copies]})"


def _replica_key() -> tuple[int, int] | None:
    ctx = _state.replica
    return None if ctx is None else (id(ctx.strategy), ctx.local_index)


_variable.variable_class_hook = _variable_class
_variable.replica_hook = _replica_here
_sampling.replica_generator_hook = _replica_generator
# The module, not the package's `function` decorator of the same name.
importlib.import_module("tensorcore.graph.function").cache_namespace = _replica_key
