"""Indexing with index tensors on OpenCL: getitem, setitem, scatter_add, take_along_axis,
scatter_along_axis, embedding, embedding_backward and repeat.

``plan_key`` reduces a key to a base offset and strides; the index tensors become one array
of element offsets over their broadcast shape (``adv``), and one kernel gathers, sets or
atomically adds through it.

Index values are validated on the device, as cross_entropy's labels are: ``adv_offsets``
reports an index out of range, with its position and value, into the launching thread's
error record (``CLDevice.error_flag``) and marks its offset bad; gathers write all bits set
there (NaN for floats) and scatter-adds skip it, so nothing is accessed out of bounds, and
that thread raises ``DeviceError`` at its next read or synchronize on the device. So
getitem, take, take_along_axis, embedding and the scatter-adds never wait for the queue.
Two exceptions read back: setitem (an in-place write must raise at the call and leave its
target unchanged: one small read of the indices' (min, max) first; its writes are guarded
too, see ``CLDevice.error_guard``) and a boolean mask (the output size depends on its
per-chunk counts).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from tensorcore.backends.opencl import MAX_DIMS, CLArray, CLDevice, contiguous_strides
from tensorcore.backends.opencl_ops._common import ctype, long8, output
from tensorcore.backends.opencl_ops.movement_copy import (
    broadcast_strides,
    chunked,
    coalesce,
    copy_of,
    copy_view,
    fill_view,
    host_array,
    run,
    width_defines,
    zeros,
)
from tensorcore.backends.opencl_ops.movement_views import KeyPlan, basic_view, plan_key

from tensorcore.errors import KernelUnsupported, OpError

_NO_WRAP = 1 << 62  # axis length of offsets that are already final (masks): neither wrapped nor checked
_SCAN = (1,)  # work-group size of the per-chunk scans: one chunk per group, groups spread over the cores


def _dims(shape: tuple[int, ...], *strides: tuple[int, ...]) -> tuple[tuple[int, ...], list[tuple[int, ...]]]:
    """``coalesce``, refusing what still has more dimensions than the kernels take."""
    shape, strides_out = coalesce(tuple(shape), *strides)
    if len(shape) > MAX_DIMS:
        raise KernelUnsupported(f"indexing with {len(shape)} dimensions left after merging")
    return shape, strides_out


def _chunks(n: int) -> tuple[int, int]:
    """(chunk length, number of chunks) for the serial per-chunk scans: at most 256 chunks,
    launched as work-groups of one work item each (``_SCAN``), so that the cores share them."""
    count = min(256, max(1, -(-n // 2048)))
    chunk = -(-n // count)
    return chunk, -(-n // chunk)


def _read(dev: CLDevice, buf: Any, count: int) -> np.ndarray:
    """Read ``count`` int64 values back (waits for the queue)."""
    host = np.empty(count, np.int64)
    dev.cl.enqueue_copy(dev.queue, host, buf, is_blocking=True)
    dev.finished()
    return host


def index_ranges(dev: CLDevice, arrays: list[CLArray]) -> list[tuple[int, int]]:
    """(min, max) of each non-empty integer array: one kernel each, one read for all."""
    jobs, total = [], 0
    for a in arrays:
        chunk, count = _chunks(a.size)
        jobs.append((a, chunk, count, total))
        total += 2 * count
    buf = dev.alloc(8 * total)
    for a, chunk, count, pos in jobs:
        shape, (strides,) = _dims(a.shape, a.strides)
        run(dev, "movement.cl", "index_minmax", (("IT", ctype(a.dtype)),), (count,), a.buf, a.offset,
            long8(shape, 1), long8(strides, 0), len(shape), a.size, chunk, buf, pos, local=_SCAN)
    host = _read(dev, buf, total)
    return [(int(host[pos:pos + 2 * count:2].min()), int(host[pos + 1:pos + 2 * count:2].max()))
            for _, _, count, pos in jobs]


def _check_in_range(dev: CLDevice, comps: list[tuple[CLArray, int, int]]) -> None:
    """NumPy's IndexError for an index outside ``-n <= i < n``, read back now (comps: (array,
    x axis, axis length)). For setitem only: the other ops validate on the device."""
    comps = [c for c in comps if c[0].size]
    if not comps:
        return
    for (lo, hi), (_, axis, n) in zip(index_ranges(dev, [a for a, _, _ in comps]), comps):
        if lo < -n or hi >= n:
            raise IndexError(f"index {lo if lo < -n else hi} is out of bounds for axis {axis} with size {n}")


def _bounds_message(op: str, axis: int, n: int) -> str:
    """The device error of an index outside ``-n <= i < n`` (the kernel reports its value and
    position: see ``CLDevice.error_flag``)."""
    return f"{op}: index {{value}} is out of bounds for axis {axis} with size {n}{{position}}; expected {-n} <= index < {n}"


def _none_fit(a: CLArray, axis: int, n: int) -> None:
    """An axis of length 0 has no valid index, known from the shapes alone: raise now (and
    never launch a gather from an empty buffer)."""
    if n == 0 and a.size:
        raise IndexError(f"an index is out of bounds for axis {axis} with size 0")


def _index_axes(ndim: int, template: Any, arrays: tuple[CLArray, ...]) -> list[int]:
    """The x axis where each index array of a key starts, in key order (one per array, as
    ``plan_key`` lists them in ``KeyPlan.adv``): named in the out-of-bounds errors."""
    from tensorcore.ops.indexing import Slot  # the key format belongs to the op (imported late: layers)

    key = template if isinstance(template, tuple) else (template,)
    width = [len(arrays[k].shape) if isinstance(k, Slot) and arrays[k].dtype == np.bool_ else 1 for k in key]
    consumed = sum(w for k, w in zip(key, width) if k is not None and k is not Ellipsis)
    axes, dim = [], 0
    for k, w in zip(key, width):
        if k is Ellipsis:
            dim += ndim - consumed
        elif k is not None:
            if isinstance(k, Slot):
                axes.append(dim)
            dim += w
    return axes


def mask_offsets(dev: CLDevice, mask: CLArray, xstrides: tuple[int, ...]) -> CLArray:
    """The x offsets (int64) of ``mask``'s true elements in row-major order: counts per chunk,
    read back, then each chunk writes from its prefix-summed start."""
    n = mask.size
    if n == 0:
        return CLArray(dev, None, (0,), np.dtype(np.int64))
    shape, (mstrides, xs) = _dims(mask.shape, mask.strides, tuple(xstrides))
    chunk, count = _chunks(n)
    args = (mask.buf, mask.offset, long8(shape, 1), long8(mstrides, 0), len(shape), n, chunk)
    counts = dev.alloc(8 * count)
    run(dev, "movement.cl", "mask_count", (("MASK", "1"),), (count,), *args, counts, local=_SCAN)
    per_chunk = _read(dev, counts, count)
    starts = np.concatenate(([0], np.cumsum(per_chunk)[:-1])).astype(np.int64)
    out = output(dev, (int(per_chunk.sum()),), np.int64)
    if out.buf is not None:
        starts_dev = output(dev, (count,), np.int64)
        dev.upload(starts, starts_dev)
        run(dev, "movement.cl", "mask_offsets", (("MASK", "1"),), (count,), *args, starts_dev.buf,
            long8(xs, 0), out.buf, local=_SCAN)
    return out


# A component of ``build_adv``: (index array, axis length, x stride, the OpError message of an
# index out of range (None: offsets that are final, from a mask, taken unchecked and unwrapped:
# negative where x has negative strides), whether negative indices count from the end).
Comp = tuple[CLArray, int, int, str | None, bool]


def build_adv(dev: CLDevice, shape: tuple[int, ...], comps: list[Comp]) -> CLArray:
    """int64 offsets over broadcast ``shape``: the sum of wrap(index) * x stride over ``comps``,
    each index array broadcast to ``shape``. An index out of range becomes offset 0 and sets
    the device's error flag with its component's message: raised at the next read."""
    adv = output(dev, shape, np.int64)
    if adv.buf is None:
        return adv  # nothing to gather, so nothing to validate (as NumPy)
    for j, (a, axis_len, xstride, message, wrap) in enumerate(comps):
        dims, (astrides, _) = _dims(shape, broadcast_strides(a, shape, "index"), contiguous_strides(shape))
        chunk, size = chunked(adv.size)
        err, code = dev.error_flag(message, shape, a.shape) if message is not None else (None, np.int32(0))
        run(dev, "movement.cl", "adv_offsets", (("IT", ctype(a.dtype)),), size,
            adv.buf, int(j > 0), a.buf, a.offset, long8(dims, 1), long8(astrides, 0), len(dims), adv.size, chunk,
            axis_len, xstride, int(wrap), err, code)
    return adv


def _resolve(dev: CLDevice, plan: KeyPlan, op: str, axes: list[int],
             on_host: bool = False) -> tuple[tuple[int, ...], tuple[int, ...], CLArray, tuple[int, ...]]:
    """(result shape, x strides, adv offsets, adv strides) of a key with index arrays (``axes``:
    their x axes, from ``_index_axes``). Index values are checked on the device (an error at
    the next read), or with ``on_host`` read back and checked now; nothing but the offsets has
    been written when this returns or raises."""
    for (kind, a, n, _), axis in zip(plan.adv, axes):
        if kind == "index":
            _none_fit(a, axis, n)
    if on_host:
        _check_in_range(dev, [(a, axis, n) for (kind, a, n, _), axis in zip(plan.adv, axes) if kind == "index"])
    comps: list[Comp] = []
    shapes = []
    for (kind, a, n, xstride), axis in zip(plan.adv, axes):
        if kind == "mask":
            comps.append((mask_offsets(dev, a, xstride), _NO_WRAP, 1, None, False))
        else:
            comps.append((a, n, xstride, _bounds_message(op, axis, n), True))
        shapes.append(tuple(comps[-1][0].shape))
    try:
        bshape = tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise IndexError(f"shape mismatch: indexing arrays could not be broadcast together with shapes {shapes}") from None
    adv = build_adv(dev, bshape, comps)
    before, after = plan.dims[:plan.adv_at], plan.dims[plan.adv_at:]
    shape = tuple(n for n, _ in before) + bshape + tuple(n for n, _ in after)
    xstrides = tuple(s for _, s in before) + (0,) * len(bshape) + tuple(s for _, s in after)
    astrides = (0,) * len(before) + contiguous_strides(bshape) + (0,) * len(after)
    return shape, xstrides, adv, astrides


def _gather(dev: CLDevice, x: CLArray, base: int, shape: tuple[int, ...], xstrides: tuple[int, ...],
            adv: CLArray, astrides: tuple[int, ...]) -> CLArray:
    """A new array of ``shape``: element i is x[base + i·xstrides + adv[i·astrides]]."""
    out = output(dev, shape, x.dtype)
    if out.buf is None:
        return out
    dims, (xs, as_, os_) = _dims(shape, xstrides, astrides, contiguous_strides(shape))
    n = out.size
    chunk, size = chunked(n)
    run(dev, "movement.cl", "index_gather", width_defines(x.dtype), size, out.buf, x.buf,
        base, adv.buf, long8(dims, 1), long8(xs, 0), long8(as_, 0), long8(os_, 0), len(dims), n, chunk)
    return out


def _scatter(dev: CLDevice, name: str, defines: tuple, x: CLArray, base: int, shape: tuple[int, ...],
             xstrides: tuple[int, ...], adv: CLArray, astrides: tuple[int, ...], v: CLArray,
             guard: Any = None) -> None:
    """x[base + i·xstrides + adv[i·astrides]] = (or +=) v[i], v broadcast to ``shape``; elements
    whose index was out of range are skipped. ``guard``: index_set's error record (in place)."""
    if math.prod(shape) == 0:
        return
    dims, (xs, as_, vs) = _dims(shape, xstrides, astrides, broadcast_strides(v, shape, "value"))
    n = math.prod(dims)
    chunk, size = chunked(n)
    extra = () if guard is None else (guard,)
    run(dev, "movement.cl", name, defines, size, x.buf, base, adv.buf, v.buf, v.offset,
        long8(dims, 1), long8(xs, 0), long8(as_, 0), long8(vs, 0), len(dims), n, chunk, *extra)


