"""Copies on OpenCL that only move bytes: contiguous copies, view-to-view copies, zero fills,
and the ops built on them (concat, tile, tril, triu, roll).

These kernels are built per element *width* (uchar, ushort, uint, ulong, ulong2), never per
dtype: moving bytes does not depend on what they mean, so every dtype (bool and float16
included) has them, and float32 and int32 share one compiled program.

``copy_view`` and ``fill_view`` also write in place (assign, setitem): those callers pass
``guard=dev.error_guard()``, and the kernels then write nothing while the launching thread
has a device error pending (see ``CLDevice.error_flag``). Copies into fresh outputs leave it
unset.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from tensorcore.backends.opencl import MAX_DIMS, CLArray, CLDevice, contiguous_strides
from tensorcore.backends.opencl_ops._common import global_size, long8, output

from tensorcore.errors import KernelUnsupported
from tensorcore.strides import broadcast_strides as shared_broadcast_strides
from tensorcore.strides import (
    coalesce,  # noqa: F401 - re-exported to the launchers
    transpose_axis,
)

_WIDTH = {1: "uchar", 2: "ushort", 4: "uint", 8: "ulong", 16: "ulong2"}
def run(dev: CLDevice, source: str, name: str, defines: tuple, size: tuple[int, ...], *args: Any,
        local: tuple[int, ...] | None = None) -> None:
    """Enqueue kernel ``name`` of ``source`` (the device declared its scalar argument types,
    so Python ints pass as they are)."""
    dev.launch(dev.kernel(source, name, defines), size, local, *args)


def chunked(n: int) -> tuple[int, tuple[int]]:
    """(elements per work item, launch size) of the kernels that walk ``chunk`` consecutive
    elements per work item: at most 1024 each (a work item's first element costs a division
    per dimension), at least ~2048 work items when there is enough work, so that the 256-wide
    work-groups (``CLDevice.launch``) are 8 or more and keep every core busy. The size is a
    multiple of 256; the extra work items return at once."""
    chunk = max(16, min(1024, n // 2048))
    return chunk, global_size(-(-n // chunk))


def width_defines(dtype: Any) -> tuple[tuple[str, str], ...]:
    """Build defines of the byte-moving kernels for elements of ``dtype``'s width."""
    size = np.dtype(dtype).itemsize
    if size not in _WIDTH:
        raise KernelUnsupported(f"no OpenCL copy kernels for {size}-byte elements ({dtype})")
    return (("T", _WIDTH[size]),)


def new_view(a: CLArray, shape: tuple[int, ...], strides: tuple[int, ...], offset: int) -> CLArray:
    """A view of ``a``'s buffer; an empty view holds no buffer, like every empty array."""
    if math.prod(shape) == 0:
        return CLArray(a.dev, None, shape, a.dtype)
    return a.view(tuple(shape), tuple(strides), offset)


def broadcast_strides(a: CLArray, shape: tuple[int, ...], what: str = "input") -> tuple[int, ...]:
    """``a``'s strides broadcast to ``shape`` (see ``tensorcore.strides``)."""
    return shared_broadcast_strides(a.shape, a.strides, shape, what)


def copy_view(dev: CLDevice, dtype: Any, shape: tuple[int, ...], out_buf: Any, out_offset: int,
              out_strides: tuple[int, ...], in_buf: Any, in_offset: int, in_strides: tuple[int, ...],
              guard: Any = None) -> None:
    """Enqueue ``out[view] = in[view]`` for two strided views of ``shape`` (no-op if empty);
    with ``guard`` (an in-place write), nothing is written while that error record is set."""
    if math.prod(shape) == 0:
        return
    guard = dev.unguarded() if guard is None else guard
    shape, (ost, ist) = coalesce(tuple(shape), tuple(out_strides), tuple(in_strides))
    n = math.prod(shape)
    defines = width_defines(dtype)
    dense = contiguous_strides(shape)
    if ost == dense and ist == dense:
        run(dev, "copy.cl", "copy_contiguous", defines, global_size(n), out_buf, out_offset, in_buf, in_offset, n,
            guard)
    elif len(shape) > MAX_DIMS:  # rare: one launch per index of the outermost dimension
        for k in range(shape[0]):
            copy_view(dev, dtype, shape[1:], out_buf, out_offset + k * ost[0], ost[1:],
                      in_buf, in_offset + k * ist[0], ist[1:], guard)
    elif _tiled(dev, defines, shape, out_buf, out_offset, ost, in_buf, in_offset, ist, guard):
        return
    else:
        chunk, size = chunked(n)
        run(dev, "copy.cl", "copy_view", defines, size, out_buf, out_offset, in_buf,
            in_offset, long8(shape, 1), long8(ost, 0), long8(ist, 0), len(shape), n, chunk, guard)


