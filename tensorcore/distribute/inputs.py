"""The input side of a strategy: global batches cut into per-replica shards.

A global batch is cut along axis 0 by the replicas' shares (largest remainder over the
weights of *every* replica of the job, so every process computes the same cut), and each
process places only its own replicas' rows, each shard on its replica's device. Batches of
a dataset come in one order drawn from a seed, the same on every process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from tensorcore.device import Device
from tensorcore.distribute.values import PerReplica
from tensorcore.tensor import Tensor


def largest_remainder(n: int, weights: Sequence[float]) -> list[int]:
    """Split ``n`` rows into integer shares proportional to ``weights`` (Hamilton's method;
    ties go to the lower index), the same on every process."""
    total = float(sum(weights))
    quotas = [n * w / total for w in weights]
    sizes = [int(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - sizes[i]), i))
    for i in order[: n - sum(sizes)]:
        sizes[i] += 1
    return sizes


class BatchSplitter:
    """Cuts global batches for one process's replicas (``strategy.split``, ``strategy.batches``).

    ``devices`` are this process's replica devices, replicas ``first_replica_id`` onwards of
    the job; ``weights`` are every replica's weight, of the whole job, in replica order.
    """

    def __init__(self, devices: Sequence[Device], first_replica_id: int, weights: Sequence[float],
                 agree: Callable[[str, Sequence[int]], None] | None = None) -> None:
        self.devices = list(devices)
        self.first_replica_id = first_replica_id
        self.weights = list(weights)
        # Across processes (None in one): raise unless every process passed the same numbers.
        # Each process places its own rows of what it was given, so a rank that holds other
        # data (another batch size, another dataset or seed) would silently train on rows the
        # others skip, with shares that no longer add up.
        self.agree = agree

    def shares(self, n: int) -> list[int]:
        """Every replica's rows of a global batch of ``n`` (an error if one would get none)."""
        sizes = largest_remainder(n, self.weights)
        if min(sizes) == 0:
            total = sum(self.weights)
            raise ValueError(f"a global batch of {n} rows cannot give each of the {len(sizes)} replicas a row "
                             f"(shares {[w / total for w in self.weights]}); use a larger batch")
        return sizes

    def place(self, array: Any, sizes: list[int], rows: np.ndarray | None = None) -> PerReplica:
        """This process's shards of ``array`` (its rows ``rows``, else all of them, cut by the
        job's ``sizes``), each on its replica's device."""
        from tensorcore.ops.creation import from_host

        starts = np.concatenate([[0], np.cumsum(sizes)])
        shards = []
        for i, dev in enumerate(self.devices):
            lo, hi = int(starts[self.first_replica_id + i]), int(starts[self.first_replica_id + i + 1])
            if isinstance(array, Tensor):
                part = array[lo:hi] if rows is None else array[rows[lo:hi]]
                shards.append(part.to_device(dev))
            else:
                part = np.asarray(array)[lo:hi] if rows is None else np.asarray(array)[rows[lo:hi]]
                shards.append(from_host(np.ascontiguousarray(part), dev))
        return PerReplica(shards, sizes=sizes)

    def split(self, *arrays: Any) -> Any:
        """See ``MirroredStrategy.split``."""
        if not arrays:
            raise ValueError("split needs at least one array")
        n = _rows(arrays, "split")
        if self.agree is not None:
            self.agree("split: the global batch's rows", [n])
        sizes = self.shares(n)
        out = tuple(self.place(a, sizes) for a in arrays)
        return out if len(out) > 1 else out[0]

    def batches(self, arrays: Sequence[Any], global_batch_size: int, shuffle: bool = True, seed: int = 0,
                drop_last: bool = False) -> Iterator[tuple[PerReplica, ...]]:
        """See ``MirroredStrategy.batches``."""
        if not isinstance(arrays, (list, tuple)) or not arrays:
            got = f"an empty {type(arrays).__name__}" if isinstance(arrays, (list, tuple)) else f"a {type(arrays).__name__}"
            raise TypeError(f"batches takes a non-empty list or tuple of arrays (inputs, labels, ...) with the same "
                            f"number of rows, got {got}" + ("; wrap a single array as [x]" if hasattr(arrays, "shape") else ""))
        n = _rows(arrays, "batches")
        if isinstance(global_batch_size, bool) or not isinstance(global_batch_size, (int, np.integer)):
            raise TypeError(f"batches: global_batch_size must be an int, got {global_batch_size!r}")
        if seed is None and self.agree is not None:
            raise ValueError("batches: seed=None draws another order on each process; pass the same int seed on every rank")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise TypeError(f"batches: seed must be a non-negative int (or None in one process), got {seed!r}")
        if self.agree is not None:
            self.agree("batches: the dataset's rows, global_batch_size, shuffle, seed and drop_last",
                       [n, int(global_batch_size), int(shuffle), int(seed), int(drop_last)])
        replicas = len(self.weights)
        if global_batch_size < replicas:
            raise ValueError(f"batches: global_batch_size {global_batch_size} is smaller than the "
                             f"{replicas} replicas; each replica needs at least one row")
        order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
        for start in range(0, n, global_batch_size):
            rows = order[start:start + global_batch_size]
            last = len(rows) < global_batch_size
            if last and (drop_last or min(largest_remainder(len(rows), self.weights)) == 0):
                return  # too small to give every replica a row (or not wanted)
            sizes = self.shares(len(rows))
            yield tuple(self.place(a, sizes, rows) for a in arrays)


def _rows(arrays: Sequence[Any], where: str) -> int:
    """The rows every array shares (axis 0); raise naming an array that is not one or differs."""
    counts = []
    for i, a in enumerate(arrays):
        shape = np.shape(a) if isinstance(a, (list, tuple)) else getattr(a, "shape", None)
        if shape is None:
            raise TypeError(f"{where}: argument {i} is a {type(a).__name__}, not an array; pass NumPy arrays or "
                            f"tensors, one row per example along axis 0")
        if len(shape) == 0:
            raise ValueError(f"{where}: argument {i} is 0-d (a scalar); an array with one row per example along "
                             f"axis 0 is needed")
        counts.append(int(shape[0]))
    for i, c in enumerate(counts):
        if c != counts[0]:
            raise ValueError(f"{where}: array {i} has {c} rows, array 0 has {counts[0]}")
    return counts[0]