_ATOMIC = {np.dtype(np.float32): "1", np.dtype(np.float64): "2", np.dtype(np.int32): "3",
           np.dtype(np.uint32): "3", np.dtype(np.int64): "4", np.dtype(np.uint64): "4"}
_INT64_ATOMICS: dict = {}


def _add_defines(dev: CLDevice, dtype: np.dtype) -> tuple[tuple[str, str], ...]:
    """Build defines of ``index_add`` for ``dtype``, or KernelUnsupported where the device
    has no atomics for it (8-, 16-bit and bool; 64-bit without cl_khr_int64_base_atomics)."""
    kind = _ATOMIC.get(np.dtype(dtype))
    if kind in ("2", "4"):
        if dev not in _INT64_ATOMICS:  # a driver query: asked once per device
            _INT64_ATOMICS[dev] = "cl_khr_int64_base_atomics" in dev.cl_device.extensions
        kind = kind if _INT64_ATOMICS[dev] else None
    if kind is None:
        raise KernelUnsupported(f"no atomic add for {dtype} on this device")
    return (("T", ctype(dtype)), ("ATOMIC", kind))


# --- ops --------------------------------------------------------------------------------------


def getitem(dev: CLDevice, x: CLArray, *index: CLArray, key: Any) -> CLArray:
    """``x[key]``: a view for basic keys (ints, slices, None, Ellipsis), a gather with index arrays."""
    plan = plan_key(x, key, index)
    if not plan.adv:
        return basic_view(x, plan)
    shape, xstrides, adv, astrides = _resolve(dev, plan, "getitem", _index_axes(len(x.shape), key, index))
    return _gather(dev, x, plan.base, shape, xstrides, adv, astrides)


