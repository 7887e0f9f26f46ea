"""CUDA copies that only move bytes (``kernels/cuda/copy.cu``): strided gathers, view-to-view
copies, transposes through shared memory and fills; and the ops built on them, ``concat`` and
``assign``. ``contiguous`` is what other launchers call when a kernel wants dense input.

The kernels are built per element *width* (1, 2, 4 or 8 bytes), never per dtype: every dtype
tensorcore has (bool and float16 included) is copied, and float32 and int32 share a kernel.
Dense-to-dense copies skip the kernels: one ``cudaMemcpyAsync`` on the device's stream.

``assign`` writes in place: its copies and fills take the launching thread's error record
(``CUDADevice.error_guard``) and write nothing while it holds an error; it never uses the
memcpy, which cannot read a flag. Copies into fresh outputs pass a record that is never set.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from tensorcore.backends.cuda_ops._common import (
    BLOCK,
    cdiv,
    contiguous_strides,
    elem_strides,
    grid_1d,
    i64,
    is_array,
    is_contiguous,
    size,
)

from tensorcore.errors import KernelUnsupported
from tensorcore.ops.optim_updates import check_scalar
from tensorcore.strides import broadcast_strides as shared_broadcast_strides
from tensorcore.strides import (
    coalesce,  # noqa: F401 - re-exported to the launchers
    transpose_axis,
)

SOURCE = "copy.cu"
WIDTHS = (1, 2, 4, 8)
TILE, TILE_ROWS = 32, 8  # copy_tiled's tile and block shape (see copy.cu)
MAX_GRID_X = 2**31 - 1
_BITS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}

#: (source, defines) the launchers build: compiled by tests/test_cuda_compile.py.
VARIANTS = [(SOURCE, ())]


def width(dtype: Any) -> int:
    """The element width in bytes that names the copy kernels for ``dtype``."""
    nbytes = np.dtype(dtype).itemsize
    if nbytes not in WIDTHS:
        raise KernelUnsupported(f"no CUDA copy kernels for {nbytes}-byte elements ({dtype})")
    return nbytes


def broadcast_strides(x: Any, shape: tuple[int, ...], what: str = "input") -> tuple[int, ...]:
    """``x``'s element strides broadcast to ``shape`` (see ``tensorcore.strides``)."""
    return shared_broadcast_strides(tuple(x.shape), elem_strides(x), shape, what)


def copy_strided(dev: Any, shape: tuple[int, ...], dst: Any, dst_strides: tuple[int, ...], src: Any,
                 src_strides: tuple[int, ...], guard: Any = None) -> None:
    """Enqueue ``dst[view] = src[view]`` for two strided views of ``shape`` (element strides,
    relative to each array's first element; ``src`` strides may be 0 to broadcast). The two
    must not overlap in memory (``assign`` copies an aliasing source first). With ``guard``
    (an in-place write), nothing is written while that error record holds an error."""
    n = size(tuple(shape))
    if n == 0:
        return
    w = width(dst.dtype)
    shape, (ost, ist) = coalesce(tuple(shape), tuple(dst_strides), tuple(src_strides))
    if not shape:  # a single element
        shape, ost, ist = (1,), (1,), (1,)
    if guard is None and ost == ist == contiguous_strides(shape):
        dst.data.copy_from_device_async(src.data, n * w)  # the current stream: the device's
        return
    guard = dev.unguarded() if guard is None else guard
    if _tiled(dev, w, shape, dst, ost, src, ist, guard):
        return
    dev.launch(SOURCE, f"copy_view_{w}", (), grid_1d(dev, n), (BLOCK,),
               (dst, src, dev.meta(shape + ost + ist), np.int32(len(shape)), i64(n), guard))


def _tiled(dev: Any, w: int, shape: tuple[int, ...], dst: Any, ost: tuple[int, ...], src: Any,
           ist: tuple[int, ...], guard: Any) -> bool:
    """Enqueue ``copy_tiled`` and return True where the source steps through some dimension p
    more finely than through the output's last one (a transpose), both at least 8 long: the
    plain kernel would then read or write 32 separate lines per warp."""
    p = transpose_axis(shape, ist)
    if p is None:
        return False
    last = len(shape) - 1
    rest = [d for d in range(last) if d != p]
    tiles_l, tiles_p = cdiv(shape[last], TILE), cdiv(shape[p], TILE)
    blocks = tiles_l * tiles_p * math.prod(shape[d] for d in rest)
    if blocks > MAX_GRID_X:
        return False
    meta = tuple(shape[d] for d in rest) + tuple(ost[d] for d in rest) + tuple(ist[d] for d in rest)
    dev.launch(SOURCE, f"copy_tiled_{w}", (), (blocks,), (TILE, TILE_ROWS),
               (dst, src, dev.meta(meta or (1, 0, 0)), np.int32(len(rest)), i64(shape[p]), i64(ost[p]), i64(ist[p]),
                i64(shape[last]), i64(ost[last]), i64(ist[last]), i64(tiles_l), i64(tiles_p), guard))
    return True


def contiguous(dev: Any, x: Any) -> Any:
    """``x`` itself if C-contiguous, else a contiguous copy (one strided gather)."""
    if is_contiguous(x):
        return x
    out = dev.empty(tuple(x.shape), x.dtype)
    copy_strided(dev, tuple(x.shape), out, contiguous_strides(tuple(x.shape)), x, elem_strides(x))
    return out


