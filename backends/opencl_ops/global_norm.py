"""OpenCL launcher of ``norm_partial`` (``kernels/opencl/global_norm.cl``): a device's share of a
global norm over many tensors, for ``clip_grad_norm``.

The tensors are cut into chunks of at most ``chunk`` elements, each inside one tensor, and one
launch per group of 16 tensors gives each chunk a work-item that writes one partial. The
partials of every launch land in one buffer, which the reduction engine (``reduce_core.run``)
sums (or maxes) into the 0-d result; with a single chunk the kernel writes the result itself.
So k gradients cost ceil(k / 16) + 1 launches and no host wait, instead of a reduction per
gradient. A strided view is first made contiguous (one copy); empty tensors are skipped.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from tensorcore.backends.opencl import CLArray, CLDevice
from tensorcore.backends.opencl_ops._common import output
from tensorcore.backends.opencl_ops.movement_copy import contiguous, zeros
from tensorcore.backends.opencl_ops.reduce_core import IDENTITY, MAX, SUM, TARGET, Layout, cdiv, grid
from tensorcore.backends.opencl_ops.reduce_core import run as reduce_run

from tensorcore.errors import KernelUnsupported

GROUP = 16  # tensors per launch: the kernel's buffer arguments (and its long16 metadata)
CHUNK = (4096, 1 << 16)  # elements per work-item (min, max): ~TARGET work-items over all tensors
_C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


def _long16(values: list[int]) -> Any:
    import pyopencl.cltypes as cltypes

    return np.array(values + [0] * (GROUP - len(values)), np.int64).view(cltypes.long16)[0]


def _mode(norm_type: float) -> int:
    return 0 if norm_type == 2.0 else 1 if norm_type == math.inf else 2


def norm_partial(dev: CLDevice, *xs: CLArray, norm_type: float) -> CLArray:
    """``sum(|x| ** norm_type)`` over all of ``xs`` (``max |x|`` for inf) as a new 0-d array."""
    dtypes = {np.dtype(x.dtype) for x in xs}
    if len(dtypes) != 1 or next(iter(dtypes)) not in _C_TYPES:
        raise KernelUnsupported(f"norm_partial of {sorted(map(str, dtypes))}: one float dtype per launch "
                                "(clip_grad_norm groups tensors by dtype)")
    dtype = next(iter(dtypes))
    dev.check_dtype(dtype)
    live = [contiguous(x) for x in xs if x.buf is not None]
    total = sum(x.size for x in live)
    if not total:
        return zeros(dev, (), dtype)  # no elements: the sum (and the max of |x|) is 0
    out = output(dev, (), dtype)
    chunk = cdiv(min(max(cdiv(total, TARGET), CHUNK[0]), CHUNK[1]), 16) * 16  # whole vectors
    groups = [live[i:i + GROUP] for i in range(0, len(live), GROUP)]
    counts = [[cdiv(x.size, chunk) for x in g] for g in groups]
    parts = sum(map(sum, counts))
    partials = out if parts == 1 else dev.empty((parts,), dtype)
    defines = (("T", _C_TYPES[dtype]), ("MODE", str(_mode(norm_type))))
    kernel = dev.kernel("global_norm.cl", "norm_partial", defines)
    p = dtype.type(norm_type if math.isfinite(norm_type) else 0.0)
    base = 0
    for group, count in zip(groups, counts):
        ends = np.cumsum(count).tolist()
        bufs = [x.buf for x in group] + [None] * (GROUP - len(group))
        dev.launch(kernel, *grid(ends[-1]), partials.buf, base, *bufs,
                   _long16([x.offset for x in group]), _long16([x.size for x in group]), _long16(ends),
                   np.int32(len(group)), chunk, p)
        base += ends[-1]
    if parts == 1:
        return out
    lay = Layout(partials, 1, parts, 1, parts, 1, 0)
    return reduce_run(dev, lay, out, MAX if norm_type == math.inf else SUM, IDENTITY, dtype)


KERNELS: dict = {"norm_partial": norm_partial}