def _tiled(dev: CLDevice, defines: tuple, shape: tuple[int, ...], out_buf: Any, out_offset: int,
           ost: tuple[int, ...], in_buf: Any, in_offset: int, ist: tuple[int, ...], guard: Any) -> bool:
    """Enqueue ``copy_tiled`` and return True where the source steps through some dimension p
    more finely than through the last one (a transpose), both being at least 8 long."""
    p = transpose_axis(shape, ist)
    if p is None:
        return False
    last = len(shape) - 1
    rest = [d for d in range(last) if d != p]
    rshape = tuple(shape[d] for d in rest)
    count = -(-shape[last] // 32) * -(-shape[p] // 32) * math.prod(rshape)
    run(dev, "copy.cl", "copy_tiled", defines, global_size(count), out_buf, out_offset, in_buf, in_offset,
        long8(rshape, 1), long8(tuple(ost[d] for d in rest), 0), long8(tuple(ist[d] for d in rest), 0), len(rest),
        shape[p], ost[p], ist[p], shape[last], ost[last], ist[last], count, guard)
    return True


_BITS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def fill_view(dev: CLDevice, view: CLArray, value: Any, guard: Any = None) -> bool:
    """Enqueue ``view[...] = value`` for a Python scalar ``value`` cast as NumPy casts it (no
    upload: the bits travel as a kernel argument); False where the dtype has no such path.
    With ``guard`` (an in-place write), nothing is written while that error record is set."""
    bits = _BITS.get(view.dtype.itemsize)
    if bits is None or view.dtype.kind not in "biuf":
        return False
    scalar = np.asarray(value, dtype=view.dtype).reshape(()).view(bits)[()]
    if view.buf is None:
        return True
    shape, (strides,) = coalesce(tuple(view.shape), tuple(view.strides))
    if len(shape) > MAX_DIMS:
        return False
    n = view.size
    chunk, size = chunked(n)
    run(dev, "copy.cl", "fill_view", width_defines(view.dtype), size, view.buf,
        view.offset, long8(shape, 1), long8(strides, 0), len(shape), n, chunk, scalar,
        dev.unguarded() if guard is None else guard)
    return True


def contiguous(a: CLArray) -> CLArray:
    """``a`` itself if C-contiguous, else a contiguous copy (one strided gather)."""
    if a.is_contiguous or a.buf is None:
        return a
    out = output(a.dev, a.shape, a.dtype)
    copy_view(a.dev, a.dtype, a.shape, out.buf, 0, out.strides, a.buf, a.offset, a.strides)
    return out


def copy_of(a: CLArray) -> CLArray:
    """A contiguous copy of ``a`` in a new buffer, even when ``a`` is contiguous (to break an
    alias between an in-place op's target and its source)."""
    out = output(a.dev, a.shape, a.dtype)
    copy_view(a.dev, a.dtype, a.shape, out.buf, 0, out.strides, a.buf, a.offset, a.strides)
    return out


def zeros(dev: CLDevice, shape: tuple[int, ...], dtype: Any) -> CLArray:
    """A new contiguous array of zeros."""
    out = output(dev, shape, dtype)
    if out.buf is not None:
        run(dev, "copy.cl", "fill_zero", width_defines(dtype), global_size(out.size), out.buf, 0, out.size)
    return out


def host_array(dev: CLDevice, value: Any, dtype: Any) -> CLArray:
    """A device copy of ``value`` (a Python scalar, list or NumPy array) cast as NumPy casts
    it into ``dtype``; the upload is enqueued, not waited for."""
    host = np.ascontiguousarray(np.asarray(value, dtype=dtype))
    out = output(dev, host.shape, host.dtype)
    dev.upload(host, out)
    return out


# --- ops ------------------------------------------------------------------------------------


def concat(dev: CLDevice, *xs: CLArray, axis: int) -> CLArray:
    """``np.concatenate(xs, axis)``: one strided copy per input into its slice of the output."""
    if len({x.dtype for x in xs}) != 1:
        raise KernelUnsupported("concat of mixed dtypes (the cpu promotes them)")
    first = xs[0].shape
    for x in xs:
        if len(x.shape) != len(first) or any(a != b for d, (a, b) in enumerate(zip(first, x.shape)) if d != axis):
            raise ValueError("concat: shapes differ outside the axis")  # explained by the op's rule
    shape = first[:axis] + (sum(x.shape[axis] for x in xs),) + first[axis + 1:]
    out = output(dev, shape, xs[0].dtype)
    start = 0
    for x in xs:
        if x.buf is not None:
            copy_view(dev, x.dtype, x.shape, out.buf, start * out.strides[axis], out.strides, x.buf, x.offset, x.strides)
        start += x.shape[axis]
    return out


def tile(dev: CLDevice, x: CLArray, repetitions: tuple[int, ...]) -> CLArray:
    """``np.tile``: a broadcast view of shape (r0, n0, r1, n1, ...) copied out once; its
    row-major layout is exactly that of the result (r0 * n0, r1 * n1, ...)."""
    d = max(len(repetitions), len(x.shape))
    shape = (1,) * (d - len(x.shape)) + tuple(x.shape)
    strides = (0,) * (d - len(x.shape)) + tuple(x.strides)
    reps = (1,) * (d - len(repetitions)) + tuple(repetitions)
    out = output(dev, tuple(n * r for n, r in zip(shape, reps)), x.dtype)
    if out.buf is not None:
        split = tuple(v for pair in zip(reps, shape) for v in pair)
        src = tuple(v for s in strides for v in (0, s))
        copy_view(dev, x.dtype, split, out.buf, 0, contiguous_strides(split), x.buf, x.offset, src)
    return out


def _triangle(dev: CLDevice, x: CLArray, k: int, upper: int) -> CLArray:
    if len(x.shape) < 2:
        raise ValueError("needs at least 2 dimensions")  # explained by the op's rule
    out = output(dev, x.shape, x.dtype)
    if out.buf is None:
        return out
    lead = x.shape[:-2]
    shape, (strides,) = coalesce(lead, x.strides[:-2]) if lead else ((), [()])
    shape, strides = shape + x.shape[-2:], strides + x.strides[-2:]
    if len(shape) > MAX_DIMS:
        x = contiguous(x)
        shape, strides = (math.prod(lead),) + x.shape[-2:], (x.shape[-2] * x.shape[-1],) + x.strides[-2:]
    run(dev, "copy.cl", "triangle", width_defines(x.dtype), global_size(out.size), out.buf, x.buf,
        x.offset, long8(shape, 1), long8(strides, 0), len(shape), out.size, k, upper)
    return out


def tril(dev: CLDevice, x: CLArray, k: int) -> CLArray:
    """``np.tril``: elements above the k-th diagonal zeroed."""
    return _triangle(dev, x, k, 0)


def triu(dev: CLDevice, x: CLArray, k: int) -> CLArray:
    """``np.triu``: elements below the k-th diagonal zeroed."""
    return _triangle(dev, x, k, 1)


def roll(dev: CLDevice, x: CLArray, shift: tuple[int, ...], axis: tuple[int, ...]) -> CLArray:
    """``np.roll`` along ``axis`` (repeated axes add their shifts, as in NumPy)."""
    if len(x.shape) > MAX_DIMS:
        raise KernelUnsupported(f"roll of a {len(x.shape)}-D tensor")
    out = output(dev, x.shape, x.dtype)
    if out.buf is None:
        return out
    shifts = [0] * len(x.shape)
    for s, a in zip(shift, axis):
        shifts[a] += s
    shifts = [s % n for s, n in zip(shifts, x.shape)]
    run(dev, "copy.cl", "roll", width_defines(x.dtype), global_size(out.size), out.buf, x.buf, x.offset,
        long8(x.shape, 1), long8(x.strides, 0), long8(tuple(shifts), 0), len(x.shape), out.size)
    return out


KERNELS: dict = {"concat": concat, "tile": tile, "tril": tril, "triu": triu, "roll": roll}
