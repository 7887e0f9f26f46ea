"""Indexing with index tensors on CUDA (``kernels/cuda/index.cu``): getitem (and so ``take``),
its gradient scatter_add, embedding and embedding_backward.

``plan_key`` reduces a key to a base offset and strides; the index tensors become one int64
array of element offsets over their broadcast shape (``adv_offsets``, one launch per index
tensor), and one kernel gathers or atomically adds through it. Index values are checked on
the device, never by a host read: a kernel that meets one out of range reports it (position
and value) into the launching thread's error record (``CUDADevice.error_flag``), gathers all
bits set there (NaN for floats), adds nothing, and reads or writes nothing outside its
arrays; that thread raises ``DeviceError`` at its next read or synchronize. So unlike the cpu,
an out-of-range index is reported late (as on OpenCL). Boolean masks are declined
(``KernelUnsupported``): their result's size needs a host read, and they run on the cpu.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from tensorcore.backends.cuda_ops._common import BLOCK, contiguous_strides, elem_strides, grid_1d, i64, is_array
from tensorcore.backends.cuda_ops.movement_copy import (
    broadcast_strides,
    coalesce,
    contiguous,
    copy_strided,
    width,
)
from tensorcore.backends.cuda_ops.movement_views import KeyPlan, basic_view, plan_key

from tensorcore.errors import KernelUnsupported

SOURCE = "index.cu"
#: index dtypes adv_offsets takes, by kernel suffix (uint64 is declined: see index.cu)
INDEX_TYPES = {np.dtype(np.int8): "i8", np.dtype(np.int16): "i16", np.dtype(np.int32): "i32",
               np.dtype(np.int64): "i64", np.dtype(np.uint8): "u8", np.dtype(np.uint16): "u16",
               np.dtype(np.uint32): "u32"}
#: element dtypes with an atomic add (scatter_add, embedding_backward), by kernel suffix
ATOMIC_TYPES = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64", np.dtype(np.int32): "i32",
                np.dtype(np.int64): "i64"}
#: index dtypes of the embedding kernels
EMBEDDING_INDEX = {np.dtype(np.int32): "i32", np.dtype(np.int64): "i64"}

#: (source, defines) the launchers build: compiled by tests/test_cuda_compile.py.
VARIANTS = [(SOURCE, ())]


def _meta(shape: tuple[int, ...], *strides: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(coalesced shape, meta values: shape then each stride set) with at least one dimension."""
    shape, merged = coalesce(tuple(shape), *strides)
    if not shape:
        shape, merged = (1,), [(0,)] * len(strides)
    return shape, shape + tuple(v for st in merged for v in st)


def _index_suffix(op: str, a: Any) -> str:
    suffix = INDEX_TYPES.get(np.dtype(a.dtype))
    if suffix is None:
        raise KernelUnsupported(f"{op}: index tensors of dtype {a.dtype} (CUDA kernels take int8 .. int64, uint8 .. uint32)")
    return suffix


def build_adv(dev: Any, op: str, shape: tuple[int, ...], comps: list[tuple[Any, int, int]],
              axes: tuple[int, ...]) -> Any:
    """int64 offsets over broadcast ``shape``: the sum of wrap(index) * x stride over ``comps``
    ((index array, axis length, x stride), indexing x's ``axes``); an index out of range is
    reported into this thread's error record, and its offset marked bad."""
    adv = dev.empty(shape, np.int64)
    n = math.prod(shape)
    if n == 0:
        return adv
    for j, ((a, axis_len, xstride), axis) in enumerate(zip(comps, axes)):
        suffix = _index_suffix(op, a)
        dims, meta = _meta(shape, broadcast_strides(a, shape, "index"))
        err, code = dev.error_flag(f"{op}: index {{value}} is out of bounds for axis {axis} with size {axis_len}"
                                   f"{{position}}; expected -{axis_len} <= index < {axis_len}", shape, tuple(a.shape))
        dev.launch(SOURCE, f"adv_offsets_{suffix}", (), grid_1d(dev, n), (BLOCK,),
                   (adv, np.int32(j > 0), a, dev.meta(meta), np.int32(len(dims)), i64(n), i64(axis_len),
                    i64(xstride), err, code))
    return adv


def _resolve(dev: Any, op: str, plan: KeyPlan) -> tuple[tuple[int, ...], tuple[int, ...], Any, tuple[int, ...]]:
    """(result shape, x strides, adv offsets, adv strides) of a key with index tensors."""
    for a, _, _ in plan.adv:
        if not is_array(a):
            raise KernelUnsupported(f"{op}: index tensors must be device arrays")
        _index_suffix(op, a)  # decline before anything is launched
    shapes = [tuple(a.shape) for a, _, _ in plan.adv]
    try:
        bshape = tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise IndexError(f"shape mismatch: indexing arrays could not be broadcast together with shapes {shapes}") from None
    adv = build_adv(dev, op, bshape, plan.adv, plan.adv_axes)
    before, after = plan.dims[:plan.adv_at], plan.dims[plan.adv_at:]
    shape = tuple(n for n, _ in before) + bshape + tuple(n for n, _ in after)
    xstrides = tuple(s for _, s in before) + (0,) * len(bshape) + tuple(s for _, s in after)
    astrides = (0,) * len(before) + contiguous_strides(bshape) + (0,) * len(after)
    return shape, xstrides, adv, astrides


# --- ops --------------------------------------------------------------------------------------


