"""MultiWorkerMirroredStrategy: MirroredStrategy over MPI processes (``mpiexec -n N``).

Each process (a *worker*, one MPI rank) runs the same program with its own local replicas;
a collective first sums over the local replicas in the process, then over the processes
with MPI (hierarchical), so one MPI message per bucket leaves each process. Variables are
broadcast from rank 0 as they are created, so every worker starts from the same values.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from tensorcore import registry
from tensorcore.device import Device
from tensorcore.distribute import nccl
from tensorcore.distribute.collective import Description
from tensorcore.distribute.devices import default_devices
from tensorcore.distribute.mpi import MPIComm, install_abort_on_error
from tensorcore.distribute.strategy import MirroredStrategy, OutOfSyncError


class MultiWorkerMirroredStrategy(MirroredStrategy):
    """Data parallelism over MPI processes, each with one or more local devices.

    ``devices``: this worker's replica devices (default: ``TENSORCORE_DEVICES``, else one
    accelerator per process chosen by the node-local rank, else cpu). ``weights``: this
    worker's replicas' shares (default 1 each). Needs ``pip install "tensorcore[mpi]"``.
    """

    _multi_process = True

    def __init__(self, devices: str | Sequence[str | Device] | None = None, weights: Sequence[float] | None = None) -> None:
        try:
            self._comm = MPIComm()
        except ImportError as exc:
            raise ImportError("MultiWorkerMirroredStrategy needs mpi4py and an MPI library: "
                              "pip install \"tensorcore[mpi]\" (mpi4py and the mpich wheel)") from exc
        install_abort_on_error(self._comm)
        # A checked collective on every rank, whatever its devices argument, so that ranks
        # that choose their devices differently still run the same collectives.
        node_rank = self._node_rank()
        if devices is None:
            devices = self._default_worker_devices(node_rank)
        super().__init__(devices, weights)

    @staticmethod
    def _default_worker_devices(node_rank: int) -> list[Device]:
        if os.environ.get("TENSORCORE_DEVICES", "").strip():
            return default_devices()
        accelerators = [d for d in registry.available_devices() if d.type != "cpu"]
        if not accelerators:
            return [Device("cpu")]
        return [accelerators[node_rank % len(accelerators)]]

    def _node_rank(self) -> int:
        """This process's rank among the processes sharing its memory (its node), from MPI's
        ``Split_type``, which has no timeout: a checked, timed meeting first makes sure every
        rank is there (host names would not do: they repeat across containers)."""
        self._comm.check("the node-local rank of each rank", ())
        local = self._comm.comm.Split_type(self._comm.MPI.COMM_TYPE_SHARED)
        try:
            return local.Get_rank()
        finally:
            local.Free()

    @property
    def rank(self) -> int:
        """This process's MPI rank."""
        return self._comm.rank

    @property
    def num_workers(self) -> int:
        """The number of processes."""
        return self._comm.size

    @property
    def is_chief(self) -> bool:
        """Whether this process writes files for the job: rank 0 does."""
        return self.rank == 0

    def broadcast_bytes(self, payload: bytes | None) -> bytes | None:
        """Rank 0's ``payload`` (bytes, or None) on every rank; a collective, so every rank calls it."""
        if payload is not None and not isinstance(payload, (bytes, bytearray, memoryview)):
            raise TypeError(f"broadcast_bytes takes bytes (or None), got {type(payload).__name__}; "
                            f"encode a str first, e.g. text.encode()")
        payload = None if payload is None else bytes(payload)  # a memoryview's len() counts items
        size = np.array([-1 if payload is None else len(payload)] if self.rank == 0 else [0], np.int64)
        self._comm.broadcast(size, "bytes from rank 0 (their size)", (("size", (1,), "int64"),))
        if size[0] < 0:
            return None
        buf = np.frombuffer(payload, np.uint8).copy() if self.rank == 0 else np.empty(int(size[0]), np.uint8)
        self._comm.broadcast(buf, "bytes from rank 0", (("bytes", buf.shape, "uint8"),))
        return buf.tobytes()

    def all_gather_bytes(self, payload: bytes) -> list[bytes]:
        """Every rank's ``payload`` (bytes of any length), in rank order; a collective."""
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise TypeError(f"all_gather_bytes takes bytes, got {type(payload).__name__}")
        payload = bytes(payload)  # a memoryview's len() counts items
        sizes = self._comm.all_gather(np.array([len(payload)], np.int64), "bytes of every rank (their sizes)",
                                      (("size", (1,), "int64"),))[:, 0]
        padded = np.zeros(int(sizes.max()), np.uint8)
        padded[:len(payload)] = np.frombuffer(payload, np.uint8)
        every = self._comm.all_gather(padded, "bytes of every rank", (("bytes", padded.shape, "uint8"),))
        return [every[r, :int(n)].tobytes() for r, n in enumerate(sizes)]

    def __repr__(self) -> str:
        return (f"MultiWorkerMirroredStrategy(rank={self.rank} of {self.num_workers}, "
                f"devices={[str(d) for d in self._devices]}, weights={list(self.weights)})")

    # --- the hooks of MirroredStrategy --------------------------------------------------
    def _setup_cross_process(self) -> None:
        counts = self._comm.all_gather(np.array([len(self._devices)], np.int64), "replica counts",
                                       (("replica count", (1,), "int64"),))[:, 0]
        self._first_replica_id = int(counts[: self.rank].sum())
        local = np.asarray(self._weights, np.float64)
        every = np.zeros(int(counts.sum()), np.float64)
        every[self._first_replica_id:self._first_replica_id + len(local)] = local
        self._all_weights = [float(w) for w in self._comm.all_reduce(every, "replica weights", (("weights", every.shape, "float64"),))]

    def _cross_sum(self, total: np.ndarray, what: str, description: Description) -> np.ndarray:
        return self._comm.all_reduce(np.require(total, requirements=["C", "W"]), what, description)

    def _cross_meet(self, what: str, description: Description) -> None:
        self._comm.check(what, description)

    def _start_nccl(self) -> Any:
        # Every process must decide alike: NCCL only if every replica of the job can use it,
        # each on a GPU of its own (nccl.py's module doc).
        identities = np.zeros(self.num_replicas_in_sync, np.int64)
        usable = nccl.why_not(self._devices) is None
        if usable:
            try:
                for i, device in enumerate(self._devices):
                    identities[self._first_replica_id + i] = nccl.gpu_identity(device)
            except Exception as exc:  # noqa: BLE001 - a driver error: this rank sums through the host
                nccl.logger.warning("tensorcore.distribute: cannot read this rank's GPU identities (%s: %s)",
                                    type(exc).__name__, exc)
                usable = False
        every = self._comm.all_gather(np.array([usable], np.int64), "NCCL availability", (("can use NCCL", (1,), "int64"),))
        if not every.all():
            if usable:
                nccl.logger.warning("tensorcore.distribute: cuda replicas sum through the host: rank(s) %s cannot "
                                    "use NCCL", [r for r in range(self.num_workers) if not every[r, 0]])
            return None
        identities = self._comm.all_reduce(identities, "GPU identities", (("GPU of each replica", identities.shape, "int64"),))
        shared = nccl.shared_gpus(identities.tolist())
        if shared:
            nccl.logger.warning("tensorcore.distribute: cuda replicas sum through the host: replicas %s share a GPU "
                                "(NCCL needs one rank per device)", shared)
            return None
        return nccl.start(self._devices, self._first_replica_id, self.num_replicas_in_sync,
                          lambda buf: self._comm.broadcast(buf, "NCCL unique id", (("unique id", buf.shape, "uint8"),)))

    def _agree(self, what: str, numbers: Sequence[int]) -> None:
        mine = np.asarray(numbers, np.int64)
        every = self._comm.all_gather(mine, what, (("numbers", mine.shape, "int64"),))
        differ = [r for r in range(self.num_workers) if not np.array_equal(every[r], every[0])]
        if differ:
            raise ValueError(f"{what} differ between processes: rank 0 passed {every[0].tolist()}, "
                             + ", ".join(f"rank {r} {every[r].tolist()}" for r in differ)
                             + "; every rank must pass the same global batch (each places only its own replicas' rows)")

    def _initial_value(self, host: np.ndarray) -> np.ndarray:
        buf = np.require(host, requirements=["C", "W"])
        return self._comm.broadcast(buf, "variable broadcast from rank 0", (("initial value", buf.shape, str(buf.dtype)),))

    def _cross_check(self, names: list[str], hosts: list[np.ndarray]) -> None:
        mine = np.array([np.frombuffer(_content_digest(h), np.int64) for h in hosts], np.int64).reshape(len(hosts), 4)
        description = tuple((n, tuple(h.shape), str(h.dtype)) for n, h in zip(names, hosts))
        every = self._comm.all_gather(mine, "check_in_sync", description)
        for k, name in enumerate(names):
            differ = [r for r in range(self.num_workers) if not np.array_equal(every[r, k], every[0, k])]
            if differ:
                raise OutOfSyncError(f"{name} differs between rank 0 and rank(s) {differ}")


def _content_digest(array: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(array).tobytes(), digest_size=32).digest()