def copy_of(dev: Any, x: Any) -> Any:
    """A contiguous copy of ``x`` in new memory, even when ``x`` is contiguous."""
    out = dev.empty(tuple(x.shape), x.dtype)
    copy_strided(dev, tuple(x.shape), out, contiguous_strides(tuple(x.shape)), x, elem_strides(x))
    return out


def fill(dev: Any, view: Any, value: Any, guard: Any = None) -> bool:
    """Enqueue ``view[...] = value`` for a Python scalar cast as NumPy casts it (the bits travel
    as a kernel argument: no upload); False where that cast is not possible here. With
    ``guard`` (an in-place write), nothing is written while that error record holds an error."""
    if np.dtype(view.dtype).itemsize not in _BITS:
        return False
    try:
        with np.errstate(all="ignore"):
            bits = np.asarray(value, dtype=view.dtype).reshape(()).view(_BITS[view.dtype.itemsize])[()]
    except (OverflowError, ValueError, TypeError):
        return False  # the cpu raises NumPy's error for this value: let it
    n = size(tuple(view.shape))
    if n == 0:
        return True
    shape, (strides,) = coalesce(tuple(view.shape), elem_strides(view))
    if not shape:
        shape, strides = (1,), (1,)
    dev.launch(SOURCE, f"fill_view_{view.dtype.itemsize}", (), grid_1d(dev, n), (BLOCK,),
               (view, dev.meta(shape + strides), np.int32(len(shape)), i64(n), bits,
                dev.unguarded() if guard is None else guard))
    return True


def byte_span(x: Any) -> tuple[int, int]:
    """[first, last + 1) bytes that view ``x`` touches (empty for an empty view)."""
    if size(tuple(x.shape)) == 0:
        return 0, 0
    lo = hi = x.data.ptr
    for n, s in zip(x.shape, x.strides):
        if s < 0:
            lo += (n - 1) * s
        else:
            hi += (n - 1) * s
    return lo, hi + x.dtype.itemsize


def overlaps(a: Any, b: Any) -> bool:
    """Whether two views may share memory (their byte spans intersect)."""
    (alo, ahi), (blo, bhi) = byte_span(a), byte_span(b)
    return alo < bhi and blo < ahi and ahi > alo and bhi > blo


def writable(x: Any, what: str) -> None:
    """Refuse to write into a broadcast view (NumPy's broadcast views are read-only too)."""
    if any(s == 0 and n > 1 for n, s in zip(x.shape, x.strides)):
        raise ValueError(f"{what} is read-only (a broadcast view)")


# --- ops ------------------------------------------------------------------------------------


def concat(dev: Any, *xs: Any, axis: int) -> Any:
    """``np.concatenate(xs, axis)``: one strided copy per input into its slice of the output."""
    if not xs or not all(is_array(x) for x in xs) or len({np.dtype(x.dtype) for x in xs}) != 1:
        raise KernelUnsupported("concat of mixed dtypes (the cpu promotes them)")
    first = tuple(xs[0].shape)
    if not first:
        raise ValueError("concat of 0-d tensors")  # explained by the op's rule
    axis = axis % len(first)
    for x in xs:
        if len(x.shape) != len(first) or any(a != b for d, (a, b) in enumerate(zip(first, x.shape)) if d != axis):
            raise ValueError("concat: shapes differ outside the axis")  # explained by the op's rule
    shape = first[:axis] + (sum(x.shape[axis] for x in xs),) + first[axis + 1:]
    out = dev.empty(shape, xs[0].dtype)
    ostrides = contiguous_strides(shape)
    start = 0
    for x in xs:
        if x.size:
            part = dev.view(out, tuple(x.shape), ostrides, start * ostrides[axis])
            copy_strided(dev, tuple(x.shape), part, ostrides, x, elem_strides(x))
        start += x.shape[axis]
    return out


def assign(dev: Any, dst: Any, src: Any) -> None:
    """``np.copyto(dst, src)`` in place: ``src`` broadcast, a Python scalar filled without an
    upload; any dtype (bytes are copied), but ``src`` must have ``dst``'s dtype (the cpu casts)."""
    if not is_array(dst):
        raise KernelUnsupported("assign into a non-device array")
    writable(dst, "assign target")
    check_scalar("assign", np.dtype(dst.dtype), src)
    guard = dev.error_guard()  # in place: nothing is written while this thread has a device error pending
    if not is_array(src):
        if isinstance(src, (bool, int, float, np.generic)) and fill(dev, dst, src, guard):
            return
        raise KernelUnsupported(f"assign of {type(src).__name__} {src!r}")
    if np.dtype(src.dtype) != np.dtype(dst.dtype):
        raise KernelUnsupported(f"assign of {src.dtype} values into {dst.dtype} (the cpu casts them)")
    strides = broadcast_strides(src, tuple(dst.shape), "value")
    if overlaps(src, dst):  # x[...] = x.T: read everything before writing anything
        src = copy_of(dev, src)
        strides = broadcast_strides(src, tuple(dst.shape), "value")
    copy_strided(dev, tuple(dst.shape), dst, elem_strides(dst), src, strides, guard)


KERNELS: dict = {"concat": concat, "assign": assign}
