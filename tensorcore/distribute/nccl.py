"""NCCL for ``cuda`` replicas, through CuPy's ``cupy.cuda.nccl``.

When every replica of a strategy is a ``cuda`` device (in one process or over MPI), a bucket
is summed on the GPUs by ``ncclAllReduce``, in place, on each device's stream: no host copy.
The replicas still meet in the in-process check first (same tensors, timeout), and across
processes in the MPI ticket check, so a mismatch is an error rather than a hang inside NCCL.
In one process the communicators come from ``ncclCommInitAll``; over MPI, rank 0 makes the
unique id and broadcasts it (128 bytes, MPI buffer API), and each replica joins with its
replica id as its NCCL rank.

Across processes every rank must decide alike, and NCCL's communicator setup blocks until
every rank has joined it. So the ranks first agree that every replica of the job can use NCCL
and that no two replicas (in any process) share a GPU (``shared_gpus``, on each GPU's UUID;
NCCL refuses two ranks on one device); any rank that cannot makes all fall back to
the host path, with a warning. Once they agree, a failure while joining the communicator
raises: the rank's error then ends the MPI job, rather than leaving the others waiting inside
NCCL forever.

Not yet run on a GPU (docs/gpu-validation.md); ``TENSORCORE_NCCL=0`` turns it off, and in one
process a failure to start NCCL falls back to the host path with a warning.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tensorcore.device import Device

logger = logging.getLogger("tensorcore.distribute")

# NumPy dtype -> the name of CuPy's NCCL data type constant.
_NCCL_TYPES = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64",
               "int32": "NCCL_INT32", "int64": "NCCL_INT64", "uint8": "NCCL_UINT8", "int8": "NCCL_INT8"}


def why_not(devices: Sequence[Device]) -> str | None:
    """Why the strategy's collectives cannot use NCCL (None: they can)."""
    if os.environ.get("TENSORCORE_NCCL", "1").strip() == "0":
        return "TENSORCORE_NCCL=0"
    if not devices or any(d.type != "cuda" for d in devices):
        return "not every replica is a cuda device"
    if len({d.index for d in devices}) != len(devices):
        return "two replicas share a GPU (NCCL needs one rank per device)"
    try:
        from cupy.cuda import nccl
    except Exception as exc:  # ImportError, or CuPy built without NCCL
        return f"cupy.cuda.nccl is unavailable ({type(exc).__name__}: {exc}); pip install 'tensorcore[cuda]'"
    if not getattr(nccl, "available", True):  # CuPy imports the module even when it found no libnccl
        return "CuPy found no NCCL library (cupy.cuda.nccl.available is False); pip install 'tensorcore[cuda]'"
    return None


def gpu_identity(device: Device) -> int:
    """A nonzero 63-bit number naming ``device``'s physical GPU across the job, from its UUID
    (CUDA's device numbers depend on each process's ``CUDA_VISIBLE_DEVICES``; host names and
    bus ids repeat across containers and identical nodes)."""
    import cupy

    uuid = bytes(cupy.cuda.runtime.getDeviceProperties(device.index)["uuid"])
    return int.from_bytes(hashlib.blake2b(uuid, digest_size=8).digest(), "little") >> 1 or 1


def shared_gpus(identities: Sequence[int]) -> list[list[int]]:
    """The groups of replicas (by replica id) whose :func:`gpu_identity` is the same, in order;
    0 means unknown and matches nothing."""
    seen: dict[int, list[int]] = {}
    for replica, ident in enumerate(identities):
        if ident:
            seen.setdefault(int(ident), []).append(replica)
    return [group for group in seen.values() if len(group) > 1]


def unique_id_to_array(uid: Sequence[int]) -> np.ndarray:
    """NCCL's unique id (CuPy gives 128 signed chars as ints) as bytes to broadcast."""
    return np.asarray(uid, dtype=np.int64).astype(np.int8).view(np.uint8).copy()


def unique_id_from_array(buf: np.ndarray) -> tuple[int, ...]:
    """The inverse of :func:`unique_id_to_array`."""
    return tuple(int(v) for v in np.asarray(buf, np.uint8).view(np.int8))


class NCCLGroup:
    """One NCCL communicator per local replica; ``broadcast`` shares rank 0's unique id over
    MPI (None in a single process)."""

    def __init__(self, devices: Sequence[Device], first_replica_id: int, num_replicas: int,
                 broadcast: Callable[[np.ndarray], np.ndarray] | None) -> None:
        import cupy
        from cupy.cuda import nccl

        self._nccl = nccl
        if broadcast is None:
            self.comms = nccl.NcclCommunicator.initAll([d.index for d in devices])
        else:
            uid = nccl.get_unique_id() if first_replica_id == 0 else (0,) * 128
            uid = unique_id_from_array(broadcast(unique_id_to_array(uid)))
            self.comms = []
            nccl.groupStart()  # several ranks joined from one thread
            try:
                for i, dev in enumerate(devices):
                    with cupy.cuda.Device(dev.index):
                        self.comms.append(nccl.NcclCommunicator(num_replicas, uid, first_replica_id + i))
            finally:
                nccl.groupEnd()

    def all_reduce(self, local_index: int, data: Any, stream: Any) -> None:
        """Sum the CuPy array ``data`` over every replica, in place, on ``stream``."""
        name = _NCCL_TYPES.get(str(data.dtype))
        if name is None:
            raise TypeError(f"NCCL cannot all-reduce {data.dtype}; use one of {sorted(_NCCL_TYPES)}")
        self.comms[local_index].allReduce(data.data.ptr, data.data.ptr, data.size, getattr(self._nccl, name),
                                          self._nccl.NCCL_SUM, stream.ptr)


def pack(handle: Any, sources: Sequence[Any], scale: Any) -> Any:
    """The bucket NCCL sums: the CuPy ``sources`` raveled and concatenated in a new buffer on
    ``handle``'s device and stream, times ``scale`` (None: not scaled)."""
    cp = handle.cp
    with handle.activate():
        flats = [s.reshape(-1) for s in sources]
        data = cp.concatenate(flats) if len(flats) > 1 else flats[0].copy()
        if scale is not None:
            data *= scale
    return data


def start(devices: Sequence[Device], first_replica_id: int, num_replicas: int,
          broadcast: Callable[[np.ndarray], np.ndarray] | None) -> NCCLGroup | None:
    """An :class:`NCCLGroup` where NCCL applies and starts, else None (said once in the log).

    With ``broadcast`` (several processes) the caller has already made every rank agree that
    NCCL applies: a failure to join the communicators then raises (see the module doc)."""
    reason = why_not(devices)
    if reason is None and broadcast is not None:
        return NCCLGroup(devices, first_replica_id, num_replicas, broadcast)
    if reason is None:
        try:
            return NCCLGroup(devices, first_replica_id, num_replicas, broadcast)
        except Exception as exc:  # a driver or NCCL failure: the host path still works
            reason = f"NCCL failed to start: {type(exc).__name__}: {exc}"
            logger.warning("tensorcore.distribute: %s; summing through the host instead", reason)
            return None
    if devices and all(d.type == "cuda" for d in devices):
        logger.warning("tensorcore.distribute: cuda replicas sum through the host: %s", reason)
    return None
