"""CUDA launcher of ``norm_partial`` (``kernels/cuda/global_norm.cu``): a device's share of a
global norm over many tensors, for ``clip_grad_norm``.

All tensors go to one launch through a table of their data pointers, sizes and chunk counts
(``CUDADevice.meta``: uploaded once per distinct table, then cached, so a training loop whose
gradients come back at the same pool addresses uploads nothing). Each block reduces one chunk
of one tensor into a partial; ``reduce.run`` combines the partials into the 0-d result (with a
single chunk the kernel writes it directly). A strided view is first made contiguous (one
copy); empty tensors are skipped. Mixed dtypes raise ``KernelUnsupported`` (``clip_grad_norm``
groups tensors by dtype, so it never sends them).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from tensorcore.backends.cuda_ops._common import BLOCK, FLOATS, cdiv, defines, float_dtype, i64
from tensorcore.backends.cuda_ops.movement_copy import contiguous
from tensorcore.backends.cuda_ops.reduce import MAX, SUM
from tensorcore.backends.cuda_ops.reduce import run as reduce_run

SOURCE = "global_norm.cu"
MODES = (0, 1, 2)  # sum of squares, max |x|, sum |x|^p
CHUNK = 8192  # elements per block at least (32 per thread)
MAX_BLOCKS = 16384  # past this many chunks they grow, so that the partials stay few

#: (source, defines) the launcher builds: compiled by tests/test_cuda_compile.py.
VARIANTS = [(SOURCE, defines(t, ("MODE", str(m)))) for t in FLOATS for m in MODES]


def _mode(norm_type: float) -> int:
    return 0 if norm_type == 2.0 else 1 if norm_type == math.inf else 2


def norm_partial(dev: Any, *xs: Any, norm_type: float) -> Any:
    """``sum(|x| ** norm_type)`` over all of ``xs`` (``max |x|`` for inf) as a new 0-d array."""
    dtype = float_dtype("norm_partial", *xs)
    live = [contiguous(dev, x) for x in xs if x.size]
    total = sum(int(x.size) for x in live)
    if not total:
        return dev.zeros((), dtype)  # no elements: the sum (and the max of |x|) is 0
    chunk = max(CHUNK, cdiv(cdiv(total, MAX_BLOCKS), BLOCK) * BLOCK)
    ends = np.cumsum([cdiv(int(x.size), chunk) for x in live]).tolist()
    parts = ends[-1]
    out = dev.empty((), dtype)
    partials = out if parts == 1 else dev.empty((parts,), dtype)
    table = dev.meta(tuple(int(x.data.ptr) for x in live) + tuple(int(x.size) for x in live) + tuple(ends))
    p = dtype.type(norm_type if math.isfinite(norm_type) else 0.0)
    dev.launch(SOURCE, "norm_partial_chunks", defines(dtype, ("MODE", str(_mode(norm_type)))), (parts,), (BLOCK,),
               (partials, table, np.int32(len(live)), i64(chunk), p))
    if parts == 1:
        return out
    return reduce_run(dev, partials, 1, parts, 1, MAX if norm_type == math.inf else SUM, out)


KERNELS: dict = {"norm_partial": norm_partial}
