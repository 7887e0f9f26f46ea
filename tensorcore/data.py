"""A minimal shuffling batch iterator over host arrays."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tensorcore.ops.creation import from_host


def batches(arrays: Sequence[np.ndarray], batch_size: int, *, shuffle: bool = True, seed: int | None = None,
            drop_last: bool = False, device: Any = None) -> Iterator[tuple[Any, ...]]:
    """Yield tuples of tensors, one batch of rows of each array at a time, on ``device``.

    All arrays must have the same number of rows. With ``shuffle`` the row order is a fresh
    permutation (from ``seed`` if given, else from ``tc.random``'s generator).
    """
    n = len(arrays[0])
    for i, a in enumerate(arrays):
        if len(a) != n:
            raise ValueError(f"batches: array {i} has {len(a)} rows, array 0 has {n}")
    if batch_size <= 0:
        raise ValueError(f"batches: batch_size must be positive, got {batch_size}")
    if shuffle:
        from tensorcore import random

        rng = np.random.default_rng(seed) if seed is not None else random.generator()
        order = rng.permutation(n)
    else:
        order = np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        rows = order[start:start + batch_size]
        yield tuple(from_host(np.ascontiguousarray(a[rows]), device) for a in arrays)