def getitem(dev: Any, x: Any, *index: Any, key: Any) -> Any:
    """``x[key]``: a view for basic keys (ints, slices, None, Ellipsis), a gather with integer
    index tensors (validated on the device)."""
    if not is_array(x):
        raise KernelUnsupported("getitem: not a device array")
    plan = plan_key(x, key, index)
    if not plan.adv:
        return basic_view(dev, x, plan)
    w = width(x.dtype)
    shape, xstrides, adv, astrides = _resolve(dev, "getitem", plan)
    out = dev.empty(shape, x.dtype)
    n = math.prod(shape)
    if n:
        dims, meta = _meta(shape, xstrides, astrides)
        dev.launch(SOURCE, f"index_gather_{w}", (), grid_1d(dev, n), (BLOCK,),
                   (out, x, i64(plan.base), adv, dev.meta(meta), np.int32(len(dims)), i64(n)))
    return out


def _atomic_suffix(op: str, dtype: Any) -> str:
    suffix = ATOMIC_TYPES.get(np.dtype(dtype))
    if suffix is None:
        raise KernelUnsupported(f"{op}: no CUDA atomic add for {dtype} (float32, float64, int32, int64 have one)")
    return suffix


def scatter_add(dev: Any, g: Any, *index: Any, shape: tuple[int, ...], key: Any) -> Any:
    """Zeros of ``shape`` with ``g`` added at ``key``; repeated indices accumulate (atomics)."""
    if not is_array(g):
        raise KernelUnsupported("scatter_add: not a device array")
    suffix = _atomic_suffix("scatter_add", g.dtype) if index else None
    out = dev.zeros(tuple(shape), g.dtype)
    plan = plan_key(out, key, index)
    if not plan.adv:  # a basic key selects each element at most once: a copy
        view = basic_view(dev, out, plan)
        copy_strided(dev, tuple(view.shape), view, elem_strides(view), g,
                     broadcast_strides(g, tuple(view.shape), "gradient"))
        return out
    rshape, xstrides, adv, astrides = _resolve(dev, "scatter_add", plan)
    n = math.prod(rshape)
    if n:
        dims, meta = _meta(rshape, xstrides, astrides, broadcast_strides(g, rshape, "gradient"))
        dev.launch(SOURCE, f"index_add_{suffix}", (), grid_1d(dev, n), (BLOCK,),
                   (out, i64(plan.base), adv, g, dev.meta(meta), np.int32(len(dims)), i64(n)))
    return out


def _embedding_indices(op: str, indices: Any) -> str:
    suffix = EMBEDDING_INDEX.get(np.dtype(getattr(indices, "dtype", None))) if is_array(indices) else None
    if suffix is None:
        raise KernelUnsupported(f"{op}: CUDA kernels take int32 or int64 indices")
    return suffix


def embedding(dev: Any, indices: Any, weight: Any) -> Any:
    """Rows of ``weight`` at ``indices``, checked on the device: an index out of range raises
    ``OpError`` at the next read (the cpu raises at the call)."""
    if not is_array(weight) or getattr(indices, "dtype", np.dtype(np.float32)).kind not in "iu" or len(weight.shape) != 2:
        raise ValueError("bad inputs")  # explained by the op's rule
    isuffix = _embedding_indices("embedding", indices)
    w = width(weight.dtype)
    rows, dim = weight.shape
    out = dev.empty(tuple(indices.shape) + (dim,), weight.dtype)
    n = math.prod(out.shape)
    if n:
        idx = contiguous(dev, indices)
        ws0, ws1 = elem_strides(weight)
        err, code = dev.error_flag(f"embedding: index {{value}} is out of range for a weight with {rows} rows"
                                   f"{{position}}; expected 0 <= index < {rows}", tuple(indices.shape))
        dev.launch(SOURCE, f"embedding_gather_{isuffix}_{w}", (), grid_1d(dev, n), (BLOCK,),
                   (out, weight, idx, i64(ws0), i64(ws1), i64(rows), i64(dim), i64(n), err, code))
    return out


def embedding_backward(dev: Any, g: Any, indices: Any, num_embeddings: int) -> Any:
    """Rows of ``g`` added at ``indices`` (repeats accumulate, atomically; the order of the
    float adds is not fixed, so the last bits may differ from the cpu's)."""
    isuffix = _embedding_indices("embedding_backward", indices)
    if not is_array(g) or not g.shape:
        raise KernelUnsupported("embedding_backward: g must be a device array")
    tsuffix = _atomic_suffix("embedding_backward", g.dtype)
    if tsuffix not in ("f32", "f64"):
        raise KernelUnsupported(f"embedding_backward on {g.dtype}")
    dim = g.shape[-1]
    if tuple(g.shape) != tuple(indices.shape) + (dim,):
        raise ValueError("g does not match the indices")  # explained by the op's rule
    out = dev.zeros((int(num_embeddings), dim), g.dtype)
    n = math.prod(g.shape)
    if n and out.size:
        gc, idx = contiguous(dev, g), contiguous(dev, indices)
        err, code = dev.error_flag(f"embedding_backward: index {{value}} is out of range for {num_embeddings} rows"
                                   f"{{position}}; expected 0 <= index < {num_embeddings}", tuple(indices.shape))
        dev.launch(SOURCE, f"embedding_add_{isuffix}_{tsuffix}", (), grid_1d(dev, n), (BLOCK,),
                   (out, gc, idx, i64(num_embeddings), i64(dim), i64(n), err, code))
    return out


KERNELS: dict = {"getitem": getitem, "scatter_add": scatter_add, "embedding": embedding,
                 "embedding_backward": embedding_backward}