def setitem(dev: CLDevice, x: CLArray, value: Any, *index: CLArray, key: Any) -> None:
    """``x[key] = value`` in place, value broadcast; validated before anything is written
    (index values too, read back: an in-place op raises at the call, its target unchanged)."""
    if any(s == 0 and n > 1 for n, s in zip(x.shape, x.strides)):
        raise ValueError("assignment destination is read-only (a broadcast view)")
    plan = plan_key(x, key, index)
    guard = dev.error_guard()  # in place: nothing is written while this thread has a device error pending
    if not plan.adv and isinstance(value, (int, float, bool, np.generic)) and \
            fill_view(dev, basic_view(x, plan), value, guard):
        return  # x[1:, 0] = 0.5: the value is a kernel argument, not an upload
    if not isinstance(value, CLArray):
        value = host_array(dev, value, x.dtype)
    if value.dtype != x.dtype:
        raise KernelUnsupported(f"setitem of {value.dtype} values into {x.dtype}")
    if plan.adv:
        shape, xstrides, adv, astrides = _resolve(dev, plan, "setitem", _index_axes(len(x.shape), key, index),
                                                  on_host=True)
        base = plan.base
    else:
        target = basic_view(x, plan)
        shape, xstrides, adv, astrides, base = target.shape, target.strides, None, (), target.offset
    vstrides = broadcast_strides(value, shape, "value")
    if adv is not None:
        _dims(shape, xstrides, astrides, vstrides)  # can the kernel take this key? asked before writing
    if value.buf is not None and value.buf is x.buf:
        value = copy_of(value)  # x[1:] = x[:-1]: read everything before writing anything
        vstrides = broadcast_strides(value, shape, "value")
    if adv is None:
        copy_view(dev, x.dtype, shape, x.buf, base, xstrides, value.buf, value.offset, vstrides, guard)
    else:
        _scatter(dev, "index_set", width_defines(x.dtype), x, base, shape, xstrides, adv, astrides, value, guard)


