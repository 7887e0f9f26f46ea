"""Gradient buckets: many tensors travel as a few flat buffers (Horovod's tensor fusion,
PyTorch DDP's buckets), so a step pays one collective per bucket, not one per tensor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tensorcore.tensor import Tensor


def plan(specs: Sequence[tuple[tuple[int, ...], np.dtype]], bucket_bytes: int) -> list[list[int]]:
    """Group tensor indices into buckets: one dtype per bucket, in the given order, each at most
    ``bucket_bytes`` (a larger tensor gets a bucket of its own). Deterministic: every replica
    and process gets the same plan from the same specs."""
    buckets: list[list[int]] = []
    open_bucket: dict[np.dtype, tuple[list[int], int]] = {}
    for i, (shape, dtype) in enumerate(specs):
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        current = open_bucket.get(dtype)
        if current is None or current[1] + nbytes > bucket_bytes:
            current = ([], 0)
            buckets.append(current[0])
        current[0].append(i)
        open_bucket[dtype] = (current[0], current[1] + nbytes)
    return buckets


def plan_backward(specs: Sequence[tuple[tuple[int, ...], np.dtype]], bucket_bytes: int) -> list[list[int]]:
    """:func:`plan` over the tensors in reverse order (PyTorch DDP's order): gradients are
    listed in the order of the parameters, and backpropagation computes the last layer's
    first, so the first bucket's sum can run while the device still computes the others'."""
    last = len(specs) - 1
    return [[last - i for i in bucket] for bucket in plan(list(reversed(specs)), bucket_bytes)]


def unpack(flat: Tensor, shapes: Sequence[tuple[int, ...]]) -> list[Any]:
    """Views of ``flat`` (a bucket's sum: its tensors raveled and concatenated) with
    ``shapes``, in order."""
    from tensorcore.ops.manipulation import reshape

    out, offset = [], 0
    for shape in shapes:
        n = int(np.prod(shape, dtype=np.int64))
        out.append(reshape(flat[offset:offset + n], tuple(shape)))
        offset += n
    return out
