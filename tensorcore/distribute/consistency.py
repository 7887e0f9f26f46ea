"""What keeps mirrored replicas identical, and what proves it.

Every trainable mirrored variable, optimizer state tensor and optimizer step counter must be
bitwise identical on every replica (and process) after every step: the gradients are
all-reduced in one order and every replica applies the same update with the same kernels.
:func:`check_in_sync` proves it; :func:`repair_half_updated` restores it after a replica
failed in the middle of applying an update the others applied.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from tensorcore import dispatch
from tensorcore.ops.optim_updates import ASSIGN
from tensorcore.tensor import Tensor


class OutOfSyncError(RuntimeError):
    """Mirrored copies that should be bitwise identical are not (``check_in_sync``)."""


def synced_tensors(strategy: Any, trainable_only: bool = True) -> Iterator[tuple[str, list[Tensor]]]:
    """(name, copies) of every mirrored variable of ``strategy`` (trainable ones only, by
    default: what must stay identical), optimizer state tensor and step counter, in creation
    order (the same in every process)."""
    for ref in strategy._variables:
        v = ref()
        if v is not None and (v.trainable or not trainable_only):
            yield f"variable {v.name!r}", list(v.copies)
    for ref in strategy._optimizers:
        opt = ref()
        if opt is None:
            continue
        kind = type(opt).__name__
        for p, (param, states) in enumerate(zip(opt.params, zip(*opt._replica_states))):
            for key, value in states[0].items():
                if isinstance(value, Tensor):
                    yield f"{kind} state {key!r} of {param.name!r} (parameter {p})", [s[key] for s in states]
        # Each replica's step counters, one per device holding a parameter, made in the same
        # order on every replica (they feed Adam's bias correction and a callable lr).
        for n, counters in enumerate(zip(*(list(steps.values()) for steps in opt._replica_steps))):
            yield f"{kind} step counter {n}", list(counters)


def check_in_sync(strategy: Any) -> None:
    """Raise :class:`OutOfSyncError` naming the first tensor of :func:`synced_tensors` that
    differs between two replicas (or, through ``strategy._cross_check``, two processes)."""
    devices = strategy.devices
    names, primaries = [], []
    for name, copies in synced_tensors(strategy):
        hosts = [np.ascontiguousarray(c.numpy()) for c in copies]
        if len({h.dtype for h in hosts}) > 1:  # a step counter is float32 on a device without float64
            hosts = [h.astype(np.float64) for h in hosts]
        for i in range(1, len(hosts)):
            if hosts[i].tobytes() != hosts[0].tobytes():
                diff = np.max(np.abs(hosts[i].astype(np.float64) - hosts[0].astype(np.float64)))
                raise OutOfSyncError(f"{name} differs between replica 0 ({devices[0]}) and replica {i} "
                                     f"({devices[i]}): max |difference| {diff:.3g}")
        names.append(name)
        primaries.append(hosts[0])
    strategy._cross_check(names, primaries)


def repair_half_updated(strategy: Any, phases: list[str], errors: list[BaseException | None],
                        exc: BaseException) -> None:
    """After a failed step (``phases[i]``: how far replica ``i`` got in applying the update):
    a replica that failed while applying the (all-reduced, so identical) update gets every
    mirrored variable, optimizer state and step counter from a replica that applied it, so no
    replica is left half-updated; ``exc`` gets a note saying what happened. Eager steps only:
    a traced step's update runs inside its graph, which marks no phases."""
    broken = [i for i, e in enumerate(errors) if e is not None and phases[i] == "updating"]
    if not broken:
        return
    done = [i for i, phase in enumerate(phases) if phase == "updated"]
    note = getattr(exc, "add_note", lambda _: None)
    if not done:
        note(f"replica(s) {broken} failed while applying the optimizer's update and none finished it: the "
             "replicas are out of sync now (check_in_sync says where); restore them, e.g. from a checkpoint")
        return
    from tensorcore.ops.creation import from_host

    source, devices = done[0], strategy.devices
    for _, copies in synced_tensors(strategy, trainable_only=False):
        host = np.array(copies[source].numpy())
        for i in broken:
            dispatch.apply_inplace(ASSIGN, copies[i], (from_host(host.copy(), devices[i]),))
    note(f"replica(s) {broken} failed while applying the optimizer's update; they were given replica {source}'s "
         "variables and optimizer state, so every replica holds the updated values")