def scatter_add(dev: CLDevice, g: CLArray, *index: CLArray, shape: tuple[int, ...], key: Any) -> CLArray:
    """Zeros of ``shape`` with ``g`` added at ``key``; repeated indices accumulate (atomics)."""
    defines = _add_defines(dev, g.dtype) if index else ()
    out = zeros(dev, tuple(shape), g.dtype)
    plan = plan_key(out, key, index)
    if not plan.adv:  # a basic key selects each element at most once: a copy
        view = basic_view(out, plan)
        copy_view(dev, g.dtype, view.shape, out.buf, view.offset, view.strides, g.buf, g.offset,
                  broadcast_strides(g, view.shape, "gradient"))
        return out
    rshape, xstrides, adv, astrides = _resolve(dev, plan, "scatter_add", _index_axes(len(out.shape), key, index))
    _scatter(dev, "index_add", defines, out, plan.base, rshape, xstrides, adv, astrides, g)
    return out


def _along(x_shape: tuple[int, ...], idx_shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    if len(x_shape) != len(idx_shape):
        raise ValueError("different numbers of dimensions")  # explained by the op's rule
    out = []
    for d, (a, b) in enumerate(zip(x_shape, idx_shape)):
        if d != axis and a != b and a != 1 and b != 1:
            raise ValueError("shapes do not broadcast")
        out.append(b if d == axis or a == 1 else a)
    return tuple(out)


def _along_plan(dev: CLDevice, x: CLArray, indices: CLArray, axis: int, op: str) -> tuple:
    """(shape, x strides, adv offsets, adv strides) of ``op`` (take_along_axis or its
    gradient) over ``x``; indices checked on the device, wrapping negatives as NumPy does."""
    if indices.dtype.kind not in "iu":
        raise ValueError("indices must be integers")
    shape = _along(x.shape, indices.shape, axis)
    n = x.shape[axis]
    if math.prod(shape):
        _none_fit(indices, axis, n)
    adv = build_adv(dev, shape, [(indices, n, x.strides[axis], _bounds_message(op, axis, n), True)])
    xstrides = tuple(0 if d == axis or n != m else s for d, (n, m, s) in enumerate(zip(x.shape, shape, x.strides)))
    return shape, xstrides, adv, contiguous_strides(shape)


def take_along_axis(dev: CLDevice, x: CLArray, indices: CLArray, axis: int) -> CLArray:
    """``np.take_along_axis``: a gather through offsets built from ``indices``."""
    shape, xstrides, adv, astrides = _along_plan(dev, x, indices, axis, "take_along_axis")
    return _gather(dev, x, x.offset, shape, xstrides, adv, astrides)


def scatter_along_axis(dev: CLDevice, g: CLArray, indices: CLArray, axis: int, shape: tuple[int, ...]) -> CLArray:
    """take_along_axis's gradient: zeros of ``shape`` with ``g`` added where it reads."""
    defines = _add_defines(dev, g.dtype)
    out = zeros(dev, tuple(shape), g.dtype)
    rshape, xstrides, adv, astrides = _along_plan(dev, out, indices, axis, "scatter_along_axis")
    _scatter(dev, "index_add", defines, out, 0, rshape, xstrides, adv, astrides, g)
    return out


def embedding(dev: CLDevice, indices: CLArray, weight: CLArray) -> CLArray:
    """Rows of ``weight`` at ``indices``. An index outside ``0 <= index < rows`` (negatives
    included, as on the cpu) raises DeviceError at the next read on the device, naming it."""
    if indices.dtype.kind not in "iu" or len(weight.shape) != 2:
        raise ValueError("bad inputs")  # explained by the op's rule
    rows = weight.shape[0]
    rule = f"is out of range for a weight with {rows} rows"
    if rows == 0 and indices.size:  # known from the shapes: no read needed, and no gather from nothing
        raise OpError(f"embedding: every index {rule}; expected 0 <= index < 0")
    message = f"embedding: index {{value}} {rule}{{position}}; expected 0 <= index < {rows}"
    b = tuple(indices.shape)
    adv = build_adv(dev, b, [(indices, rows, weight.strides[0], message, False)])
    return _gather(dev, weight, weight.offset, b + (weight.shape[1],), (0,) * len(b) + (weight.strides[1],),
                   adv, contiguous_strides(b) + (0,))


def embedding_backward(dev: CLDevice, g: CLArray, indices: CLArray, num_embeddings: int) -> CLArray:
    """Rows of ``g`` added at ``indices`` (repeats accumulate). The indices are checked on the
    device as embedding's are (an error at the next read; nothing written out of bounds)."""
    defines = _add_defines(dev, g.dtype)
    b, dim = tuple(indices.shape), g.shape[-1]
    if tuple(g.shape) != b + (dim,):
        raise ValueError("g does not match the indices")
    if num_embeddings == 0 and indices.size:  # known from the shapes
        raise OpError("embedding_backward: every index is out of range for 0 rows; expected 0 <= index < 0")
    message = (f"embedding_backward: index {{value}} is out of range for {num_embeddings} rows{{position}}; "
               f"expected 0 <= index < {num_embeddings}")
    out = zeros(dev, (num_embeddings, dim), g.dtype)
    if out.buf is None or g.buf is None:
        return out
    adv = build_adv(dev, b, [(indices, num_embeddings, dim, message, False)])
    _scatter(dev, "index_add", defines, out, 0, tuple(g.shape), (0,) * len(b) + (1,), adv,
             contiguous_strides(b) + (0,), g)
    return out


def repeat(dev: CLDevice, x: CLArray, repeats: Any, axis: int) -> CLArray:
    """``np.repeat`` along ``axis``: a broadcast view copied out for an int count, a gather
    through host-computed offsets for per-element counts (known on the host as an attribute)."""
    n, before, after = x.shape[axis], x.shape[:axis], x.shape[axis + 1:]
    if isinstance(repeats, (int, np.integer)):
        r = int(repeats)
        out = output(dev, before + (n * r,) + after, x.dtype)
        split = before + (n, r) + after
        strides = x.strides[:axis] + (x.strides[axis], 0) + x.strides[axis + 1:]
        copy_view(dev, x.dtype, split, out.buf, 0, contiguous_strides(split), x.buf, x.offset, strides)
        return out
    counts = np.broadcast_to(np.asarray(repeats, dtype=np.int64), (n,))
    offsets = np.repeat(np.arange(n, dtype=np.int64) * x.strides[axis], counts)
    adv = host_array(dev, offsets, np.int64)
    shape = before + (offsets.size,) + after
    xstrides = x.strides[:axis] + (0,) + x.strides[axis + 1:]
    astrides = (0,) * len(before) + (1,) + (0,) * len(after)
    return _gather(dev, x, x.offset, shape, xstrides, adv, astrides)


KERNELS: dict = {
    "getitem": getitem, "setitem": setitem, "scatter_add": scatter_add, "take_along_axis": take_along_axis,
    "scatter_along_axis": scatter_along_axis, "embedding": embedding, "embedding_backward": embedding_backward,
    "repeat": repeat,
}
