"""``tensorcore.distribute``: data-parallel training over several devices and processes.

- :class:`MirroredStrategy`: one replica per local device, any mix of kinds, in one process.
- :class:`MultiWorkerMirroredStrategy`: the same over MPI processes (``mpiexec -n N``).

The user's single-device step runs unchanged inside ``strategy.run``; see ``docs/distributed.md``.
"""

from tensorcore.distribute.collective import (
    CollectiveMismatchError,
    CollectiveTimeoutError,
    ReplicaAborted,
)
from tensorcore.distribute.devices import launched_by_mpi
from tensorcore.distribute.strategy import MirroredStrategy, OutOfSyncError
from tensorcore.distribute.values import (
    MirroredVariable,
    PerReplica,
    ReplicaContext,
    get_replica_context,
)

__all__ = [
    "MirroredStrategy",
    "MultiWorkerMirroredStrategy",
    "PerReplica",
    "ReplicaContext",
    "MirroredVariable",
    "get_replica_context",
    "CollectiveTimeoutError",
    "CollectiveMismatchError",
    "ReplicaAborted",
    "OutOfSyncError",
    "launched_by_mpi",
]


def __getattr__(name: str):  # MPI is imported only by those who ask for it
    if name == "MultiWorkerMirroredStrategy":
        from tensorcore.distribute.multi_worker import MultiWorkerMirroredStrategy

        return MultiWorkerMirroredStrategy
    raise AttributeError(f"module 'tensorcore.distribute' has no attribute {name!r}")
